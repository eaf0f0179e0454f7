//! Progress on stderr: a download's bar, a wait's status line, and byte counts in the units
//! people read.

/// A download's progress on stderr: on a terminal a bar (bytes, total, rate) redrawn at most
/// ten times a second; otherwise one line at the start and one at the end, so a CI log stays short.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    started: std::time::Instant,
    last_draw: Option<std::time::Instant>,
    on_terminal: bool,
}

impl Progress {
    pub fn new(label: impl Into<String>) -> Progress {
        Progress {
            label: label.into(),
            total: None,
            done: 0,
            started: std::time::Instant::now(),
            last_draw: None,
            on_terminal: crate::session::is_terminal(crate::session::Stdio::Stderr),
        }
    }

    /// A new attempt begins (again from zero after a retry).
    pub fn start(&mut self, total: Option<u64>) {
        self.total = total;
        self.done = 0;
        self.started = std::time::Instant::now();
        self.last_draw = None;
        if self.on_terminal {
            self.draw();
        } else {
            match total {
                Some(total) => errln!("{}: downloading {}", self.label, bytes(total)),
                None => errln!("{}: downloading", self.label),
            }
        }
    }

    pub fn update(&mut self, done: u64) {
        self.done = done;
        let due = self
            .last_draw
            .is_none_or(|at| at.elapsed() >= std::time::Duration::from_millis(100));
        if self.on_terminal && due {
            self.draw();
        }
    }

    /// The download is complete.
    pub fn finish(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64();
        if self.on_terminal {
            self.draw();
            errln!();
            self.last_draw = None;
        } else {
            errln!(
                "{}: {} in {seconds:.1} s ({}/s)",
                self.label,
                bytes(self.done),
                bytes(rate(self.done, seconds))
            );
        }
    }

    /// The attempt failed: ends the bar's line so that the next message starts on its own.
    pub fn abandon(&mut self) {
        if self.on_terminal && self.last_draw.is_some() {
            errln!();
        }
        self.last_draw = None;
    }

    fn draw(&mut self) {
        let seconds = self.started.elapsed().as_secs_f64();
        let line = progress_line(
            &self.label,
            self.done,
            self.total,
            rate(self.done, seconds),
            terminal_width(),
        );
        // `\r` and erase-to-end-of-line redraw in place; this works only while the line fits
        // on one row, which `progress_line` sees to.
        err!("\r{line}\x1b[K");
        self.last_draw = Some(std::time::Instant::now());
    }
}

/// One line on a terminal that a long wait redraws in place (`waiting for the checks: 3
/// reported, 95 s of at most 1200 s`), cleared before any other line is written and when it is
/// dropped. Off a terminal, or when lines carry the time (a log), it draws nothing, and the
/// wait says its progress in whole lines instead, at most one a minute.
pub struct StatusLine {
    on_terminal: bool,
    drawn: bool,
}

impl StatusLine {
    /// A status line for a wait whose lines are its own: `alone` is false when two waits share
    /// the terminal (a release's builds side by side), which one line cannot show.
    pub fn new(alone: bool) -> StatusLine {
        StatusLine {
            on_terminal: alone
                && crate::session::is_terminal(crate::session::Stdio::Stderr)
                && !crate::output::stamps_lines(),
            drawn: false,
        }
    }

    /// Whether the line is drawn at all: else the caller says its progress in whole lines.
    pub fn updates_in_place(&self) -> bool {
        self.on_terminal
    }

    /// Redraws the line with `text`, cut to the terminal's width.
    pub fn show(&mut self, text: &str) {
        if !self.on_terminal {
            return;
        }
        let width = terminal_width().saturating_sub(1);
        let cut: String = text.chars().take(width).collect();
        err!("\r{cut}\x1b[K");
        self.drawn = true;
    }

    /// Takes the line away, so that the next line starts on a clean row.
    pub fn clear(&mut self) {
        if self.drawn {
            err!("\r\x1b[K");
            self.drawn = false;
        }
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The columns of the terminal on stderr: its size from the kernel, else `COLUMNS`, else 80.
/// Asked at every redraw, so a resized window is followed.
fn terminal_width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points at one.
    let asked = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) };
    if asked == 0 && size.ws_col > 0 {
        return usize::from(size.ws_col);
    }
    width_from_columns(crate::session::var("COLUMNS").as_deref())
}

/// The width `COLUMNS` gives, or 80 when it is unset or not a positive number.
fn width_from_columns(columns: Option<&str>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(80)
}

/// The widest and narrowest bar drawn, in characters between its brackets.
const BAR_MAX: usize = 30;
const BAR_MIN: usize = 10;
/// A label shorter than this says nothing (`hpe…`) and is left out.
const LABEL_MIN: usize = 4;

/// One progress line that fits in `width` columns, leaving the last one empty (writing into it
/// makes some terminals wrap at once, and every redraw would then start a new row). The amounts
/// come first, the rate and the total dropped only when even they do not fit; the space left
/// holds the label and a bar of `BAR_MIN` to `BAR_MAX`, the label cut to fit, or the bar alone,
/// or the label alone.
pub fn progress_line(
    label: &str,
    done: u64,
    total: Option<u64>,
    rate: u64,
    width: usize,
) -> String {
    let room = width.saturating_sub(1);
    let total = total.filter(|&t| t > 0);
    let speed = format!("{}/s", bytes(rate));
    let amounts = match total {
        Some(total) => vec![
            format!("{} / {}  {speed}", bytes(done), bytes(total)),
            format!("{} / {}", bytes(done), bytes(total)),
            bytes(done),
        ],
        None => vec![format!("{}  {speed}", bytes(done)), bytes(done)],
    };
    let Some(stats) = amounts.iter().find(|s| columns(s) <= room) else {
        return cut(&amounts[amounts.len() - 1], room);
    };
    // Columns left for `LABEL [BAR] ` or `LABEL `.
    let left = room - columns(stats);
    let label_len = columns(label);
    let bar = |width: usize| {
        let total = total.unwrap_or(1);
        let filled = (u128::from(done.min(total)) * width as u128 / u128::from(total)) as usize;
        format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
    };
    if total.is_some() {
        // `LABEL [` + bar + `] `: the label, four columns of brackets and spaces, the bar.
        if left >= label_len + 4 + BAR_MIN {
            let width = (left - label_len - 4).min(BAR_MAX);
            return format!("{label} {} {stats}", bar(width));
        }
        if left >= LABEL_MIN + 4 + BAR_MIN {
            return format!(
                "{} {} {stats}",
                cut(label, left - 4 - BAR_MIN),
                bar(BAR_MIN)
            );
        }
        if left >= 3 + BAR_MIN {
            return format!("{} {stats}", bar((left - 3).min(BAR_MAX)));
        }
    }
    if left > LABEL_MIN {
        return format!("{} {stats}", cut(label, left - 1));
    }
    stats.clone()
}

/// The columns a text takes: one per character, as every text here is (file names, numbers,
/// `#`, `-` and `…`).
fn columns(text: &str) -> usize {
    text.chars().count()
}

/// `text` cut to `width` columns, its end replaced by `…` when cut.
fn cut(text: &str, width: usize) -> String {
    if columns(text) <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

fn rate(done: u64, seconds: f64) -> u64 {
    if seconds > 0.0 {
        (done as f64 / seconds) as u64
    } else {
        0
    }
}

/// A byte count for people: `812 B`, `41.2 KiB`, `256.0 MiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod progress_tests {
    use super::{bytes, progress_line, width_from_columns, StatusLine};
    use crate::edges::gcloud::GcloudCloud;
    use crate::session::{self, Session};

    #[test]
    fn a_status_line_is_redrawn_in_place_and_cleared_before_any_other_line() {
        let run = std::sync::Arc::new(Session::captured(Vec::new(), Box::new(GcloudCloud)));
        {
            let _entered = session::enter(run.clone());
            let mut status = StatusLine {
                on_terminal: true,
                drawn: false,
            };
            status.show("waiting: 1 s");
            status.show("waiting: 2 s");
            status.clear();
            status.clear();
            errln!("  ok a check");
            status.show("waiting: 3 s");
            drop(status);
            // Off a terminal (a captured run is never one) it draws nothing.
            let mut off = StatusLine::new(true);
            assert!(!off.updates_in_place());
            off.show("never drawn");
        }
        let (_, stderr) = run.take_output();
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            "\rwaiting: 1 s\x1b[K\rwaiting: 2 s\x1b[K\r\x1b[K  ok a check\n\rwaiting: 3 s\x1b[K\r\x1b[K"
        );
    }

    const LABEL: &str = "hpe-hpc-launcher_3.10.1-12_amd64.deb";
    const GIB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn the_progress_line_never_reaches_the_last_column() {
        let labels = ["", "x.deb", LABEL, &"a-very-long-label-".repeat(10)];
        let amounts = [
            (0, None),
            (0, Some(0)),
            (512, Some(700_000)),
            (700_000, Some(700_000)),
            (GIB + GIB / 2, Some(2 * GIB)),
            (u64::MAX, Some(u64::MAX)),
            (u64::MAX, None),
        ];
        for width in [0, 1, 5, 10, 20, 40, 79, 80, 120, 200] {
            for label in labels {
                for (done, total) in amounts {
                    for rate in [0, 12 * 1024 * 1024, u64::MAX] {
                        let line = progress_line(label, done, total, rate, width);
                        let used = line.chars().count();
                        assert!(
                            used < width || (width == 0 && used == 0),
                            "{width} columns, {used} used: {line:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_progress_line_gives_up_the_least_useful_parts_first() {
        let done = 350_000;
        let total = Some(700_000);
        let rate = 12 * 1024 * 1024;
        let amounts = "341.8 KiB / 683.6 KiB  12.0 MiB/s";
        // Wide: everything, the bar at its widest and half filled.
        let wide = progress_line(LABEL, done, total, rate, 200);
        assert_eq!(
            wide,
            format!("{LABEL} [{}{}] {amounts}", "#".repeat(15), "-".repeat(15))
        );
        // 80 columns, as the issue saw: the amounts whole, a shorter bar, the label cut.
        let line = progress_line(LABEL, done, total, rate, 80);
        assert_eq!(line.chars().count(), 79, "{line}");
        assert!(line.ends_with(&format!("[#####-----] {amounts}")), "{line}");
        assert!(
            line.starts_with("hpe-hpc-launcher_3.10") && line.contains('…'),
            "{line}"
        );
        // 40: the amounts and what is left of the label; no room for a bar.
        let line = progress_line(LABEL, done, total, rate, 40);
        assert!(line.ends_with(amounts) && !line.contains('['), "{line}");
        // 20: the bytes done, and a few characters of the label.
        assert_eq!(
            progress_line(LABEL, done, total, rate, 20),
            "hpe-hpc-… 341.8 KiB"
        );
        // No total: no bar.
        assert_eq!(
            progress_line("x.deb", done, None, rate, 80),
            "x.deb 341.8 KiB  12.0 MiB/s"
        );
    }

    #[test]
    fn the_width_falls_back_to_columns_then_80() {
        assert_eq!(width_from_columns(Some("132")), 132);
        assert_eq!(width_from_columns(Some(" 40 ")), 40);
        for unusable in [None, Some(""), Some("0"), Some("wide"), Some("-3")] {
            assert_eq!(width_from_columns(unusable), 80, "{unusable:?}");
        }
    }

    #[test]
    fn byte_counts_for_people() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(256 * 1024 * 1024), "256.0 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }
}
