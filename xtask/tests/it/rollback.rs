//! rollback, run in-process against the loopback Compute API: the
//! image images.conf pinned before is pinned again, the one it replaces is revoked (a label,
//! and DEPRECATED with the restored image as replacement), and no build reuses it.

use crate::support::hosts::{PBS_PINNED, SLURM_PINNED};
use crate::support::{commit_host_tree, git, require_tool, HostCopy};

/// The images the stand-in packer builds for slurm, in order.
const FIRST: &str = "det-environments-slurm-ci-1800000000";
const SECOND: &str = "det-environments-slurm-ci-1800000001";

/// A git checkout of a host copy pinning a slurm image that is in the project, with a launcher
/// in build/. `None` (after a loud skip) without git.
fn host() -> Option<HostCopy> {
    require_tool("git")?;
    let host = HostCopy::with_unlabelled_pin();
    commit_host_tree(&host);
    Some(host)
}

fn pinned(host: &HostCopy, wm: &str) -> String {
    host.read("tools/slurm/terraform/images.conf")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{wm}: ")))
        .unwrap_or_else(|| panic!("no {wm} line"))
        .to_string()
}

fn builds(host: &HostCopy) -> usize {
    host.packer_calls()
        .iter()
        .filter(|c| c.contains("| build"))
        .count()
}

#[test]
fn rollback_after_a_build_repins_the_previous_image_and_the_next_build_runs_packer() {
    let Some(host) = host() else { return };
    host.run(&["build", "--offline"]).ok();
    assert_eq!(pinned(&host, "slurm"), FIRST);

    let run = host.run(&["rollback"]).ok();
    assert_eq!(pinned(&host, "slurm"), SLURM_PINNED, "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "rolling back slurm: {SLURM_PINNED} replaces {FIRST}, which is revoked"
        )),
        "{}",
        run.stdout
    );
    let revoked = host.api().image(FIRST).unwrap();
    assert!(revoked["labels"]["revoked"].is_string(), "{revoked}");
    assert_eq!(revoked["deprecated"]["state"], "DEPRECATED", "{revoked}");
    assert!(
        revoked["deprecated"]["replacement"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("/global/images/{SLURM_PINNED}"))),
        "{revoked}"
    );
    // The restored image was never deprecated: it is left as it was.
    let deprecated: Vec<String> = host
        .api()
        .deprecations()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(deprecated, [FIRST]);

    let run = host.run(&["build", "--offline"]).ok();
    assert_eq!(
        builds(&host),
        2,
        "packer did not run again:\n{}",
        run.stdout
    );
    assert!(!run.stdout.contains("reusing"), "{}", run.stdout);
    assert_eq!(pinned(&host, "slurm"), SECOND);
}

#[test]
fn rollback_refuses_a_previous_image_that_failed_verification_and_names_the_fix() {
    let Some(host) = host() else { return };
    let older = "det-environments-slurm-ci-1717000000";
    host.api().add_image(
        older,
        1_717_000_000,
        "READY",
        &[("verification", "failed")],
        "HPC slurm testing VM",
    );
    // HEAD pins the failed image; the working tree pins the current one.
    host.write(
        "tools/slurm/terraform/images.conf",
        format!("slurm: {older}\npbs: {PBS_PINNED}\n"),
    );
    git(
        &host,
        &["commit", "-q", "-am", "an image that later failed"],
    );
    host.write(
        "tools/slurm/terraform/images.conf",
        format!("slurm: {SLURM_PINNED}\npbs: {PBS_PINNED}\n"),
    );
    host.run(&["rollback"]).fails_with(&[
        &format!("cannot roll back slurm to {older}: {older} failed verification"),
        "`cargo xtask slurm-image rollback --wm slurm --to IMAGE`",
    ]);
    assert_eq!(pinned(&host, "slurm"), SLURM_PINNED);
    assert!(host.api().only_reads(), "{:?}", host.api().http_requests());
}
