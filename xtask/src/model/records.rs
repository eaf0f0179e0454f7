//! The records of `--format json`: JSON Lines on stdout, one object per line whose `reason`
//! says what it is (`plan`, `progress`, `check`, `finding`, `image`, `prune`, `vm`, `result`),
//! the last one always the
//! `result`. Plain data: the commands fill them, `output::record` writes them.

use serde::Serialize;

use crate::model::build_plan::{BuildPlan, Reuse};
use crate::model::doctor::{self, Finding};
use crate::model::images_conf::Change;
use crate::model::launcher_choice::Launcher;
use crate::model::provenance::Verdict;
use crate::model::release_plan::ReleasePlan;
use crate::model::verification::{Check, Verified};
use crate::model::WorkloadManager;

/// One line of `--format json`.
#[derive(Debug, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Record {
    /// What a dry run decided: each workload manager's build, and what would stop the run.
    Plan(Plan),
    /// A phase of the work ended: `packer`, `verification`.
    Progress(Progress),
    /// One check of a verification, as it arrived from the VM.
    Check(CheckRecord),
    /// One of doctor's findings.
    Finding(FindingRecord),
    /// One image of the project, as `images` lists it.
    Image(ImageRecord),
    /// One image of `prune`'s plan, and what prune did with it.
    Prune(PruneRecord),
    /// One VM `orphans` found: an orphan, or kept for a build running on this machine.
    Vm(VmRecord),
    /// The end: what the command did, and how it ended (always the last record).
    Result(Outcome),
}

/// One image as `images --format json` lists it.
#[derive(Debug, Serialize)]
pub struct ImageRecord {
    pub image: String,
    /// `null` for an image whose name is no workload manager's.
    pub workload_manager: Option<WorkloadManager>,
    /// `creationTimestamp` as GCE wrote it.
    pub created: String,
    /// GCE's status (`READY`), or `REVOKED` or the deprecation state where one applies.
    pub status: String,
    /// `verified`, `failed` or `unverified`.
    pub verification: String,
    /// The launcher version its label or description names.
    pub launcher: Option<String>,
    /// Whether images.conf (the working tree's) pins it.
    pub pinned: bool,
    /// Whether a build from today's inputs reuses it.
    pub reused: bool,
    /// What `prune` would do with it, and why.
    pub prune: String,
}

/// One image of the plan as `prune --format json` writes it, once prune is done with it.
#[derive(Debug, Serialize)]
pub struct PruneRecord {
    pub image: String,
    pub workload_manager: Option<WorkloadManager>,
    /// `creationTimestamp` as GCE wrote it.
    pub created: String,
    /// `keep`; `deprecate` (the first step); `in_grace` (deprecated, deleted by a prune from
    /// `delete_from`); `delete` (deprecated for longer than the grace: the second step).
    pub action: &'static str,
    /// Why, in the plan's words: each keep reason (`pinned in images.conf`, `pinned on tag
    /// v0.29.0`, `newest 6`, ...), why it goes, or how long it has been deprecated.
    pub why: String,
    /// `deprecate`: the image named as its replacement (its workload manager's pin).
    pub replacement: Option<String>,
    /// `in_grace`: the day (UTC, `YYYY-MM-DD`) from which a prune deletes it.
    pub delete_from: Option<String>,
    /// Whether this run carried out the action: deprecated or deleted the image. Always false
    /// for `keep` and `in_grace`, and for a plan not approved.
    pub done: bool,
}

/// One VM as `orphans --format json` writes it.
#[derive(Debug, Serialize)]
pub struct VmRecord {
    pub vm: String,
    pub zone: String,
    /// `creationTimestamp` as GCE wrote it.
    pub created: String,
    /// Its age in seconds, when `orphans` looked.
    pub age_seconds: i64,
    /// GCE's status: `RUNNING`, `TERMINATED`, ...
    pub status: String,
    /// Whose it looks like: `packer` (named `packer-*`, packer's description) or
    /// `verification` (labelled `slurm-image=verification`).
    pub kind: &'static str,
    /// Whether it is an orphan; `false` for a VM kept because a build running on this machine
    /// may own it.
    pub orphan: bool,
    /// Why it is an orphan (older than `--older-than`), or why it is kept.
    pub why: String,
    /// Whether this run deleted it.
    pub deleted: bool,
}

#[derive(Debug, Serialize)]
pub struct Plan {
    pub command: &'static str,
    pub workload_managers: Vec<PlannedBuild>,
    /// A release's branch: `null` for a build, or where it could not be decided.
    pub branch: Option<String>,
    /// What would stop the real run, each with why; any makes the dry run exit 3.
    pub stops: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PlannedBuild {
    pub workload_manager: WorkloadManager,
    /// The launcher package's file name; `null` while it is unknown.
    pub launcher: Option<String>,
    pub source_image: Option<String>,
    pub fingerprint: Option<String>,
    /// `reuse` (with `image`), `build`, or `null` while it cannot be decided.
    pub decision: Option<&'static str>,
    /// The image a reuse pins.
    pub image: Option<String>,
    /// The image images.conf pins now.
    pub pinned: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Progress {
    pub workload_manager: Option<WorkloadManager>,
    pub phase: &'static str,
    pub seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct CheckRecord {
    pub workload_manager: Option<WorkloadManager>,
    pub image: String,
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct FindingRecord {
    pub check: &'static str,
    /// `passed`, `failed` or `skipped`.
    pub outcome: &'static str,
    pub detail: String,
    /// What to do, for a failed one.
    pub fix: Option<String>,
    /// A build cannot start while it fails (else it is a warning).
    pub required: bool,
}

/// The end of a command.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub command: &'static str,
    pub ok: bool,
    /// The tool's exit status (the manual's "Exit status").
    pub exit_code: i32,
    /// The error, as the last line of stderr says it, when it failed.
    pub error: Option<String>,
    pub dry_run: bool,
    /// Each image the command built, reused or verified.
    pub workload_managers: Vec<Image>,
    /// A release's branch and commit, and `--pr`'s pull request.
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub pull_request: Option<String>,
    /// doctor: whether a release would start.
    pub ready_to_release: Option<bool>,
    /// prune: the images it deprecated (`null` for other commands).
    pub deprecated: Option<Vec<String>>,
    /// prune: the images it deleted; orphans: the VMs it deleted (`null` for other commands).
    pub deleted: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct Image {
    pub workload_manager: WorkloadManager,
    pub image: String,
    /// `built`, `reused` (made from the same inputs before) or `existing` (`verify`).
    pub how: &'static str,
    pub verification: Verification,
    pub pinned: bool,
    /// How images.conf changed: `replaced`, `added`, `unchanged`, or `null` when not pinned.
    pub images_conf: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct Verification {
    /// `passed` (booted now), `earlier` (verified when it was built), `skipped`.
    pub status: &'static str,
    pub checks: Vec<CheckResult>,
    /// Why it was skipped.
    pub why: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Serialize for WorkloadManager {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

impl Outcome {
    /// A command that did its work.
    pub fn done(command: &'static str) -> Outcome {
        Outcome {
            command,
            ok: true,
            exit_code: 0,
            error: None,
            dry_run: false,
            workload_managers: Vec::new(),
            branch: None,
            commit: None,
            pull_request: None,
            ready_to_release: None,
            deprecated: None,
            deleted: None,
        }
    }

    /// A command that failed with `error` and exits with `exit_code`.
    pub fn failed(command: &'static str, exit_code: i32, error: String) -> Outcome {
        Outcome {
            ok: false,
            exit_code,
            error: Some(error),
            ..Outcome::done(command)
        }
    }
}

impl From<&Check> for CheckResult {
    fn from(check: &Check) -> CheckResult {
        CheckResult {
            name: check.name.clone(),
            ok: check.ok,
            detail: check.detail.clone(),
        }
    }
}

impl From<&Verified> for Verification {
    fn from(verified: &Verified) -> Verification {
        match verified {
            Verified::Passed(checks) => Verification {
                status: "passed",
                checks: checks.iter().map(CheckResult::from).collect(),
                why: None,
            },
            Verified::Earlier => Verification {
                status: "earlier",
                checks: Vec::new(),
                why: None,
            },
            Verified::Skipped(why) => Verification {
                status: "skipped",
                checks: Vec::new(),
                why: Some(why.clone()),
            },
        }
    }
}

/// How images.conf changed, as a record says it.
pub fn change_word(change: &Change) -> &'static str {
    match change {
        Change::Replaced { .. } => "replaced",
        Change::Added { .. } => "added",
        Change::Unchanged => "unchanged",
    }
}

fn planned(
    wm: WorkloadManager,
    launcher: &Launcher,
    source: Option<&(String, String)>,
    fingerprint: Option<&str>,
    reuse: &Reuse,
    pinned: Option<&str>,
) -> PlannedBuild {
    let (decision, image) = match reuse {
        Reuse::Decided {
            verdict: Verdict::Reuse { image },
            ..
        } => (Some("reuse"), Some(image.clone())),
        Reuse::Decided { .. } => (Some("build"), None),
        Reuse::AfterLauncherArrives | Reuse::NotLookedUp => (None, None),
    };
    PlannedBuild {
        workload_manager: wm,
        launcher: launcher.known().map(|package| package.file_name.clone()),
        source_image: source.map(|(image, _)| image.clone()),
        fingerprint: fingerprint.map(str::to_string),
        decision,
        image,
        pinned: pinned.map(str::to_string),
    }
}

impl From<&BuildPlan> for Plan {
    fn from(plan: &BuildPlan) -> Plan {
        Plan {
            command: "build",
            workload_managers: vec![planned(
                plan.wm,
                &plan.launcher,
                plan.source.as_ref(),
                plan.fingerprint.as_deref(),
                &plan.reuse,
                plan.pinned.as_deref(),
            )],
            branch: None,
            stops: plan.unknown.clone(),
        }
    }
}

impl From<&ReleasePlan> for Plan {
    fn from(plan: &ReleasePlan) -> Plan {
        Plan {
            command: "release",
            workload_managers: plan
                .builds
                .iter()
                .map(|build| {
                    planned(
                        build.wm,
                        &plan.launcher,
                        build.source.as_ref(),
                        build.fingerprint.as_deref(),
                        &build.reuse,
                        plan.conf.pinned(build.wm),
                    )
                })
                .collect(),
            branch: plan.target.as_ref().map(|target| target.name().to_string()),
            stops: plan.stops.clone(),
        }
    }
}

impl From<&Finding> for FindingRecord {
    fn from(finding: &Finding) -> FindingRecord {
        let (outcome, detail, fix) = match &finding.outcome {
            doctor::Outcome::Passed(detail) => ("passed", detail.clone(), None),
            doctor::Outcome::Failed { problem, fix } => {
                ("failed", problem.clone(), Some(fix.clone()))
            }
            doctor::Outcome::Skipped(why) => ("skipped", why.clone(), None),
        };
        FindingRecord {
            check: finding.check,
            outcome,
            detail,
            fix,
            required: finding.required,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each record as it is written: one line of JSON each, in the manual's order.
    #[test]
    fn every_record_has_its_reason_and_documented_fields() {
        let check = Check {
            name: "slurm-daemons".into(),
            ok: true,
            detail: "slurmctld and slurmd are enabled".into(),
        };
        let records = [
            Record::Plan(Plan {
                command: "release",
                workload_managers: vec![PlannedBuild {
                    workload_manager: WorkloadManager::Slurm,
                    launcher: Some("hpe-hpc-launcher_3.3.1-2_amd64.deb".into()),
                    source_image: Some("slurm-gcp-6-3-ubuntu-2004-lts-v20240101".into()),
                    fingerprint: Some("0123456789ab".into()),
                    decision: Some("reuse"),
                    image: Some("det-environments-slurm-ci-1800000000".into()),
                    pinned: Some("det-environments-slurm-ci-1717047568".into()),
                }],
                branch: Some("slurm-images-2026-11-30".into()),
                stops: vec!["playbook: the playbook is broken".into()],
            }),
            Record::Progress(Progress {
                workload_manager: Some(WorkloadManager::Pbs),
                phase: "packer",
                seconds: 3130,
            }),
            Record::Check(CheckRecord {
                workload_manager: Some(WorkloadManager::Slurm),
                image: "det-environments-slurm-ci-1800000000".into(),
                name: check.name.clone(),
                ok: check.ok,
                detail: check.detail.clone(),
            }),
            Record::Finding(FindingRecord::from(&Finding::failed(
                "packer",
                true,
                "packer is not installed",
                "install packer >= 1.7",
            ))),
            Record::Prune(PruneRecord {
                image: "det-environments-slurm-ci-1717300000".into(),
                workload_manager: Some(WorkloadManager::Slurm),
                created: "2024-06-02T03:46:40.000-00:00".into(),
                action: "deprecate",
                why: "unverified, not among the 6 kept".into(),
                replacement: Some("det-environments-slurm-ci-1717047568".into()),
                delete_from: None,
                done: true,
            }),
            Record::Vm(VmRecord {
                vm: "packer-6650c2a0-1f2e-4c3d-9a8b-7c6d5e4f3a2b".into(),
                zone: "us-central1-c".into(),
                created: "2024-06-02T03:46:40.000-00:00".into(),
                age_seconds: 18_000,
                status: "RUNNING".into(),
                kind: "packer",
                orphan: true,
                why: "a packer VM older than 4h".into(),
                deleted: false,
            }),
            Record::Result(Outcome {
                deprecated: Some(vec!["det-environments-slurm-ci-1717300000".into()]),
                deleted: Some(Vec::new()),
                ..Outcome::done("prune")
            }),
            Record::Result(Outcome {
                workload_managers: vec![Image {
                    workload_manager: WorkloadManager::Slurm,
                    image: "det-environments-slurm-ci-1800000000".into(),
                    how: "built",
                    verification: Verification::from(&Verified::Passed(vec![check])),
                    pinned: true,
                    images_conf: Some(change_word(&Change::Added {
                        new: "det-environments-slurm-ci-1800000000".into(),
                    })),
                }],
                branch: Some("slurm-images-2026-11-30".into()),
                commit: Some("1a2b3c4".into()),
                pull_request: Some("https://github.com/determined-ai/determined/pull/4242".into()),
                ..Outcome::done("release")
            }),
            Record::Result(Outcome::failed(
                "build",
                4,
                "packer build failed (exit 1): no new slurm image".into(),
            )),
        ];
        let lines: Vec<String> = records
            .iter()
            .map(|record| serde_json::to_string(record).unwrap())
            .collect();
        for line in &lines {
            assert!(!line.contains('\n'), "{line}");
        }
        insta::assert_snapshot!(lines.join("\n"));
    }
}
