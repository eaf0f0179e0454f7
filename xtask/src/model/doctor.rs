//! The findings of `doctor` as data: each check's name, result and fix, one line each, and
//! whether the machine is ready to build.

use std::fmt;

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed(String),
    Failed {
        problem: String,
        fix: String,
    },
    /// Not run, because what it needs failed its own check (which says so).
    Skipped(String),
}

/// One check: what it looked at, whether a build needs it, and how it came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: &'static str,
    /// A build or a release cannot start without it (the task images' consumers stop only a
    /// release, and `check`): failing it makes doctor fail. Otherwise a failure is a warning.
    pub required: bool,
    pub outcome: Outcome,
}

impl Finding {
    pub fn passed(check: &'static str, required: bool, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            required,
            outcome: Outcome::Passed(detail.into()),
        }
    }

    pub fn failed(
        check: &'static str,
        required: bool,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            required,
            outcome: Outcome::Failed {
                problem: problem.into(),
                fix: fix.into(),
            },
        }
    }

    pub fn skipped(check: &'static str, required: bool, why: impl Into<String>) -> Finding {
        Finding {
            check,
            required,
            outcome: Outcome::Skipped(why.into()),
        }
    }

    fn fails_the_build(&self) -> bool {
        self.required && matches!(self.outcome, Outcome::Failed { .. })
    }
}

/// The line of a finding: `ok    packer: 1.8.6`, `FAIL  gcloud: no account; fix: ...`; a failed
/// check that a build does without is a `warn`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let check = self.check;
        match &self.outcome {
            Outcome::Passed(detail) => write!(f, "ok    {check}: {detail}"),
            Outcome::Failed { problem, fix } => {
                let mark = if self.required { "FAIL" } else { "warn" };
                write!(f, "{mark}  {check}: {problem}; fix: {fix}")
            }
            Outcome::Skipped(why) => write!(f, "skip  {check}: {why}"),
        }
    }
}

/// The required checks that failed, in order, each once however many lines it failed on.
pub fn failed_required(findings: &[Finding]) -> Vec<&'static str> {
    let mut failed: Vec<&'static str> = Vec::new();
    for finding in findings.iter().filter(|f| f.fails_the_build()) {
        if !failed.contains(&finding.check) {
            failed.push(finding.check);
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_each_with_the_fix_when_it_fails() {
        let findings = [
            Finding::passed("packer", true, "1.8.6 (the template needs >= 1.7.0)"),
            Finding::failed(
                "gcloud",
                true,
                "no account is configured",
                "run `gcloud auth login`",
            ),
            Finding::failed(
                "artifactory",
                false,
                "cannot reach it",
                "connect to the company VPN",
            ),
            Finding::skipped("pinned images", true, "needs gcloud"),
        ];
        let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "ok    packer: 1.8.6 (the template needs >= 1.7.0)",
                "FAIL  gcloud: no account is configured; fix: run `gcloud auth login`",
                "warn  artifactory: cannot reach it; fix: connect to the company VPN",
                "skip  pinned images: needs gcloud",
            ]
        );
        assert_eq!(failed_required(&findings), ["gcloud"]);
        let twice = [findings[1].clone(), findings[1].clone()];
        assert_eq!(failed_required(&twice), ["gcloud"], "each check once");
        assert!(failed_required(&findings[2..]).is_empty());
    }
}
