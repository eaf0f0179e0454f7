//! prune in two steps through the built xtask and the real gcloud, against the loopback Compute
//! API: deprecate first (the workload manager's pin named as replacement), delete once the
//! grace has passed, and never an image pinned on the tree, a release branch or tag, or a branch
//! `release` made.

use crate::support::{commit_host_tree, git, require_tool, HostCopy};

const SLURM_PINNED: &str = "det-environments-slurm-ci-1717047568";
const PBS_PINNED: &str = "det-environments-pbs-ci-1717016272";
/// Deprecated 60 days ago: past the 14 days' grace.
const LONG_DEPRECATED: &str = "det-environments-slurm-ci-1716000000";
/// Pinned only at the tag `v0.29.0`, and older than anything kept.
const TAGGED: &str = "det-environments-slurm-ci-1715000000";
const OLD_A: &str = "det-environments-slurm-ci-1717300000";
const OLD_B: &str = "det-environments-slurm-ci-1717400000";
const NEW_A: &str = "det-environments-slurm-ci-1717500000";
const NEW_B: &str = "det-environments-slurm-ci-1717600000";
const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A host copy in a git checkout with both pins committed on `main` and, in its Compute API,
/// the pinned images, four more slurm images, one deprecated 60 days ago and one that only the
/// tag `v0.29.0` pins. `None` (after a loud skip) without gcloud or git.
fn project() -> Option<HostCopy> {
    require_tool("gcloud")?;
    require_tool("git")?;
    let host = HostCopy::new();
    let deb = "HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb";
    let api = host.api();
    for (name, created) in [
        (SLURM_PINNED, 1_717_047_568),
        (LONG_DEPRECATED, 1_716_000_000),
        (TAGGED, 1_715_000_000),
        (OLD_A, 1_717_300_000),
        (OLD_B, 1_717_400_000),
        (NEW_A, 1_717_500_000),
        (NEW_B, 1_717_600_000),
    ] {
        api.add_image(name, created, "READY", &[], deb);
    }
    api.add_image(
        PBS_PINNED,
        1_717_016_272,
        "READY",
        &[],
        "HPC pbs testing VM",
    );
    api.set_deprecated(LONG_DEPRECATED, Some(now() - 60 * DAY), Some(SLURM_PINNED));
    let conf = "tools/slurm/terraform/images.conf";
    host.write(conf, format!("slurm: {TAGGED}\npbs: {PBS_PINNED}\n"));
    commit_host_tree(&host);
    git(&host, &["tag", "v0.29.0"]);
    host.write(conf, format!("slurm: {SLURM_PINNED}\npbs: {PBS_PINNED}\n"));
    git(&host, &["commit", "-q", "-am", "pin the current images"]);
    Some(host)
}

/// The line of the plan that names `image`.
fn line<'a>(out: &'a str, image: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(image))
        .unwrap_or_else(|| panic!("{image} missing\n{out}"))
}

#[test]
fn prune_yes_deletes_the_long_deprecated_deprecates_the_rest_and_spares_the_tags_image() {
    let Some(host) = project() else {
        return;
    };
    let run = host.run(&["prune", "--keep", "2", "--yes"]).ok();
    let out = &run.stdout;
    let api = host.api();
    assert_eq!(api.image_deletions(), [LONG_DEPRECATED], "{out}");
    let deprecated: Vec<String> = api
        .deprecations()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(deprecated, [OLD_B, OLD_A], "{out}");
    for (name, status) in api.deprecations() {
        assert_eq!(status["state"], "DEPRECATED", "{name}: {status}");
        assert!(
            status["replacement"]
                .as_str()
                .is_some_and(|r| r.ends_with(&format!("/global/images/{SLURM_PINNED}"))),
            "{name}: {status}"
        );
        // The moment is recorded on the image: the next prune counts the grace from it.
        assert!(status["deprecated"].as_str().is_some(), "{name}: {status}");
        let image = api.image(&name).unwrap();
        assert_eq!(image["deprecated"]["state"], "DEPRECATED");
    }
    assert!(api.image(TAGGED).unwrap().get("deprecated").is_none());
    assert!(
        line(out, TAGGED).contains("[keep: on tag v0.29.0]"),
        "{out}"
    );
    assert!(line(out, LONG_DEPRECATED).contains("[DELETE]"), "{out}");
    assert!(line(out, OLD_A).contains("[DEPRECATE]"), "{out}");
    assert!(line(out, NEW_B).contains("[keep: newest 2]"), "{out}");
    assert!(
        out.contains(&format!("deleted 1 image(s): {LONG_DEPRECATED}"))
            && out.contains(&format!("deprecated 2 image(s): {OLD_B}, {OLD_A}")),
        "{out}"
    );
}

#[test]
fn a_second_prune_leaves_images_in_their_grace_alone_and_shows_when_they_go() {
    let Some(host) = project() else {
        return;
    };
    host.run(&["prune", "--keep", "2", "--yes"]).ok();
    let requests_before = host.api().http_requests().len();
    let run = host.run(&["prune", "--keep", "2", "--yes"]).ok();
    let out = &run.stdout;
    assert!(out.contains("nothing to prune"), "{out}");
    assert!(line(out, OLD_A).contains("[delete from "), "{out}");
    assert!(line(out, OLD_A).contains("DEPRECATED"), "{out}");
    // One listing, and nothing changed.
    assert_eq!(host.api().http_requests().len(), requests_before + 1);
    assert_eq!(host.api().deprecations().len(), 2);
}

#[test]
fn prune_without_yes_or_a_terminal_only_plans() {
    let Some(host) = project() else {
        return;
    };
    let run = host.run(&["prune", "--keep", "2"]).ok();
    let out = &run.stdout;
    assert!(
        out.contains("would deprecate 2 image(s)")
            && out.contains("would delete 1 image(s) deprecated for longer than 14d")
            && out.contains("nothing changed: run again with --yes to prune"),
        "{out}"
    );
    assert!(host.api().only_reads(), "{:?}", host.api().http_requests());
}

#[test]
fn a_branch_release_made_protects_what_it_pins_local_or_remote() {
    let Some(host) = project() else {
        return;
    };
    let conf = "tools/slurm/terraform/images.conf";
    for (branch, image) in [("slurm-images-2024-06-01", OLD_A), ("tmp", OLD_B)] {
        git(&host, &["checkout", "-q", "-b", branch, "main"]);
        host.write(conf, format!("slurm: {image}\npbs: {PBS_PINNED}\n"));
        git(&host, &["commit", "-q", "-am", branch]);
    }
    git(
        &host,
        &[
            "update-ref",
            "refs/remotes/origin/slurm-images-2024-06-02",
            "tmp",
        ],
    );
    git(&host, &["checkout", "-q", "main"]);
    git(&host, &["branch", "-q", "-D", "tmp"]);
    let run = host.run(&["prune", "--keep", "1", "--yes"]).ok();
    let out = &run.stdout;
    let deprecated: Vec<String> = host
        .api()
        .deprecations()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(deprecated, [NEW_A], "{out}");
    // The narrow layout cuts the branch's name at 100 columns.
    assert!(
        line(out, OLD_A).contains("[keep: on slurm-images-")
            && line(out, OLD_B).contains("[keep: on origin/slurm-ima"),
        "{out}"
    );
}
