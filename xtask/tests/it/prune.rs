//! prune in two steps, run in-process against the loopback Compute API: deprecate first (the workload manager's pin named as replacement), delete once the
//! grace has passed, and never an image pinned on the tree, a release branch or tag, or a branch
//! `release` made. Then, in-process through the Compute seam against [`Cloud`]'s project:
//! the plan before `--yes`, one call deleting the unprotected, release branches' pins, names
//! listed twice, the hint a build ends with.

use crate::support::images::{
    commit_host, line, now, reads_side_by_side, Cloud, OLD_A, OLD_B, OLD_PBS, PBS_PINNED, PENDING,
    SLURM_PINNED,
};
use crate::support::{commit_host_tree, git, require_tool, HostCopy, Run, SEED};

/// Deprecated 60 days ago: past the 14 days' grace.
const LONG_DEPRECATED: &str = "det-environments-slurm-ci-1716000000";
/// Pinned only at the tag `v0.29.0`, and older than anything kept.
const TAGGED: &str = "det-environments-slurm-ci-1715000000";
const NEW_A: &str = "det-environments-slurm-ci-1717500000";
const NEW_B: &str = "det-environments-slurm-ci-1717600000";
const DAY: i64 = 86_400;

/// A host copy in a git checkout with both pins committed on `main` and, in its Compute API,
/// the pinned images, four more slurm images, one deprecated 60 days ago and one that only the
/// tag `v0.29.0` pins. `None` (after a loud skip) without git.
fn project() -> Option<HostCopy> {
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

const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

#[test]
fn prune_counts_a_name_listed_twice_once_and_leaves_other_families_alone() {
    let host = HostCopy::new();
    host.write(IMAGES_CONF, SEED);
    let api = host.api();
    let slurm = |n: i64| format!("det-environments-slurm-ci-{n}");
    let desc = "HPC slurm testing VM";
    api.add_image(&slurm(1_717_047_568), 1_717_047_568, "READY", &[], desc);
    // Seven newer ones, five of them listed twice by gcloud.
    for n in 1..=7 {
        api.add_image(
            &slurm(1_800_000_000 + n),
            1_800_000_000 + n,
            "READY",
            &[],
            desc,
        );
    }
    for n in 3..=7 {
        api.add_image(
            &slurm(1_800_000_000 + n),
            1_800_000_000 + n,
            "READY",
            &[],
            desc,
        );
    }
    // Named like ours, old, but in someone else's family.
    let foreign = slurm(1_700_000_000);
    api.add_image(&foreign, 1_700_000_000, "READY", &[], desc);
    api.set_family(&foreign, "someone-elses-family");
    commit_host(&host);

    let run = host.run(&["prune", "--keep", "6", "--yes"]).ok();
    // The six newest unique names are kept; the oldest unpinned one goes (its first step),
    // and only it.
    let deprecated: Vec<String> = api.deprecations().into_iter().map(|(n, _)| n).collect();
    assert_eq!(deprecated, [slurm(1_800_000_001)], "{}", run.stdout);
    assert!(api.image_deletions().is_empty(), "{}", run.stdout);
    assert!(
        run.stdout.contains("deprecated 1 image(s)"),
        "{}",
        run.stdout
    );
    for wanted in [
        "of another family than the template builds into (det-environments-slurm-ci): 1 in someone-elses-family",
        "5 image name(s) listed more than once by gcloud, each counted once",
    ] {
        assert!(run.stdout.contains(wanted), "{wanted}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains(&foreign), "{}", run.stdout);
}

#[test]
fn prune_plans_first_and_without_yes_or_terminal_deletes_nothing() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    let run = cloud.run(&["prune", "--keep", "2"]).ok();
    assert!(
        run.stdout.contains("would delete 3 image(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("nothing changed: run again with --yes"),
        "{}",
        run.stdout
    );
    cloud.assert_listed_once_and_deleted_nothing();
}

#[test]
fn prune_yes_deletes_exactly_the_unprotected_in_one_call() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    cloud.commit_host();
    cloud.api.take_calls();
    let run = cloud.run(&["prune", "--keep", "2", "--yes"]).ok();
    let out = &run.stdout;
    assert_eq!(cloud.api.image_deletions(), [OLD_PBS, OLD_A, OLD_B]);
    // One call deletes them all (gcloud batches its requests: the contract tier).
    assert_eq!(
        cloud.api.take_calls(),
        ["list_images_for", "delete_images"],
        "one list and one delete call"
    );
    assert!(out.contains("deleted 3 image(s)"), "{out}");
    let line = |name: &str| out.lines().find(|l| l.contains(name)).unwrap().to_string();
    assert!(
        line("det-environments-slurm-ci-1717600000").contains("[keep: newest 2]"),
        "{out}"
    );
    // In a git checkout the plan's mark is the plain one: prune deletes what it marks.
    assert!(line(OLD_A).contains("[DELETE]"), "{out}");
    assert!(cloud
        .api
        .image_names()
        .contains(&"ubuntu-custom-1".to_string()));
    assert!(cloud.api.image_names().contains(&PENDING.to_string()));
}

#[test]
fn release_branches_local_and_remote_protect_what_they_pin() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    if require_tool("git").is_none() {
        return;
    }
    let conf = "tools/slurm/terraform/images.conf";
    let original = cloud.host.read(conf);
    cloud.commit_host();
    let pin_on = |branch: &str, image: &str| {
        cloud.git(&["checkout", "-q", "-b", branch, "main"]);
        cloud.host.write(
            conf,
            original
                .replace(SLURM_PINNED, image)
                .replace(PBS_PINNED, image),
        );
        cloud.git(&["commit", "-q", "-am", branch]);
    };
    pin_on("release-0.1", OLD_A);
    // Not a release branch: what it pins is not protected.
    pin_on("feature-x", OLD_B);
    pin_on("tmp-remote", OLD_PBS);
    cloud.git(&[
        "update-ref",
        "refs/remotes/origin/release-0.2",
        "tmp-remote",
    ]);
    cloud.git(&["checkout", "-q", "main"]);
    cloud.git(&["branch", "-q", "-D", "tmp-remote"]);

    let run = cloud.run(&["prune", "--keep", "2", "--yes"]).ok();
    let out = &run.stdout;
    assert_eq!(cloud.api.image_deletions(), [OLD_B], "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(OLD_A) && l.contains("[keep: on release-0.1]")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains(OLD_PBS) && l.contains("[keep: on origin/release-0.2]")),
        "{out}"
    );
    assert!(!out.contains("not the root of a git repository"), "{out}");
}

#[test]
fn prune_outside_a_git_checkout_shows_the_plan_and_deletes_nothing() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    // The host copy is not a git repository: the release branches cannot be read.
    let run = cloud.run(&["prune", "--keep", "2", "--yes"]).fails_with(&[
        "nothing changed: the release branches and tags could not be read",
        "run prune in the repository's git checkout",
    ]);
    assert!(
        run.stdout.contains("would delete 3 image(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("no release branches or tags were checked")
            || run
                .stdout
                .contains("no release branches or tags were checked")
    );
    cloud.assert_listed_once_and_deleted_nothing();
}

#[test]
fn a_build_ends_with_the_prune_hint_and_leaves_the_table_of_images_to_images() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    let host = &cloud.host;
    host.stand_in("packer", crate::support::STAND_IN_PACKER);
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher_3.3.1-2_amd64.deb",
        b"package",
    );
    let config = host
        .read("tools/slurm/packer/slurm-image.toml")
        .replace("keep = 6", "keep = 2");
    host.write("tools/slurm/packer/slurm-image.toml", config);
    cloud.commit_host();
    let run = cloud.run(&["build", "--offline"]).ok();
    assert!(
        run.stdout.contains(
            "slurm: det-environments-slurm-ci-1717047568 -> det-environments-slurm-ci-1800000000"
        ),
        "{}",
        run.stdout
    );
    let hint = run
        .stdout
        .lines()
        .find(|l| l.contains("`cargo xtask slurm-image prune` would"))
        .unwrap_or_else(|| panic!("no prune hint:\n{}", run.stdout));
    // The new image is in the project now and pinned: it takes none of the 2 places kept.
    for old in [OLD_A, OLD_B] {
        assert!(hint.contains(old), "{hint}");
    }
    // The working tree now pins the new image, but the committed images.conf, which every
    // cluster boots until the change lands, still pins the old one: it is protected.
    assert!(!hint.contains(SLURM_PINNED), "{hint}");
    assert!(
        hint.contains("would delete 2 deprecated slurm image(s)") && !hint.contains("deprecate "),
        "{hint}"
    );
    // The table of images is `images`'s to show, when asked: a build ends with its pin, the
    // next step and the hint.
    assert!(!run.stdout.contains("legend: "), "{}", run.stdout);
    assert!(
        !run.stdout.contains(PBS_PINNED),
        "only the built workload manager is summarised"
    );
    // The source family resolved beside one look for an image to reuse, one list afterwards;
    // only reads.
    assert_eq!(
        reads_side_by_side(cloud.api.http_requests()),
        [
            "GET /compute/v1/projects/determined-ai/global/images",
            "GET /compute/v1/projects/schedmd-slurm-public/global/images/family/slurm-gcp-6-3-ubuntu-2004-lts",
            "GET /compute/v1/projects/determined-ai/global/images",
        ]
    );
    assert!(cloud.api.image_deletions().is_empty());
}

#[test]
fn a_compute_api_that_never_answers_does_not_hold_a_finished_build() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    let host = &cloud.host;
    // The API falls silent once packer has built the image (the calls before the build, for
    // the source image and reuse, are answered): the stand-in says so, and waits for the test
    // to silence it before it ends.
    let packer = crate::support::STAND_IN_PACKER
        .strip_suffix("write_manifest\n")
        .expect("the stand-in ends by writing its manifest");
    host.stand_in(
        "packer",
        &format!(
            "{packer}write_manifest\ntouch \"$root/packer-wrote\"\n\
             for _ in $(seq 3600); do [ -e \"$root/api-silenced\" ] && break; sleep 0.05; done\n"
        ),
    );
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher_3.3.1-2_amd64.deb",
        b"package",
    );
    // In-process: a call that gets no answer fails as gcloud's does at its bound (the test
    // above), and what the build does then is the tool's, not gcloud's.
    let build = std::thread::spawn({
        let cmd = cloud.xtask(&["build", "--offline"]);
        move || Run::in_process(cmd)
    });
    crate::support::wait_until(
        || host.path("packer-wrote").exists(),
        || "the stand-in packer never wrote its manifest".to_string(),
    );
    cloud.api.silence();
    host.write("api-silenced", "");
    let run = build.join().unwrap().ok();
    assert!(
        run.stdout.contains(
            "slurm: det-environments-slurm-ci-1717047568 -> det-environments-slurm-ci-1800000000"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(
            "warning: the image is pinned, but listing the images for the prune hint failed"
        ) && run.stderr.contains("got no answer from the Compute API"),
        "{}",
        run.stderr
    );
}
