//! The findings of `doctor` as data: each check's name, result and fix, one line each, and
//! whether the machine is ready to build, and to release.

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
    /// A release refuses to start while it fails, though a build goes on (a dirty checkout, no
    /// git identity): a warning, and doctor does not call the machine ready to release.
    pub stops_release: bool,
    pub outcome: Outcome,
}

impl Finding {
    pub fn passed(check: &'static str, required: bool, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            required,
            stops_release: false,
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
            stops_release: false,
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
            stops_release: false,
            outcome: Outcome::Skipped(why.into()),
        }
    }

    /// The same finding, of a check whose failure a release refuses to start with.
    pub fn stopping_a_release(mut self) -> Finding {
        self.stops_release = true;
        self
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
    once_each(findings.iter().filter(|f| f.fails_the_build()))
}

/// doctor's last line once no required check failed: ready means a release would start, so
/// the warnings a release refuses on are named.
/// Whether a release would start: no finding that stops one failed.
pub fn ready_to_release(findings: &[Finding]) -> bool {
    !findings
        .iter()
        .any(|f| f.stops_release && matches!(f.outcome, Outcome::Failed { .. }))
}

pub fn readiness(findings: &[Finding]) -> String {
    let stopping = once_each(
        findings
            .iter()
            .filter(|f| f.stops_release && matches!(f.outcome, Outcome::Failed { .. })),
    );
    if stopping.is_empty() {
        "ready to build and to release".to_string()
    } else {
        format!(
            "ready to build; not to release until {} {} fixed (their lines say how)",
            stopping.join(", "),
            if stopping.len() == 1 { "is" } else { "are" }
        )
    }
}

fn once_each<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<&'static str> {
    let mut checks: Vec<&'static str> = Vec::new();
    for finding in findings {
        if !checks.contains(&finding.check) {
            checks.push(finding.check);
        }
    }
    checks
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

    #[test]
    fn ready_means_a_release_would_start() {
        let clean = Finding::passed("checkout", false, "clean");
        assert_eq!(readiness(&[clean]), "ready to build and to release");
        let dirty = Finding::failed("checkout", false, "static/x is untracked", "commit it")
            .stopping_a_release();
        let no_vpn = Finding::failed("artifactory", false, "unreachable", "connect");
        let identity = Finding::failed("git", false, "no identity", "set it").stopping_a_release();
        assert_eq!(
            readiness(&[dirty.clone(), no_vpn.clone()]),
            "ready to build; not to release until checkout is fixed (their lines say how)"
        );
        assert_eq!(
            readiness(&[dirty, no_vpn, identity]),
            "ready to build; not to release until checkout, git are fixed (their lines say how)"
        );
    }
}
