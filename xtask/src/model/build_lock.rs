//! The note in a build lock: which process builds a workload manager's image, and since when.

use crate::model::time::utc_date;

/// The build holding a workload manager's build lock, as its note says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub started: i64,
    /// The subcommand that holds it: `build` or `release`.
    pub command: String,
    /// The packer the build started, which holds the lock too: it outlives a `kill -9` of the
    /// tool, and so does the lock.
    pub packer: Option<u32>,
}

impl Holder {
    /// The note's text, one `key: value` a line; the time also as people read it.
    pub fn render(&self) -> String {
        let mut note = format!(
            "pid: {}\nstarted: {} ({})\ncommand: {}\n",
            self.pid,
            self.started,
            utc_time(self.started),
            self.command
        );
        if let Some(packer) = self.packer {
            note.push_str(&format!("packer: {packer}\n"));
        }
        note
    }

    /// Reads a note; `None` when it is not one (empty while its holder writes it).
    pub fn parse(text: &str) -> Option<Holder> {
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(": "))
                .map(str::trim)
        };
        let started = value("started")?.split_whitespace().next()?;
        Some(Holder {
            pid: value("pid")?.parse().ok()?,
            started: started.parse().ok()?,
            command: value("command").unwrap_or("build").to_string(),
            packer: value("packer").and_then(|pid| pid.parse().ok()),
        })
    }

    /// For messages: `release, pid 4242, started 2026-11-30 06:50:05 UTC`.
    pub fn describe(&self) -> String {
        format!(
            "{}, pid {}, started {}",
            self.command,
            self.pid,
            utc_time(self.started)
        )
    }

    /// Why a second build is refused, given whether the holder's own process still lives: a
    /// tool killed with `kill -9` leaves its packer running, and that packer holds the lock.
    pub fn refusal(&self, holder_alive: bool) -> String {
        match self.packer {
            Some(packer) if !holder_alive => format!(
                "the {} that started it ({}) is gone, but its packer (pid {packer}) still runs and holds \
                 the lock: wait for it to end, or stop it with `kill -INT {packer}`, which lets packer \
                 delete its VM",
                self.command,
                self.describe()
            ),
            Some(packer) => format!("{}, packer pid {packer}", self.describe()),
            None => self.describe(),
        }
    }
}

/// A time in seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_time(seconds: i64) -> String {
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        utc_date(seconds),
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_back_as_written() {
        let mut holder = Holder {
            pid: 4242,
            started: 1_796_021_405,
            command: "release".into(),
            packer: None,
        };
        let note = holder.render();
        assert_eq!(
            note,
            "pid: 4242\nstarted: 1796021405 (2026-11-30 06:50:05 UTC)\ncommand: release\n"
        );
        assert_eq!(Holder::parse(&note), Some(holder.clone()));
        assert_eq!(
            holder.describe(),
            "release, pid 4242, started 2026-11-30 06:50:05 UTC"
        );
        holder.packer = Some(4250);
        assert!(holder
            .render()
            .ends_with("command: release\npacker: 4250\n"));
        assert_eq!(Holder::parse(&holder.render()), Some(holder.clone()));
        assert_eq!(
            holder.refusal(true),
            "release, pid 4242, started 2026-11-30 06:50:05 UTC, packer pid 4250"
        );
        assert!(holder
            .refusal(false)
            .starts_with("the release that started it (release, pid 4242, started 2026-11-30 06:50:05 UTC) is gone, but its packer (pid 4250) still runs"));
    }

    #[test]
    fn a_note_being_written_or_broken_is_none() {
        for text in ["", "pid: 4242\n", "pid: x\nstarted: 1\n", "started: 1\n"] {
            assert_eq!(Holder::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(86_399), "1970-01-01 23:59:59 UTC");
    }
}
