//! The gcloud edge's tier, beside `contract.rs`: the built xtask through the real gcloud, pointed
//! at a loopback Compute API that records what it is asked to delete. What gcloud itself does:
//! its errors and timeouts named with the cause and the fix, logged out, `[]` beside an error,
//! a delete that fails part-way, a name that holds 403. What images, prune and orphans do with
//! gcloud's answers is tested in-process, in `images.rs`, `prune.rs` and `orphans.rs`.
//!
//! Each gcloud call costs about a second here (python start-up), so the tests are few and each
//! checks several things.

use crate::support::images::{now, Cloud, OLD_A, OLD_B, OLD_PBS};
use crate::support::{HostCopy, Run, STAND_IN_PACKER};

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
fn a_compute_api_that_never_answers_fails_images_within_the_bound_naming_what_to_check() {
    let Some(cloud) = Cloud::with_images() else {
        return;
    };
    cloud.api.silence();
    let mut cmd = cloud.xtask(&["images"]);
    // The bound counts from gcloud's start: long enough for its request to reach the server on
    // a busy machine (at 5 s a loaded machine's gcloud could be stopped before it sent one;
    // with two busy loops beside the suite it starts in 1 to 3 s).
    cmd.env("SLURM_IMAGE_GCLOUD_TIMEOUT_S", "10");
    // It used to print nothing for 302 s and then show gcloud's crash text; Run gives up on a
    // run that hangs long before that.
    let run = Run::of(cmd).fails_with(&[
        "gcloud compute images list",
        "no answer from the Compute API within 10 s for project determined-ai",
        "check the network connection",
        "status.cloud.google.com",
    ]);
    assert!(
        run.stderr
            .contains("gcloud: listing the images in project determined-ai (waiting at most 10 s)"),
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

#[test]
fn logged_out_gcloud_is_one_cause_said_once() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    // gcloud with an account but no credentials, as after they expired.
    let logged_out = |args: &[&str]| {
        let mut cmd = host.xtask(args);
        cmd.env_remove("CLOUDSDK_AUTH_DISABLE_CREDENTIALS");
        Run::of(cmd)
    };
    let doctor = logged_out(&["doctor"]);
    let lines: Vec<&str> = doctor.stdout.lines().collect();
    let gcloud = lines
        .iter()
        .find(|line| line.contains(" gcloud: "))
        .unwrap_or_else(|| panic!("no gcloud line\n{}", doctor.stdout));
    assert!(
        gcloud.starts_with("FAIL  gcloud: not logged in (gcloud said: Your current active account")
            && gcloud.ends_with("; fix: run `gcloud auth login`"),
        "{gcloud}"
    );
    for skipped in [
        "skip  GCP project: needs gcloud login",
        "skip  pinned images: needs gcloud login",
    ] {
        assert!(lines.contains(&skipped), "{skipped}\n{}", doctor.stdout);
    }
    assert_eq!(
        doctor.stdout.matches("gcloud auth login").count(),
        1,
        "{}",
        doctor.stdout
    );

    for command in ["images", "prune", "orphans"] {
        let run = logged_out(&[command]).fails_with(&[
            "gcloud is not logged in: run `gcloud auth login` (gcloud said: Your current active account",
        ]);
        let error = run
            .stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap();
        assert_eq!(
            error.matches("gcloud auth login").count(),
            1,
            "{command}: {error}"
        );
        assert!(
            !error.contains("activate-service-account"),
            "{command}: {error}"
        );
    }
}

#[test]
fn gcloud_saying_error_while_exiting_0_is_an_error_not_an_empty_list() {
    let host = HostCopy::new();
    // gcloud as the adversary saw it: `[]` on stdout, an error on stderr, and exit 0.
    host.stand_in(
        "gcloud",
        "#!/bin/sh\necho '[]'\necho 'ERROR: (gcloud.compute.images.list) Something went wrong on the way' >&2\nexit 0\n",
    );
    for command in ["prune", "images", "orphans"] {
        let run = host
            .run_binary(&[command])
            .fails_with(&["failed: Something went wrong on the way"]);
        assert!(
            !run.stdout.contains("nothing to prune") && !run.stdout.contains("  none"),
            "{command}: {}",
            run.stdout
        );
    }
}
