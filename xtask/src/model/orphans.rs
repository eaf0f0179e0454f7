//! Which packer VMs `orphans` may delete: old enough, and not the VM of a build running here.

use anyhow::bail;

use crate::model::build_lock::Holder;
use crate::model::WorkloadManager;

/// The shortest `--older-than` taken without `--allow-young`, in seconds. A packer VM lives as
/// long as its build, about an hour for these images, so a younger one most likely belongs to a
/// build running now, on this machine or on a colleague's (which this one cannot see).
pub const FLOOR_S: u64 = 30 * 60;

/// How much earlier than a running build's start a VM may have been created and still be
/// taken for its VM: this machine's clock and Google's may disagree by a little.
pub const CLOCK_SKEW_S: i64 = 5 * 60;

/// Refuses an `--older-than` (written `text`, `seconds` long) below [`FLOOR_S`] unless the user
/// said `--allow-young`.
pub fn check_threshold(text: &str, seconds: u64, allow_young: bool) -> anyhow::Result<()> {
    if seconds < FLOOR_S && !allow_young {
        bail!(
            "--older-than {text} is below 30m: a packer build keeps its VM for about an hour, so a VM that \
             young most likely belongs to a build running now (here or on another machine); use \
             --older-than 30m or more, or add --allow-young if you mean it"
        );
    }
    Ok(())
}

/// A build running on this machine: its workload manager and, when its lock's note could be
/// read, who runs it since when.
#[derive(Debug, Clone)]
pub struct RunningBuild {
    pub wm: WorkloadManager,
    pub holder: Option<Holder>,
}

impl RunningBuild {
    /// Why a VM is kept for this build.
    pub fn reason(&self) -> String {
        match &self.holder {
            Some(holder) => format!(
                "created after the {} build running on this machine started ({}): it may be that build's VM",
                self.wm,
                holder.describe()
            ),
            None => format!(
                "a {} build is running on this machine and its start is unknown: it may be that build's VM",
                self.wm
            ),
        }
    }
}

/// The running build a packer VM created at `created` (seconds since the epoch) may belong to:
/// one that started before the VM was created, give or take [`CLOCK_SKEW_S`], or one whose
/// start is unknown.
pub fn owner(created: i64, running: &[RunningBuild]) -> Option<&RunningBuild> {
    running.iter().find(|build| match &build.holder {
        Some(holder) => created >= holder.started - CLOCK_SKEW_S,
        None => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(started: Option<i64>) -> RunningBuild {
        RunningBuild {
            wm: WorkloadManager::Pbs,
            holder: started.map(|started| Holder {
                pid: 7,
                started,
                command: "build".into(),
                packer: None,
            }),
        }
    }

    #[test]
    fn a_vm_created_after_a_running_build_started_is_kept() {
        let builds = [running(Some(10_000))];
        assert!(owner(10_001, &builds).is_some());
        // Within the clock skew before the start: still possibly its VM.
        assert!(owner(10_000 - CLOCK_SKEW_S, &builds).is_some());
        assert!(owner(10_000 - CLOCK_SKEW_S - 1, &builds).is_none());
        assert!(owner(10_001, &[]).is_none());
        // A build whose start could not be read keeps every VM.
        assert!(owner(0, &[running(None)]).is_some());
        let reason = builds[0].reason();
        assert!(
            reason.contains("pbs build running on this machine")
                && reason.contains("build, pid 7, started 1970-01-01 02:46:40 UTC"),
            "{reason}"
        );
    }

    #[test]
    fn a_threshold_below_the_floor_needs_allow_young() {
        let err = check_threshold("1m", 60, false).unwrap_err().to_string();
        assert!(
            err.starts_with("--older-than 1m is below 30m") && err.contains("--allow-young"),
            "{err}"
        );
        check_threshold("1m", 60, true).unwrap();
        check_threshold("30m", FLOOR_S, false).unwrap();
    }
}
