//! Exit codes: what a script or a CI job can tell apart without reading the messages.

use crate::term::interrupts::Interrupted;

/// Any failure without a code of its own (a gcloud call, a file that cannot be written).
pub const OTHER: i32 = 1;

/// The failures a script may want to tell apart, each with its own exit code. 3, 4 and 5 are
/// taken by neither clap (2) nor a signal (128 + n), and `packer fmt -check`'s own 3 never
/// reaches the tool's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Refused before any work (no download, no branch, no VM), or a dry run that lists what
    /// would make the real run refuse: the fix is the user's, and nothing needs cleaning up.
    Stopped,
    /// packer failed (or made no image): no new image.
    Build,
    /// The image was built (or reused) and then failed its checks: it is not pinned.
    Verification,
}

impl Failure {
    pub fn code(self) -> i32 {
        match self {
            Failure::Stopped => 3,
            Failure::Build => 4,
            Failure::Verification => 5,
        }
    }

    /// `err` marked as this kind of failure; its message and causes stay as they are. An error
    /// a signal caused keeps its 128 + n: the signal is what ended the work.
    pub fn mark(self, err: anyhow::Error) -> anyhow::Error {
        if crate::term::is_interrupted(&err) || classified(&err).is_some() {
            return err;
        }
        anyhow::Error::new(Classified {
            kind: self,
            error: err,
        })
    }

    /// A new error of this kind saying `message`.
    pub fn error(self, message: impl std::fmt::Display) -> anyhow::Error {
        self.mark(anyhow::anyhow!("{message}"))
    }
}

/// The table `--help` and the manual show: code, meaning.
pub const TABLE: &[(&str, &str)] = &[
    ("0", "done"),
    ("1", "any other failure"),
    ("2", "a usage error (an unknown flag, a missing value)"),
    (
        "3",
        "stopped before any work, or a dry run that lists such a stop",
    ),
    ("4", "a build failed: packer failed or made no image"),
    ("5", "an image failed its verification; it is not pinned"),
    (
        "130, 143, 129",
        "stopped by Ctrl-C, SIGTERM, SIGHUP (128 + the signal)",
    ),
    (
        "141",
        "stdout was closed (`| head`), as SIGPIPE ends a program",
    ),
];

/// An error of a known kind. It shows as the error it wraps, whose causes stay its causes, so
/// `error: {err:#}` reads the same with or without the kind.
#[derive(Debug)]
pub struct Classified {
    pub kind: Failure,
    error: anyhow::Error,
}

impl std::fmt::Display for Classified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The outermost message only: `{:#}` adds the causes from `source`.
        write!(f, "{}", self.error)
    }
}

impl std::error::Error for Classified {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.chain().nth(1)
    }
}

/// The kind `err` was marked with, if any.
pub fn classified(err: &anyhow::Error) -> Option<Failure> {
    err.chain()
        .find_map(|e| e.downcast_ref::<Classified>())
        .map(|c| c.kind)
}

/// The exit code for a failed command: 128 + the signal when a signal stopped it, the code of
/// its kind when it has one, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if let Some(interrupted) = err.chain().find_map(|e| e.downcast_ref::<Interrupted>()) {
        return 128 + interrupted.signal;
    }
    classified(err).map_or(OTHER, Failure::code)
}

/// The table as `--help` ends with it, within 80 columns.
pub fn help_table() -> String {
    let mut text = String::from("Exit status:");
    for (code, meaning) in TABLE {
        text.push_str(&format!("\n  {code:<13} {meaning}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_own_code_apart_from_clap_and_signals() {
        let codes = [Failure::Stopped, Failure::Build, Failure::Verification].map(Failure::code);
        for code in codes {
            // 2 is clap's usage error.
            assert!(code != OTHER && code != 2 && code < 128, "{code}");
        }
        assert_eq!(codes, [3, 4, 5]);
        let listed: Vec<&str> = TABLE.iter().map(|(code, _)| *code).collect();
        for code in codes {
            assert!(listed.contains(&code.to_string().as_str()), "{code}");
        }
        for line in help_table().lines() {
            assert!(line.len() <= 80, "{line}");
        }
    }

    #[test]
    fn a_marked_error_reads_as_before_and_carries_its_code() {
        let err = anyhow::anyhow!("packer build failed (exit 1)").context("building slurm");
        let before = format!("{err:#}");
        let marked = Failure::Build.mark(err);
        assert_eq!(format!("{marked:#}"), before);
        assert_eq!(exit_code(&marked), 4);
        // A context added after the mark keeps the kind.
        let later = marked.context("the release");
        assert_eq!(exit_code(&later), 4);
        assert_eq!(format!("{later:#}"), format!("the release: {before}"));
        assert_eq!(exit_code(&anyhow::anyhow!("a gcloud call failed")), 1);
    }

    #[test]
    fn a_signal_outranks_a_kind_and_the_first_kind_stays() {
        let interrupted = Interrupted::error(15, "release interrupted by SIGTERM");
        assert_eq!(exit_code(&Failure::Stopped.mark(interrupted)), 143);
        let twice = Failure::Verification.mark(Failure::Build.error("packer failed"));
        assert_eq!(exit_code(&twice), 4);
    }
}
