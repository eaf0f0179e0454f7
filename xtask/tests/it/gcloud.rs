//! images, prune and orphans through the built xtask and the real gcloud, pointed at a loopback
//! Compute API that records what it is asked to delete.
//!
//! Each gcloud call costs about a second here (python start-up), so the tests are few and each
//! checks several things.

use std::process::Command;

use crate::support::compute_api::ComputeApi;
use crate::support::{require_tool, temp_dir, HostCopy, Run, TempDir};

const SLURM_PINNED: &str = "det-environments-slurm-ci-1717047568";
const PBS_PINNED: &str = "det-environments-pbs-ci-1717016272";
const LABELLED: &str = "det-environments-slurm-ci-1717100000";
const PENDING: &str = "det-environments-slurm-ci-1717200000";
const OLD_A: &str = "det-environments-slurm-ci-1717300000";
const OLD_B: &str = "det-environments-slurm-ci-1717400000";
const OLD_PBS: &str = "det-environments-pbs-ci-1717010000";

/// A host copy, a Compute API stand-in and a gcloud configuration folder of its own.
struct Cloud {
    host: HostCopy,
    api: ComputeApi,
    gcloud_config: TempDir,
}

impl Cloud {
    /// `None` (after a loud skip) on a machine without gcloud; under CI that is a failure.
    fn new() -> Option<Cloud> {
        require_tool("gcloud")?;
        let host = HostCopy::new();
        Some(Cloud {
            api: host.api().clone(),
            host,
            gcloud_config: temp_dir("gcloud-config"),
        })
    }

    /// Both workload managers' images as the team leaves them, plus images that are not ours.
    fn with_images() -> Option<Cloud> {
        let cloud = Cloud::new()?;
        let deb = "HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb";
        let api = &cloud.api;
        api.add_image(SLURM_PINNED, 1_717_047_568, "READY", &[], deb);
        api.add_image(
            LABELLED,
            1_717_100_000,
            "READY",
            &[("branch", "release-0-1")],
            deb,
        );
        api.add_image(PENDING, 1_717_200_000, "PENDING", &[], deb);
        api.add_image(OLD_A, 1_717_300_000, "READY", &[], deb);
        api.add_image(OLD_B, 1_717_400_000, "READY", &[], deb);
        api.add_image(
            "det-environments-slurm-ci-1717500000",
            1_717_500_000,
            "READY",
            &[],
            deb,
        );
        api.add_image(
            "det-environments-slurm-ci-1717600000",
            1_717_600_000,
            "READY",
            &[],
            deb,
        );
        api.add_image(
            PBS_PINNED,
            1_717_016_272,
            "READY",
            &[],
            "HPC pbs testing VM hpe-hpc-launcher_3.3.0-1_amd64.deb",
        );
        api.add_image(OLD_PBS, 1_717_010_000, "READY", &[], "HPC pbs testing VM");
        api.add_image(
            "det-environments-pbs-ci-1717700000",
            1_717_700_000,
            "READY",
            &[],
            "HPC pbs testing VM",
        );
        api.add_image(
            "det-environments-pbs-ci-1717800000",
            1_717_800_000,
            "READY",
            &[],
            "HPC pbs testing VM",
        );
        // The old ones were deprecated by a prune two months ago: the next deletes them.
        for (old, pin) in [
            (OLD_A, SLURM_PINNED),
            (OLD_B, SLURM_PINNED),
            (OLD_PBS, PBS_PINNED),
        ] {
            api.set_deprecated(old, Some(now() - 60 * 86_400), Some(pin));
        }
        // Not ours: never listed, never deleted, however old.
        api.add_image(
            "ubuntu-custom-1",
            1_600_000_000,
            "READY",
            &[],
            "someone else's",
        );
        api.add_image(
            "det-environments-slurm-1600000000",
            1_600_000_000,
            "READY",
            &[],
            "not a ci image",
        );
        Some(cloud)
    }

    fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = self.host.xtask(args);
        self.api
            .configure(&mut cmd, self.gcloud_config.path(), "determined-ai");
        cmd
    }

    /// One gcloud call reached the API, a list, and nothing was deleted.
    fn assert_listed_once_and_deleted_nothing(&self) {
        let requests = self.api.http_requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        assert!(requests[0].starts_with("GET "), "{requests:?}");
        assert!(self.api.image_deletions().is_empty());
    }

    /// The tool in-process, through the Compute seam: for what prune, orphans and images do.
    fn run(&self, args: &[&str]) -> Run {
        Run::in_process(self.xtask(args))
    }

    /// The built binary through the real gcloud: for what the gcloud edge itself does.
    fn run_binary(&self, args: &[&str]) -> Run {
        Run::of(self.xtask(args))
    }

    /// Makes the host copy a git repository with everything committed on `main`, as a
    /// release engineer's checkout is; prune deletes nothing where it cannot read the branches.
    fn commit_host(&self) {
        self.git(&["init", "-q", "-b", "main"]);
        self.git(&["add", "tools"]);
        self.git(&["commit", "-q", "-m", "host"]);
    }

    fn git(&self, args: &[&str]) {
        let status = Command::new("git")
            .args(args)
            .current_dir(self.host.root())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn images_lists_ours_newest_first_with_marks_and_deletes_nothing() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    // The config's keep is the default: 2 makes some images prunable.
    let config = "tools/slurm/packer/slurm-image.toml";
    cloud.host.write(
        config,
        cloud.host.read(config).replace("keep = 6", "keep = 2"),
    );
    let run = cloud.run(&["images", "--wide"]).ok();
    let out = &run.stdout;
    assert_eq!(
        cloud.api.http_requests(),
        ["GET /compute/v1/projects/determined-ai/global/images"]
    );
    assert!(cloud.api.image_deletions().is_empty());
    assert!(
        out.contains("is not the root of a git repository (")
            && out.contains("no release branches or tags were checked"),
        "{out}"
    );
    assert!(
        !out.contains("ubuntu-custom-1") && !out.contains("det-environments-slurm-1600000000"),
        "{out}"
    );
    // The image's own row: a deprecated image's row names its replacement too.
    let line = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing\n{out}"))
            .to_string()
    };
    assert!(
        line(SLURM_PINNED).contains("[keep: pinned in images.conf]"),
        "{out}"
    );
    assert!(
        line(PBS_PINNED).contains("[keep: pinned in images.conf]"),
        "{out}"
    );
    assert!(line(PBS_PINNED).contains("launcher 3.3.0-1"), "{out}");
    assert!(
        line(LABELLED).contains("branch=release-0-1")
            && line(LABELLED).contains("labelled branch=release-0-1"),
        "{out}"
    );
    assert!(line(PENDING).contains("status PENDING"), "{out}");
    // Outside a git checkout prune deletes nothing, and the marks say so.
    let would = "[would delete; prune needs a git checkout]";
    assert!(
        line(OLD_A).contains(would) && line(OLD_A).contains("launcher 3.3.1-2"),
        "{out}"
    );
    assert!(line(OLD_PBS).contains(would), "{out}");
    assert_eq!(out.matches(would).count(), 3, "{out}");
    assert!(!out.contains("[DELETE]"), "{out}");
    // Grouped by workload manager, newest first.
    // A row starts with its image; a deprecated one names its replacement further on.
    let at = |needle: &str| {
        out.find(&format!("\n  {needle} "))
            .or_else(|| out.find(needle))
            .unwrap()
    };
    assert!(at("slurm images") < at("det-environments-slurm-ci-1717600000"));
    assert!(at("det-environments-slurm-ci-1717600000") < at(OLD_A));
    assert!(at(OLD_A) < at(SLURM_PINNED));
    assert!(at(SLURM_PINNED) < at("pbs images"));
    assert!(at("pbs images") < at(PBS_PINNED));
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
fn a_part_way_failure_says_what_is_gone_and_what_remains() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    cloud.commit_host();
    cloud.api.fail_delete_of(OLD_B);
    let run = cloud
        .run_binary(&["prune", "--keep", "2", "--yes"])
        .fails_with(&[
            &format!("deleted {OLD_A}, {OLD_PBS}; still there: {OLD_B}"),
            "is already being used by",
        ]);
    assert!(!run.stdout.contains("deleted 3 image(s)"), "{}", run.stdout);
    assert_eq!(
        cloud.api.http_requests(),
        [
            "GET /compute/v1/projects/determined-ai/global/images",
            "POST /batch/compute/v1",
            "GET /compute/v1/projects/determined-ai/global/images"
        ]
    );
}

#[test]
fn orphans_are_packers_old_vms_only_and_deleted_per_zone_when_confirmed() {
    let Some(cloud) = Cloud::new() else { return };
    let packer = "New instance created by Packer";
    let now = now();
    let api = &cloud.api;
    api.add_instance(
        "us-central1-c",
        "packer-aaa",
        now - 5 * 3600,
        "RUNNING",
        packer,
    );
    api.add_instance(
        "us-west1-b",
        "packer-bbb",
        now - 3 * 86_400,
        "TERMINATED",
        packer,
    );
    api.add_instance(
        "us-central1-c",
        "packer-young",
        now - 3600,
        "RUNNING",
        packer,
    );
    api.add_instance(
        "us-central1-c",
        "packer-lookalike",
        now - 9 * 86_400,
        "RUNNING",
        "a VM of someone else",
    );
    api.add_instance(
        "us-central1-c",
        "web-1",
        now - 9 * 86_400,
        "RUNNING",
        packer,
    );

    let out = cloud.run(&["orphans"]).ok().stdout;
    let listed: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(listed.len(), 2, "{out}");
    assert!(
        listed[0].contains("packer-aaa")
            && listed[0].contains("us-central1-c")
            && listed[0].contains("5h 0m"),
        "{out}"
    );
    assert!(
        listed[1].contains("packer-bbb")
            && listed[1].contains("us-west1-b")
            && listed[1].contains("3d 0h")
            && listed[1].contains("TERMINATED"),
        "{out}"
    );

    // --delete without --yes and without a terminal: nothing is deleted.
    let out = cloud.run(&["orphans", "--delete"]).ok().stdout;
    assert!(out.contains("nothing deleted"), "{out}");
    assert!(api.instance_deletions().is_empty());

    api.take_calls();
    let out = cloud
        .run(&["orphans", "--older-than", "30m", "--delete", "--yes"])
        .ok()
        .stdout;
    assert!(out.contains("deleted 3 VM(s)"), "{out}");
    assert_eq!(
        api.instance_deletions(),
        [
            "us-central1-c/packer-aaa",
            "us-central1-c/packer-young",
            "us-west1-b/packer-bbb"
        ]
    );
    assert_eq!(
        api.take_calls(),
        ["list_instances", "delete_instances", "delete_instances"],
        "one list and one delete call per zone"
    );
}

#[test]
fn errors_name_the_cause_and_the_fix() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };

    // Checked before any gcloud call (a bad --older-than is a usage error: cli.rs).
    let mut cmd = cloud.xtask(&["images"]);
    cmd.env("PATH", cloud.host.root().join("bin"));
    Run::of(cmd).fails_with(&[
        "gcloud is not on PATH",
        "https://cloud.google.com/sdk/docs/install",
    ]);
    assert!(cloud.api.requests().is_empty());

    // No credentials: gcloud refuses before sending anything.
    let mut cmd = cloud.xtask(&["prune", "--yes"]);
    cmd.env_remove("CLOUDSDK_AUTH_DISABLE_CREDENTIALS");
    Run::of(cmd).fails_with(&[
        "gcloud is not logged in: run `gcloud auth login`",
        "active account",
    ]);
    assert!(cloud.api.requests().is_empty());

    cloud.api.forbid();
    cloud.run_binary(&["prune", "--yes"]).fails_with(&[
        "no access to GCP project determined-ai",
        "Required 'compute.images.list' permission",
    ]);
    assert_eq!(cloud.api.requests().len(), 1);
    assert!(cloud.api.image_deletions().is_empty());
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
    // The source family resolved, one look for an image to reuse, one list afterwards; only
    // reads.
    assert_eq!(
        cloud.api.http_requests(),
        [
            "GET /compute/v1/projects/schedmd-slurm-public/global/images/family/slurm-gcp-6-3-ubuntu-2004-lts",
            "GET /compute/v1/projects/determined-ai/global/images",
            "GET /compute/v1/projects/determined-ai/global/images",
        ]
    );
    assert!(cloud.api.image_deletions().is_empty());
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
fn a_compute_api_that_never_answers_fails_images_within_the_bound_naming_what_to_check() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    cloud.api.silence();
    let mut cmd = cloud.xtask(&["images"]);
    // The bound counts from gcloud's start: long enough for its request to reach the server on
    // a busy machine (at 5 s a loaded machine's gcloud could be stopped before it sent one;
    // with two busy loops beside the suite it starts in about 3 s).
    cmd.env("SLURM_IMAGE_GCLOUD_TIMEOUT_S", "15");
    // It used to print nothing for 302 s and then show gcloud's crash text; Run gives up on a
    // run that hangs long before that.
    let run = Run::of(cmd).fails_with(&[
        "gcloud compute images list",
        "no answer from the Compute API within 15 s for project determined-ai",
        "check the network connection",
        "status.cloud.google.com",
    ]);
    assert!(
        run.stderr
            .contains("gcloud: listing the images in project determined-ai (waiting at most 15 s)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("gcloud feedback"), "{}", run.stderr);
    assert_eq!(cloud.api.requests().len(), 1);

    let mut cmd = cloud.xtask(&["images"]);
    cmd.env("SLURM_IMAGE_GCLOUD_TIMEOUT_S", "18446744073709552");
    Run::of(cmd).fails_with(&[
        "SLURM_IMAGE_GCLOUD_TIMEOUT_S=\"18446744073709552\" is out of range",
        "from 1 to 3600",
    ]);
    assert_eq!(cloud.api.requests().len(), 1, "no call with a bad setting");
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

#[test]
fn an_image_whose_name_holds_403_is_not_taken_for_a_permission_problem() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    // An old image whose timestamp holds "403", in use by an instance template: a 400.
    let in_use = "det-environments-slurm-ci-1717403000";
    cloud.api.add_image(
        in_use,
        1_717_403_000,
        "READY",
        &[],
        "HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb",
    );
    cloud
        .api
        .set_deprecated(in_use, Some(now() - 60 * 86_400), None);
    cloud.api.fail_delete_of(in_use);
    cloud.commit_host();
    let run = cloud
        .run_binary(&["prune", "--keep", "2", "--yes"])
        .fails_with(&[in_use, "is already being used by", "still there:"]);
    assert!(
        !run.stderr.contains("no access to GCP project"),
        "{}",
        run.stderr
    );
    assert!(cloud.api.image_deletions().contains(&in_use.to_string()));
}

// The calls through the tool's Compute seam, as the in-process cloud notes them: what a
// command costs in round trips to Google, whichever program makes them.
const FAMILY: &str = "image_from_family";
const LIST: &str = "list_images_for";
const DESCRIBE: &str = "describe_image";
const LABEL: &str = "add_image_labels";

#[test]
fn a_build_and_a_reused_build_make_only_the_gcloud_calls_they_need() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    let host = &cloud.host;
    let calls = &cloud.api;
    host.stand_in("packer", crate::support::STAND_IN_PACKER);
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher_3.3.1-2_amd64.deb",
        b"package",
    );
    cloud.commit_host();
    // The source image, one listing that decides reuse, and one listing after packer for
    // the table of images (the first is an hour old by then).
    calls.take_calls();
    let run = cloud.run(&["build", "--offline"]).ok();
    assert!(run.stdout.contains("det-environments-slurm-ci-1800000000"));
    assert_eq!(calls.take_calls(), [FAMILY, LIST, LIST]);
    // Reused: the listing that decided it is also the table.
    let run = cloud.run(&["build", "--offline"]).ok();
    assert!(run
        .stdout
        .contains("reusing det-environments-slurm-ci-1800000000"));
    // The table of images is `images`'s to show; the one listing still serves the prune hint.
    assert!(
        !run.stdout.contains("slurm images in project"),
        "{}",
        run.stdout
    );
    assert_eq!(calls.take_calls(), [FAMILY, LIST]);
}

#[test]
fn a_verified_build_its_reuse_and_verify_read_each_image_once() {
    if !crate::verify::sandbox_available() {
        return;
    }
    let host = crate::verify::host("5m");
    let calls = host.api();
    calls.take_calls();
    let new = "det-environments-slurm-ci-1800000000";
    let boot = ["create_instance", "serial_output", "delete_instances"];
    // Built: its labels (the template may have added some) are read before the
    // verification's are added, and the replaced image's for what changed inside.
    host.run(&["build", "--offline"]).ok();
    let mut built = vec![FAMILY, LIST];
    built.extend(boot);
    built.extend([DESCRIBE, LABEL, DESCRIBE, LIST]);
    assert_eq!(calls.take_calls(), built);
    // Reused and verified already: the listing holds its labels.
    host.write("tools/slurm/terraform/images.conf", crate::verify::SEED);
    host.run(&["build", "--offline"]).ok();
    assert_eq!(calls.take_calls(), [FAMILY, LIST]);
    // Verified on demand: the labels read to know what to expect are those added to.
    host.run(&["verify", new]).ok();
    let mut verified = vec![DESCRIBE];
    verified.extend(boot);
    verified.push(LABEL);
    assert_eq!(calls.take_calls(), verified);
}
