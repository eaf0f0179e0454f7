//! What a newcomer and an adversary met on a first day (issue 16, items 10-18): misspelt words,
//! a release without a git identity or with nothing to change, `--redo` off a release branch,
//! doctor logged out, a wide `images`, and which workload manager each line is about.

use crate::support::commit_host_tree;
use crate::support::{git, HostCopy, Run, GIT_IDENTITY as IDENTITY, STAND_IN_PACKER};

/// A usage error: clap's exit code 2 and the message's parts.
fn usage_error(host: &HostCopy, args: &[&str], wanted: &[&str]) -> Run {
    let run = host.run(args).fails_with(wanted);
    assert_eq!(run.code, Some(2), "{args:?}\n{}", run.stderr);
    run
}

#[test]
fn misspelt_subcommands_and_values_get_the_word_meant() {
    let host = HostCopy::new();
    usage_error(
        &host,
        &["buld"],
        &[
            "unrecognized subcommand 'buld'",
            "similar subcommand exists: 'build'",
        ],
    );
    usage_error(
        &host,
        &["build", "--wm", "pbd"],
        &["invalid value 'pbd'", "similar value exists: 'pbs'"],
    );
}

#[test]
fn a_negative_duration_is_told_it_is_negative() {
    let host = HostCopy::new();
    let run = usage_error(
        &host,
        &["orphans", "--older-than", "-1h"],
        &[
            "invalid value '-1h' for '--older-than <DURATION>'",
            "a duration is never negative",
            "`90m`, `4h` or `2d`",
        ],
    );
    assert!(
        !run.stderr.contains("unexpected argument"),
        "{}",
        run.stderr
    );
}

#[test]
fn check_says_for_which_workload_manager_the_configuration_is_valid() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    let run = host.run(&["check"]).ok();
    let valid: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.contains("The configuration is valid."))
        .collect();
    assert_eq!(
        valid,
        [
            "[slurm] The configuration is valid.",
            "[pbs] The configuration is valid."
        ],
        "{}",
        run.stdout
    );
}

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const NEWER: &str = "hpe-hpc-launcher_3.5.0-0_amd64.deb";
const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";

/// A host tree as a git repository with one commit on `main`: the stand-in packer, images.conf
/// pinning older images, and a launcher package in build/ (ignored by git, as target/ is).
fn repo() -> HostCopy {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(IMAGES_CONF, SEED);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher 3.3.1-2",
    );
    commit_host_tree(&host);
    host
}

/// `release` with `args`, as the tests' user.
fn release(host: &HostCopy, args: &[&str]) -> Run {
    let mut all = vec!["release"];
    all.extend_from_slice(args);
    let mut cmd = host.xtask(&all);
    cmd.envs(IDENTITY);
    Run::in_process(cmd)
}

fn branches(host: &HostCopy) -> Vec<String> {
    git(host, &["branch", "--format=%(refname:short)"])
        .lines()
        .map(String::from)
        .collect()
}

fn builds(host: &HostCopy) -> usize {
    host.packer_calls()
        .iter()
        .filter(|call| call.contains("| build"))
        .count()
}

#[test]
fn redo_on_main_is_refused_before_any_work() {
    let host = repo();
    let head = git(&host, &["rev-parse", "HEAD"]);
    let run = release(&host, &["--redo", "pbs", "--offline", "--yes"]).fails_with(&[
        "--redo finishes a release on the branch the release made, and main is not one",
        "cargo xtask slurm-image release",
    ]);
    assert_eq!(builds(&host), 0, "{}", run.stderr);
    assert_eq!(git(&host, &["rev-parse", "HEAD"]), head);
    assert_eq!(host.read(IMAGES_CONF), SEED);
}

#[test]
fn a_redo_names_the_kept_image_with_the_launcher_it_was_built_with() {
    let host = repo();
    let branch = "slurm-images-redo";
    let mut first = host.xtask(&["release", "--offline", "--yes", "--branch", branch]);
    first.envs(IDENTITY).env("FAKE_PACKER_PBS", "fail");
    Run::in_process(first).fails_with(&["the pbs build failed"]);

    // The pbs build is redone with a newer package; the slurm image keeps its 3.3.1-2.
    std::fs::remove_file(host.build_dir().join(LAUNCHER)).unwrap();
    host.write(
        &format!("tools/slurm/packer/build/{NEWER}"),
        b"launcher 3.5.0-0",
    );
    let asked = release(&host, &["--redo", "pbs", "--offline"]).fails_with(&[
        "build the pbs image alone with launcher",
        "pin it in",
        "a release runs one packer VM",
    ]);
    assert!(!asked.stderr.contains("two packer VMs"), "{}", asked.stderr);

    release(&host, &["--redo", "pbs", "--offline", "--yes"]).ok();
    let message = git(&host, &["log", "-1", "--format=%B"]);
    let lines: Vec<&str> = message.lines().take(4).collect();
    assert_eq!(
        lines,
        [
            "Update the slurm and pbs test cluster images (launchers slurm 3.3.1-2, pbs 3.5.0-0)",
            "",
            "slurm: det-environments-slurm-ci-1800000000 (launcher 3.3.1-2)",
            "pbs: det-environments-pbs-ci-1800000000 (launcher 3.5.0-0)",
        ],
        "{message}"
    );
}

#[test]
fn a_release_without_a_git_identity_stops_before_any_work_and_doctor_says_so() {
    let host = repo();
    // No identity anywhere: an empty global config, and git told not to guess one from the
    // host name (a machine with a full domain name would otherwise let git make one up).
    host.write("empty.gitconfig", "");
    git(&host, &["config", "user.useConfigOnly", "true"]);
    let without_identity = |args: &[&str]| {
        let mut cmd = host.xtask(args);
        for var in [
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_COMMITTER_NAME",
            "GIT_COMMITTER_EMAIL",
            "EMAIL",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("GIT_CONFIG_GLOBAL", host.path("empty.gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1");
        Run::in_process(cmd)
    };
    let fix = "git config --global user.name \"Your Name\" && git config --global user.email you@example.com";
    let run = without_identity(&["release", "--offline", "--yes"])
        .fails_with(&["git has no identity to commit with", fix]);
    assert_eq!(builds(&host), 0, "{}", run.stderr);
    assert_eq!(branches(&host), ["main"]);

    let dry = without_identity(&["release", "--offline", "--dry-run"]).stops();
    assert!(
        dry.stdout.contains("a real release would stop here")
            && dry.stdout.contains("git has no identity to commit with"),
        "{}",
        dry.stdout
    );

    let doctor = without_identity(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|line| line.contains(" git: "))
        .unwrap_or_else(|| panic!("no git line\n{}", doctor.stdout));
    assert!(
        line.starts_with("warn  git: git version")
            && line.contains("no identity")
            && line.contains(fix),
        "{line}"
    );
}

#[test]
fn a_commit_that_fails_leaves_its_message_and_the_command_that_uses_it() {
    let host = repo();
    let hook = host.path(".git/hooks/pre-commit");
    host.write(
        ".git/hooks/pre-commit",
        "#!/bin/sh\necho 'hook: no commits today' >&2\nexit 1\n",
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let command =
        format!("git commit -F target/slurm-image/release-commit-message.txt -- {IMAGES_CONF}");
    release(
        &host,
        &["--offline", "--yes", "--branch", "slurm-images-hook"],
    )
    .fails_with(&["the commit message is saved", &command]);
    let saved = host.read("target/slurm-image/release-commit-message.txt");
    assert!(
        saved.contains("slurm: det-environments-slurm-ci-1800000000 (launcher 3.3.1-2)"),
        "{saved}"
    );

    // Once git can commit, the printed command does it.
    std::fs::remove_file(&hook).unwrap();
    let words: Vec<&str> = command.split(' ').collect();
    git(&host, &words[1..]);
    assert_eq!(
        git(&host, &["log", "-1", "--format=%B"]).trim_end(),
        saved.trim_end()
    );
}

// A release with nothing to change leaves no branch behind: tested in
// `release::each_workload_manager_reuses_on_its_own_and_nothing_to_change_leaves_no_branch_behind`,
// after the same first release.

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
fn images_fits_100_columns_with_a_header_and_a_legend_and_widens_on_request() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher 3.3.1-2",
    );
    // One image with every label a build records, one from before labels, one kept by a label
    // with a long release branch's name, and one in the workload manager without a launcher.
    host.run(&["build", "--offline"]).ok();
    let api = host.api();
    let deb = "HPC slurm testing VM hpe-hpc-launcher_3.3.0-0_amd64.deb";
    api.add_image(
        "det-environments-slurm-ci-1717047568",
        1_717_047_568,
        "READY",
        &[],
        deb,
    );
    api.add_image(
        "det-environments-slurm-ci-1717100000",
        1_717_100_000,
        "READY",
        &[(
            "branch",
            "release-0-1-with-a-very-long-name-for-a-branch-that-keeps-it",
        )],
        deb,
    );
    api.add_image(
        "det-environments-pbs-ci-1717016272",
        1_717_016_272,
        "PENDING",
        &[],
        "no package named",
    );

    let narrow = host.run(&["images"]).ok().stdout;
    for line in narrow.lines().filter(|l| !l.starts_with("note: ")) {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}\n{narrow}",
            line.chars().count()
        );
    }
    let headers: Vec<&str> = narrow
        .lines()
        .filter(|l| l.trim_start().starts_with("IMAGE "))
        .collect();
    assert_eq!(headers.len(), 2, "{narrow}");
    assert!(
        headers[0].contains("AGE") && headers[0].contains("LAUNCHER"),
        "{narrow}"
    );
    let row = |out: &str, name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed\n{out}"))
            .to_string()
    };
    let built = row(&narrow, "det-environments-slurm-ci-1800000000");
    assert!(
        built.starts_with("* ") && built.contains(" 3.3.1-2 "),
        "{built}"
    );
    assert!(row(&narrow, "1717047568").starts_with("  "), "{narrow}");
    assert!(
        row(&narrow, "det-environments-pbs-ci-1717016272").contains(" ? "),
        "{narrow}"
    );
    assert!(row(&narrow, "1717100000").ends_with('…'), "{narrow}");
    let legend = narrow
        .find("legend: ")
        .unwrap_or_else(|| panic!("no legend\n{narrow}"));
    for explained in [
        "? when neither names one",
        "pinned: in images.conf",
        "delete?",
        "`*`: the image a build now reuses",
        "--wide",
    ] {
        assert!(
            narrow[legend..].contains(explained),
            "{explained}\n{narrow}"
        );
    }

    let wide = host.run(&["images", "--wide"]).ok().stdout;
    assert!(wide.lines().any(|l| l.chars().count() > 100), "{wide}");
    assert!(
        row(&wide, "det-environments-slurm-ci-1717047568")
            .contains("source ?  det-environments-slurm-ci  no labels"),
        "{wide}"
    );
    assert!(
        row(&wide, "det-environments-slurm-ci-1800000000")
            .contains(&format!("source {}", crate::support::SLURM_SOURCE)),
        "{wide}"
    );
    let legend = wide
        .find("legend: ")
        .unwrap_or_else(|| panic!("no legend\n{wide}"));
    for explained in [
        "`source ?`",
        "`-`",
        "`no labels`",
        "<- a build now reuses it",
    ] {
        assert!(wide[legend..].contains(explained), "{explained}\n{wide}");
    }
}

#[test]
fn a_slow_artifactory_is_called_slow_not_off_the_vpn() {
    let server = crate::support::artifactory::Server::start();
    server.set_faults(crate::support::artifactory::Faults {
        silent: true,
        ..crate::support::artifactory::Faults::default()
    });
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    let slow = |args: &[&str]| {
        let mut cmd = host.xtask(args);
        cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", server.folder_url())
            .env("SLURM_IMAGE_STALL_TIMEOUT_S", "1")
            .env("NO_PROXY", "127.0.0.1");
        Run::in_process(cmd)
    };
    let listed = slow(&["launcher"]).fails_with(&[
        "answered, but too slowly (no answer within 1 s)",
        "Artifactory is reachable but answered too slowly (so the VPN is not the cause); retry later",
    ]);
    assert!(
        !listed.stderr.contains("reachable only on the company VPN"),
        "{}",
        listed.stderr
    );

    let doctor = slow(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|line| line.contains(" artifactory: "))
        .unwrap_or_else(|| panic!("no artifactory line\n{}", doctor.stdout));
    assert!(
        line.contains("answered, but too slowly")
            && line.contains("fix: retry later")
            && !line.contains("connect to the company VPN"),
        "{line}"
    );
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

#[test]
fn the_readme_names_the_packer_it_needs_before_the_commands_and_how_long_they_take() {
    let readme = std::fs::read_to_string(crate::support::repo_root().join("README.md")).unwrap();
    let setup = readme
        .find("## Set-up")
        .expect("the README has a set-up section");
    let setup = &readme[setup..];
    let commands = setup
        .find("cargo xtask slurm-image build ")
        .expect("the set-up gives the build command");
    let before = &setup[..commands];
    for prerequisite in ["Packer >= 1.7 from HashiCorp", "1.6.6", "refuses it"] {
        assert!(
            before.contains(prerequisite),
            "{prerequisite:?} is not before the commands"
        );
    }
    let after = &setup[commands..setup[1..].find("\n## ").unwrap_or(setup.len())];
    assert!(
        after.contains("the first `cargo xtask` compiles") && after.contains(" s on\ntwo cores"),
        "the first run's time is not given"
    );
    assert!(
        after.contains("The test suite takes about"),
        "the tests' time is not given"
    );
}

#[test]
fn images_explains_the_reuse_mark_only_where_a_row_carries_it() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher 3.3.1-2",
    );
    // Images made before labels: none is from today's inputs, so no row is marked.
    host.api().add_image(
        "det-environments-slurm-ci-1717047568",
        1_717_047_568,
        "READY",
        &[],
        "HPC slurm testing VM hpe-hpc-launcher_3.3.0-0_amd64.deb",
    );
    for args in [&["images"][..], &["images", "--wide"]] {
        let out = host.run(args).ok().stdout;
        assert!(out.contains("legend: "), "{args:?}\n{out}");
        assert!(
            !out.lines().any(|l| l.starts_with('*')) && !out.contains("a build now reuses"),
            "{args:?}\n{out}"
        );
    }
}
