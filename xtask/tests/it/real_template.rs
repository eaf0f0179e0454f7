//! Every feature on a template in the real host repository's form, which declares none of
//! `manifest_path`, `image_labels` or `source_image`: both builds at once, labels, the source
//! image packer used, reuse, and the task images' consumers.

use crate::support::commit_host_tree;
use crate::support::{git, HostCopy, Run, GIT_IDENTITY as IDENTITY, STAND_IN_PACKER};

pub(crate) const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";
pub(crate) const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";
/// The real form with the stand-in packer, older pins and a launcher package in build/.
fn real_form() -> HostCopy {
    let host = HostCopy::real_form();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(IMAGES_CONF, SEED);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    host
}

/// [`real_form`] as a git repository with one commit on `main`.
fn real_form_repo() -> HostCopy {
    let host = real_form();
    commit_host_tree(&host);
    host
}

pub(crate) fn run_in_repo(host: &HostCopy, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = host.xtask(args);
    cmd.envs(IDENTITY).envs(env.iter().copied());
    Run::in_process(cmd)
}

pub(crate) fn packer_builds(host: &HostCopy) -> usize {
    host.packer_calls()
        .iter()
        .filter(|c| c.contains("| build"))
        .count()
}

/// The labels of an image in the loopback Compute API, as `key=value` lines.
pub(crate) fn labels_of(host: &HostCopy, image: &str) -> Vec<String> {
    let image = host
        .api()
        .image(image)
        .unwrap_or_else(|| panic!("no image {image}"));
    image["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_release_builds_both_at_once_labels_both_and_a_rebuild_reuses_each() {
    let host = real_form_repo();
    // Each stand-in waits until the other has started: one after the other, the first fails.
    let run = run_in_repo(
        &host,
        &[
            "release",
            "--yes",
            "--offline",
            "--branch",
            "slurm-images-test",
        ],
        &[("FAKE_PACKER", "rendezvous")],
    )
    .ok();
    assert!(
        !run.stderr.contains("one after the other"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not labelled"), "{}", run.stderr);
    for wm in ["slurm", "pbs"] {
        assert!(
            run.stderr.contains(&format!(
                "[{wm}] labelled det-environments-{wm}-ci-1800000000 with what it is made from"
            )),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        host.read(IMAGES_CONF),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1800000000\n"
    );
    assert_eq!(git(&host, &["status", "--porcelain"]), "");

    // Each packer ran in its own copy of the template, whose build/ held the launcher alone;
    // the host's build/ keeps only the launcher.
    let calls = host.packer_calls();
    for wm in ["slurm", "pbs"] {
        let folder = host.state_dir().join(wm);
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with(&format!("{} | build", folder.display()))),
            "{calls:?}"
        );
    }
    assert_eq!(
        host.read("packer-uploads.log"),
        format!("{LAUNCHER} \n{LAUNCHER} \n")
    );
    let left: Vec<String> = std::fs::read_dir(host.build_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [LAUNCHER]);

    // Both images carry what they are made from, the source image packer said it used included.
    for (wm, source) in [
        ("slurm", crate::support::SLURM_SOURCE),
        ("pbs", crate::support::PBS_SOURCE),
    ] {
        let labels = labels_of(&host, &format!("det-environments-{wm}-ci-1800000000"));
        for wanted in [
            format!("workload-manager={wm}"),
            "launcher=3_3_1-2".to_string(),
            format!("source-image={source}"),
        ] {
            assert!(labels.contains(&wanted), "{wm}: {labels:?}");
        }
        assert!(
            labels.iter().any(|l| l.starts_with("input-fingerprint=")),
            "{labels:?}"
        );
    }

    // An unchanged rebuild of each pins the image it has, with no packer run, and says why.
    let before = packer_builds(&host);
    for wm in ["slurm", "pbs"] {
        let run = host.run(&["build", "--offline", "--wm", wm]).ok();
        assert!(
            run.stdout.contains(&format!(
                "reusing det-environments-{wm}-ci-1800000000: it was made from these same inputs"
            )),
            "{}",
            run.stdout
        );
    }
    assert_eq!(packer_builds(&host), before);

    // A changed input is named.
    host.write(
        "tools/slurm/packer/static/motd",
        "a new message of the day\n",
    );
    let run = host.run(&["build", "--offline", "--wm", "pbs"]).ok();
    assert!(run.stdout.contains("static/ changed"), "{}", run.stdout);
    assert_eq!(packer_builds(&host), before + 1);
}

#[test]
fn the_labels_name_the_source_image_packer_used_when_the_family_moved() {
    let host = real_form();
    let moved = "slurm-gcp-6-3-ubuntu-2004-lts-v20240202";
    let run = host
        .run_env(
            &["build", "--offline"],
            &[("FAKE_PACKER_USING_IMAGE", moved)],
        )
        .ok();
    assert!(
        run.stderr.contains(&format!(
            "packer started from {moved}, not {}",
            crate::support::SLURM_SOURCE
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("labelled det-environments-slurm-ci-1800000000 with what it is made from"),
        "{}",
        run.stderr
    );
    let labels = labels_of(&host, "det-environments-slurm-ci-1800000000");
    assert!(
        labels.contains(&format!("source-image={moved}")),
        "{labels:?}"
    );
}

#[test]
fn an_image_that_cannot_be_labelled_is_pinned_with_the_command_that_labels_it() {
    let host = real_form();
    host.api().forbid_path(
        "/compute/v1/projects/determined-ai/global/images/det-environments-slurm-ci-1800000000/setLabels",
    );
    let run = host.run(&["build", "--offline"]).ok();
    assert!(
        run.stderr
            .contains("warning: det-environments-slurm-ci-1800000000 was built but not labelled"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "gcloud compute images add-labels det-environments-slurm-ci-1800000000 --project=determined-ai --labels=workload-manager=slurm,"
        ),
        "{}",
        run.stderr
    );
    assert!(host
        .read(IMAGES_CONF)
        .starts_with("slurm: det-environments-slurm-ci-1800000000\n"));
}

/// An Artifactory that refuses at once, so that doctor's lookup does not wait.
pub(crate) const NO_ARTIFACTORY: (&str, &str) = (
    "SLURM_IMAGE_ARTIFACTORY_URL",
    "http://127.0.0.1:9/artifactory/none/",
);

#[test]
fn doctor_names_each_call_of_the_removed_make_target_with_its_replacement() {
    let host = real_form_repo();
    let run = host.run_env(&["doctor"], &[NO_ARTIFACTORY]);
    for line in [216, 220] {
        let wanted = format!(
            "warn  adoption: tools/slurm/scripts/slurmcluster.sh:{line} still calls `make -C tools/slurm/packer`, \
             which adoption removed; fix: use `cargo xtask slurm-image build --wm <slurm|pbs>`"
        );
        assert!(run.stdout.contains(&wanted), "{}", run.stdout);
    }
    assert!(
        run.stdout
            .contains("ok    task images: the 3 consumer files name the tags the image caches"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_consumer_on_another_task_image_tag_fails_check_and_stops_a_release_before_packer() {
    let host = real_form_repo();
    let yaml = "tools/slurm/scripts/slurmcluster.yaml";
    let text = host.read(yaml).replace(
        "cpu: determinedai/pytorch-tensorflow-cpu-dev:e960eae",
        "cpu: determinedai/pytorch-tensorflow-cpu-dev:0736b6d",
    );
    host.write(yaml, text);
    git(&host, &["commit", "-q", "-am", "Another CPU task image"]);
    let wanted = [
        "tools/slurm/scripts/slurmcluster.yaml:80 (task_container_defaults) names \
         determinedai/pytorch-tensorflow-cpu-dev:0736b6d",
        "the image caches determinedai/pytorch-tensorflow-cpu-dev:e960eae (image.cpu_task_image in slurm-image.toml)",
        "fix: name determinedai/pytorch-tensorflow-cpu-dev:e960eae on line 80, or set image.cpu_task_image = \
         \"determinedai/pytorch-tensorflow-cpu-dev:0736b6d\" in slurm-image.toml and build new images",
    ];
    let check = host.run(&["check"]).fails_with(&wanted);
    assert!(
        check
            .stderr
            .lines()
            .any(|l| l.starts_with(&format!("  {}", wanted[0]))),
        "the finding is a line of its own\n{}",
        check.stderr
    );
    let doctor = host.run_env(&["doctor"], &[NO_ARTIFACTORY]);
    assert!(
        doctor
            .stdout
            .contains(&format!("FAIL  task images: {}", wanted[0])),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor
            .stderr
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains("task images")),
        "doctor fails on the task images\n{}",
        doctor.stderr
    );
    run_in_repo(
        &host,
        &[
            "release",
            "--yes",
            "--offline",
            "--branch",
            "slurm-images-test",
        ],
        &[],
    )
    .fails_with(&wanted);
    assert_eq!(packer_builds(&host), 0);
    assert_eq!(git(&host, &["branch", "--format=%(refname:short)"]), "main");
    // A build is told, and goes on.
    let run = host.run(&["build", "--offline", "--dry-run"]).ok();
    assert!(
        run.stderr.contains(&format!("warning: {}", wanted[0])),
        "{}",
        run.stderr
    );
    // A consumer file that is gone is named, and stops nothing.
    std::fs::remove_file(host.path(".circleci/real_config.yml")).unwrap();
    let run = host.run(&["build", "--offline", "--dry-run"]).ok();
    assert!(
        run.stderr.contains(
            "warning: .circleci/real_config.yml is not there, so its task images were not compared"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_renamed_pipeline_parameter_is_named_as_stale_config_and_fails_check() {
    let host = real_form_repo();
    let ci = ".circleci/real_config.yml";
    host.write(
        ci,
        host.read(ci)
            .replace("  default-pt-gpu-hpc-image:", "  hpc-gpu-image:"),
    );
    git(
        &host,
        &["commit", "-q", "-am", "Rename the GPU image parameter"],
    );
    let wanted = ".circleci/real_config.yml has no key default-pt-gpu-hpc-image, so nothing there was \
                  compared; fix: name the key that holds the task image now in image.task_image_consumers";
    host.run(&["check"]).fails_with(&[wanted]);
    // A build is told, and goes on.
    let run = host.run(&["build", "--offline", "--dry-run"]).ok();
    assert!(
        run.stderr.contains(&format!("warning: {wanted}")),
        "{}",
        run.stderr
    );
}

#[test]
fn a_variables_file_packer_would_load_by_itself_stops_the_build_before_packer() {
    let host = real_form();
    host.write(
        "tools/slurm/packer/scratch.auto.pkrvars.hcl",
        "ssh_username = \"someone\"\n",
    );
    host.run(&["build", "--offline"]).fails_with(&[
        "scratch.auto.pkrvars.hcl in tools/slurm/packer would be loaded by packer and override the variables",
        "delete or rename it",
    ]);
    assert_eq!(packer_builds(&host), 0);
}

#[test]
fn a_consumer_that_is_a_folder_a_fifo_or_not_text_fails_check_naming_it_and_never_hangs() {
    let host = real_form_repo();
    let ci = ".circleci/real_config.yml";
    let mut bytes = host.read(ci).into_bytes();
    bytes.extend_from_slice(b"\xff\xfe not UTF-8\n");
    host.write(ci, bytes);
    host.run(&["check"]).fails_with(&[
        ".circleci/real_config.yml cannot be read as text (stream did not contain valid UTF-8)",
        "its task images were not compared",
    ]);
    std::fs::remove_file(host.path(ci)).unwrap();
    std::fs::create_dir(host.path(ci)).unwrap();
    host.run(&["check"]).fails_with(&[
        ".circleci/real_config.yml cannot be read as text",
        "is a folder",
    ]);
    std::fs::remove_dir(host.path(ci)).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(host.path(ci))
        .status()
        .unwrap();
    assert!(status.success());
    let doctor = host.run_env(&["doctor"], &[NO_ARTIFACTORY]);
    assert!(
        doctor
            .stdout
            .contains("FAIL  task images: .circleci/real_config.yml cannot be read as text"),
        "{}",
        doctor.stdout
    );
}
