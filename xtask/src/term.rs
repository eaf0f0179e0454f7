//! The user's terminal: whether anyone can answer a question, asking it, and Ctrl-C.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;

/// Whether a person can answer a prompt: stdin and stderr are both a terminal.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks a yes/no question on the terminal; only `y` or `yes` is a yes.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer from the terminal")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Whether to go ahead with something destructive: `--yes`, or a yes at a terminal. Without a
/// terminal and without `--yes` the answer is no, at once: nothing waits for input that cannot come.
pub fn approved(yes: bool, question: &str) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !is_interactive() {
        return Ok(false);
    }
    confirm(question)
}

struct Signals {
    /// The number of the last SIGINT or SIGTERM received while a guard was held, or 0.
    received: Arc<AtomicUsize>,
    /// While false, SIGINT and SIGTERM only set `received` instead of ending the process.
    default_action: Arc<AtomicBool>,
    /// Guards held now: two builds may run at the same time, each holding one.
    holders: AtomicUsize,
}

static SIGNALS: OnceLock<Signals> = OnceLock::new();

/// While held, Ctrl-C (SIGINT) and SIGTERM do not end the process: they are recorded, so the
/// work under way (packer deleting its VM, a download removing its partial file) can finish
/// cleanly. When dropped, the signals end the process again.
pub struct InterruptGuard(());

impl InterruptGuard {
    pub fn new() -> anyhow::Result<InterruptGuard> {
        let signals = match SIGNALS.get() {
            Some(signals) => signals,
            None => {
                let signals = Signals {
                    received: Arc::default(),
                    default_action: Arc::new(AtomicBool::new(true)),
                    holders: AtomicUsize::new(0),
                };
                for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                    // Recording comes first so that a signal is never lost, then the default
                    // action, which applies only outside a guard.
                    signal_hook::flag::register_usize(
                        signal,
                        signals.received.clone(),
                        signal as usize,
                    )
                    .context("installing the Ctrl-C handler")?;
                    signal_hook::flag::register_conditional_default(
                        signal,
                        signals.default_action.clone(),
                    )
                    .context("installing the Ctrl-C handler")?;
                }
                SIGNALS.get_or_init(|| signals)
            }
        };
        signals.holders.fetch_add(1, Ordering::SeqCst);
        signals.default_action.store(false, Ordering::SeqCst);
        Ok(InterruptGuard(()))
    }

    /// The signal received since the guard was taken, if any.
    pub fn received(&self) -> Option<i32> {
        let signals = SIGNALS.get()?;
        match signals.received.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n as i32),
        }
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if let Some(signals) = SIGNALS.get() {
            if signals.holders.fetch_sub(1, Ordering::SeqCst) == 1 {
                signals.received.store(0, Ordering::SeqCst);
                signals.default_action.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// A signal's name for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "Ctrl-C (SIGINT)",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

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
            on_terminal: std::io::stderr().is_terminal(),
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
                Some(total) => eprintln!("{}: downloading {}", self.label, bytes(total)),
                None => eprintln!("{}: downloading", self.label),
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
            eprintln!();
            self.last_draw = None;
        } else {
            eprintln!(
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
            eprintln!();
        }
        self.last_draw = None;
    }

    fn draw(&mut self) {
        const WIDTH: u64 = 30;
        let seconds = self.started.elapsed().as_secs_f64();
        let speed = bytes(rate(self.done, seconds));
        let line = match self.total {
            Some(total) if total > 0 => {
                let filled = (self.done.min(total) * WIDTH / total) as usize;
                format!(
                    "{} [{}{}] {} / {}  {speed}/s",
                    self.label,
                    "#".repeat(filled),
                    "-".repeat(WIDTH as usize - filled),
                    bytes(self.done),
                    bytes(total)
                )
            }
            _ => format!("{} {}  {speed}/s", self.label, bytes(self.done)),
        };
        // `\r` and erase-to-end-of-line redraw in place.
        eprint!("\r{line}\x1b[K");
        std::io::stderr().flush().ok();
        self.last_draw = Some(std::time::Instant::now());
    }
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
    use super::bytes;

    #[test]
    fn byte_counts_for_people() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(256 * 1024 * 1024), "256.0 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }
}
