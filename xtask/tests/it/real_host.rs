//! The whole real host repository, determined-ai/determined at c1e9c6d, as an adopting team
//! leaves it after the README's adoption steps (`HostCopy::real_host`): every scenario a
//! release engineer runs there, with the stand-in packer and the loopback Compute API.

use crate::real_template::{
    labels_of, packer_builds, run_in_repo, IMAGES_CONF, LAUNCHER, NO_ARTIFACTORY,
};
use crate::support::{git, HostCopy, Run, GIT_IDENTITY, STAND_IN_PACKER};

const CI: &str = ".circleci/real_config.yml";

/// The adopted tree with the stand-in packer, a launcher package in build/, and the images
/// its images.conf pins (built in May 2024) in the project.
fn adopted() -> Option<HostCopy> {
    let host = HostCopy::real_host()?;
    for (image, created) in [
        ("det-environments-slurm-ci-1717047568", 1_717_047_568),
        ("det-environments-pbs-ci-1717016272", 1_717_016_272),
    ] {
        host.api().add_image(image, created, "READY", &[], "");
    }
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    Some(host)
}

#[test]
fn adoption_leaves_the_tree_committed_formatted_and_calling_nothing_it_removed() {
    let Some(host) = adopted() else { return };
    assert_eq!(git(&host, &["status", "--porcelain"]), "");
    host.run(&["fmt", "--check"]).ok();
    for gone in [
        "tools/slurm/packer/Makefile",
        "tools/slurm/packer/scripts/generate-pkr-vars.sh",
        "tools/slurm/packer/scripts/update-variables.sh",
    ] {
        assert!(!host.path(gone).exists(), "{gone} is still there");
    }
    assert!(host
        .path("tools/slurm/packer/scripts/install-ansible.sh")
        .exists());
    let script = host.read("tools/slurm/scripts/slurmcluster.sh");
    assert!(
        script.contains("Regenerate base image with: cargo xtask slurm-image build --wm ${OPT_WORKLOAD_MANAGER}"),
        "slurmcluster.sh names the xtask where it named make"
    );
    // Off the VPN (Artifactory refuses), doctor finds nothing else to fix.
    let doctor = host.run_env(&["doctor"], &[NO_ARTIFACTORY]);
    let not_ok: Vec<&str> = doctor
        .stdout
        .lines()
        .filter(|l| {
            l.starts_with("FAIL") || l.starts_with("warn") && !l.starts_with("warn  artifactory:")
        })
        .collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}\n{}", doctor.stdout);
    assert!(
        doctor
            .stdout
            .contains("ok    adoption: nothing calls the removed Makefile"),
        "{}",
        doctor.stdout
    );
}

/// Gives line `line` of CI's config, which must read `was`, the tag `tag` instead of `old`, and
/// commits it.
fn retag_ci_line(host: &HostCopy, line: usize, was: &str, old: &str, tag: &str) {
    let text = host.read(CI);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines[line - 1], was, "{CI}:{line} at c1e9c6d");
    lines[line - 1] = was.replace(old, tag);
    host.write(CI, lines.join("\n") + "\n");
    git(
        host,
        &["commit", "-q", "-am", "Another task image tag in CI"],
    );
}

#[test]
fn check_passes_on_the_adopted_tree() {
    let Some(host) = adopted() else { return };
    let run = host.run(&["check"]).ok();
    assert!(
        !run.stderr.contains("task image"),
        "CI's unit-test jobs on other tags are not consumers\n{}",
        run.stderr
    );
}

#[test]
fn another_tag_on_the_gpu_hpc_parameter_fails_check_and_doctor_and_stops_a_release_before_packer() {
    let Some(host) = adopted() else { return };
    retag_ci_line(
        &host,
        39,
        "    default: determinedai/pytorch-ngc-dev:e960eae",
        "e960eae",
        "0736b6d",
    );
    let wanted = [
        ".circleci/real_config.yml:39 (default-pt-gpu-hpc-image) names determinedai/pytorch-ngc-dev:0736b6d \
         but the image caches determinedai/pytorch-ngc-dev:e960eae (image.cuda_task_image in slurm-image.toml)",
        "fix: name determinedai/pytorch-ngc-dev:e960eae on line 39, or set image.cuda_task_image = \
         \"determinedai/pytorch-ngc-dev:0736b6d\" in slurm-image.toml and build new images",
    ];
    let check = host.run(&["check"]).fails_with(&wanted);
    // One finding, on a line of its own: lines 296, 2454 and 3244 run unit-test jobs on the same
    // tag, and are not named.
    let findings: Vec<&str> = check
        .stderr
        .lines()
        .filter(|l| l.starts_with("  ") && l.contains(CI))
        .collect();
    assert_eq!(findings.len(), 1, "{}", check.stderr);
    assert!(
        findings[0].starts_with(&format!("  {}", wanted[0])),
        "{}",
        check.stderr
    );
    for other in [":296", ":2454", ":3244"] {
        assert!(
            !check.stderr.contains(&format!("{CI}{other}")),
            "{}",
            check.stderr
        );
    }

    let doctor = host.run_env(&["doctor"], &[NO_ARTIFACTORY]);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with(&format!("FAIL  task images: {}", wanted[0]))),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor
            .stderr
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains("task images")),
        "doctor is not ready\n{}",
        doctor.stderr
    );

    let branches = git(&host, &["branch", "--format=%(refname:short)"]);
    run_in_repo(&host, &["release", "--yes", "--offline"], &[]).fails_with(&wanted);
    assert_eq!(packer_builds(&host), 0, "no packer build");
    assert_eq!(
        git(&host, &["branch", "--format=%(refname:short)"]),
        branches,
        "no release branch"
    );
}

#[test]
fn another_tag_on_a_unit_test_job_in_ci_leaves_check_passing() {
    let Some(host) = adopted() else { return };
    retag_ci_line(
        &host,
        2454,
        "      - image: determinedai/pytorch-ngc-dev:0736b6d",
        "0736b6d",
        "1234567",
    );
    let run = host.run(&["check"]).ok();
    assert!(!run.stderr.contains(CI), "{}", run.stderr);
}

#[test]
fn each_workload_manager_builds_labels_and_pins_its_own_image_then_reuses_it() {
    let Some(host) = adopted() else { return };
    for wm in ["slurm", "pbs"] {
        let run = host
            .run(&["build", "--offline", "--no-verify", "--wm", wm])
            .ok();
        let line = host
            .read(IMAGES_CONF)
            .lines()
            .find(|l| l.starts_with(&format!("{wm}: ")))
            .unwrap()
            .to_string();
        let image = line.split_once(": ").unwrap().1;
        assert!(
            image.starts_with(&format!("det-environments-{wm}-ci-")) && !image.contains("1717"),
            "{wm} pins a new image: {line}\n{}",
            run.stderr
        );
        let labels = labels_of(&host, image);
        for wanted in [
            "launcher=3_3_1-2",
            "packer=1_8_6",
            "packer-plugin-googlecompute=1_1_4",
        ] {
            assert!(
                labels.iter().any(|l| l == wanted),
                "{image}: {wanted}: {labels:?}"
            );
        }
    }
    let builds = packer_builds(&host);
    for wm in ["slurm", "pbs"] {
        let run = host
            .run(&["build", "--offline", "--no-verify", "--wm", wm])
            .ok();
        assert!(run.stdout.contains("reusing "), "{}", run.stdout);
    }
    assert_eq!(packer_builds(&host), builds, "a reuse runs no packer build");
}

#[test]
fn images_lists_both_pins_and_prune_only_plans_without_yes() {
    let Some(host) = adopted() else { return };
    host.run(&["build", "--offline", "--no-verify"]).ok();
    host.run(&["build", "--offline", "--no-verify", "--wm", "pbs"])
        .ok();
    let pins: Vec<String> = host
        .read(IMAGES_CONF)
        .lines()
        .map(|l| l.split_once(": ").unwrap().1.to_string())
        .collect();
    let images = host.run(&["images"]).ok();
    for image in &pins {
        assert!(
            images.stdout.contains(image.as_str()),
            "{image}\n{}",
            images.stdout
        );
    }
    let before = host.api().image_names();
    let prune = host.run(&["prune"]);
    assert!(
        prune.stdout.contains("nothing to prune") || prune.stdout.contains("--yes"),
        "{}\n{}",
        prune.stdout,
        prune.stderr
    );
    assert_eq!(
        host.api().image_names(),
        before,
        "a prune without --yes deletes nothing"
    );
}

#[test]
fn a_release_builds_both_side_by_side_verifies_them_with_the_adopted_checks_pins_and_commits() {
    let Some(host) = adopted() else { return };
    if !crate::verify::sandbox_available() {
        return;
    }
    host.api().boot_instances_in(&host.path("vms"));
    // Each stand-in waits for the other to start: builds one after the other would fail.
    let release = run_in_repo(
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
    let pinned = host.read(IMAGES_CONF);
    let images: Vec<&str> = pinned
        .lines()
        .map(|l| l.split_once(": ").unwrap().1)
        .collect();
    assert!(
        images[0].starts_with("det-environments-slurm-ci-")
            && images[1].starts_with("det-environments-pbs-ci-")
            && !pinned.contains("1717"),
        "each workload manager pins its own new image\n{pinned}\n{}",
        release.stderr
    );
    for image in &images {
        assert!(
            release
                .stderr
                .contains(&format!("verified {image}: every check passed")),
            "{image}\n{}",
            release.stderr
        );
        assert!(
            labels_of(&host, image)
                .iter()
                .any(|l| l == "verification=verified"),
            "{image}: {:?}",
            labels_of(&host, image)
        );
    }
    assert_eq!(git(&host, &["status", "--porcelain"]), "");
    assert_eq!(
        git(&host, &["branch", "--show-current"]),
        "slurm-images-test"
    );
    let subject = git(&host, &["log", "-1", "--format=%s"]);
    assert!(subject.starts_with("Update the slurm and pbs"), "{subject}");
}

/// A file in the real template's `static/`, which its file provisioner uploads whole.
const UNTRACKED: &str = "tools/slurm/packer/static/notes.txt";

#[test]
fn an_untracked_file_in_static_stops_the_release_by_name_before_its_branch() {
    let Some(host) = adopted() else { return };
    host.write(UNTRACKED, "tried by hand\n");
    let branches = || git(&host, &["branch", "--format=%(refname:short)"]);
    let before = branches();
    let mut release = host.xtask(&["release", "--yes", "--offline", "--no-verify"]);
    release.envs(GIT_IDENTITY);
    Run::in_process(release).fails_with(&[
        "uncommitted changes: tools/slurm/packer/static/notes.txt (untracked: packer reads it)",
        "commit or remove the untracked files",
    ]);
    assert_eq!(branches(), before, "no branch was made");
    assert_eq!(packer_builds(&host), 0, "{:?}", host.packer_calls());
    assert_eq!(host.read(UNTRACKED), "tried by hand\n");
}

#[test]
fn an_untracked_file_in_static_is_named_by_a_build_which_goes_on() {
    let Some(host) = adopted() else { return };
    host.write(UNTRACKED, "tried by hand\n");
    let run = host.run(&["build", "--offline", "--no-verify"]).ok();
    assert!(
        run.stderr.contains(
            "warning: uncommitted inputs: tools/slurm/packer/static/notes.txt (untracked: packer reads it)"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(packer_builds(&host), 1);
    assert_eq!(
        host.read("target/slurm-image/slurm/static/notes.txt"),
        "tried by hand\n"
    );
}

#[test]
fn a_launcher_named_as_the_old_readme_names_it_stops_the_build_before_any_vm() {
    let Some(host) = adopted() else { return };
    std::fs::remove_file(host.build_dir().join(LAUNCHER)).unwrap();
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb",
        b"launcher package bytes",
    );
    host.run(&["build", "--offline", "--no-verify"])
        .fails_with(&[
        "tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a launcher package",
        "rename it to hpe-hpc-launcher_3.3.1-REV_amd64.deb",
    ]);
    assert_eq!(packer_builds(&host), 0, "{:?}", host.packer_calls());
}
