//! `build` and the Makefile targets through the built xtask, with a stand-in packer on PATH.

use crate::support::images::{reads_side_by_side, Cloud};
use std::process::Command;

use crate::support::{packer_then, HostCopy, InProcess, Run, Running};
use crate::support::{LAUNCHER, SEED};

/// The input fingerprint among the image labels of a variables file.
fn fingerprint_in(vars: &str) -> String {
    vars.lines()
        .find_map(|l| l.trim().strip_prefix("\"input-fingerprint\" = \""))
        .unwrap_or_else(|| panic!("no input-fingerprint label in\n{vars}"))
        .trim_end_matches('"')
        .to_string()
}

fn build_calls(host: &HostCopy) -> Vec<String> {
    host.packer_calls()
        .into_iter()
        .filter(|c| c.contains("| build"))
        .collect()
}

#[test]
fn a_slurm_build_pins_the_new_image_and_keeps_the_pbs_line() {
    let host = HostCopy::with_launcher();
    let run = host.run(&["build", "--offline"]).ok();
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1717016272\n"
    );
    // Packer runs in the build's own copy of the template folder.
    let state_dir = host.state_dir().canonicalize().unwrap();
    assert_eq!(
        build_calls(&host),
        [format!(
            "{}/slurm | build -var-file={}/slurm.pkrvars.hcl .",
            state_dir.display(),
            state_dir.display()
        )]
    );
    let vars = host.read("last.pkrvars.hcl");
    for line in [
        "ssh_username = \"packer2\"",
        "workload_manager = \"slurm\"",
        "image_project_id = \"schedmd-slurm-public\"",
        "image_family = \"slurm-gcp-6-3-ubuntu-2004-lts\"",
        &format!("launcher_deb_name = \"{LAUNCHER}\""),
        "cpu_image_name = \"determinedai/pytorch-tensorflow-cpu-dev:e960eae\"",
        "cuda_image_name = \"determinedai/pytorch-ngc-dev:e960eae\"",
    ] {
        assert!(
            vars.lines().any(|l| l == line),
            "variables file lacks {line}:\n{vars}"
        );
    }
    assert!(
        run.stdout.contains(
            "slurm: det-environments-slurm-ci-1717047568 -> det-environments-slurm-ci-1800000000"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("git add tools/slurm/terraform/images.conf"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_pbs_build_pins_only_the_pbs_line_with_its_own_files() {
    let host = HostCopy::with_launcher();
    host.run(&["build", "--wm", "pbs", "--offline"]).ok();
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1800000000\n"
    );
    let vars = host.read("target/slurm-image/pbs.pkrvars.hcl");
    assert!(
        vars.contains("image_project_id = \"ubuntu-os-cloud\""),
        "{vars}"
    );
    assert!(
        vars.contains("image_family = \"ubuntu-2004-lts\""),
        "{vars}"
    );
    let fingerprint = fingerprint_in(&vars);
    assert!(
        fingerprint.len() == 32 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fingerprint}"
    );
    assert!(host.state_dir().join("pbs/build/manifest.json").exists());
    assert!(!host.state_dir().join("slurm.pkrvars.hcl").exists());
    assert!(!host.state_dir().join("slurm").exists());
}

#[test]
fn the_fingerprint_follows_the_inputs() {
    let host = HostCopy::with_launcher();
    // The dry run's: a second real build of the same inputs would reuse the first image.
    let fingerprint = |host: &HostCopy| {
        let run = host.run(&["build", "--offline", "--dry-run"]).ok();
        let shown = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("# input fingerprint: "))
            .unwrap_or_else(|| panic!("no fingerprint in\n{}", run.stdout))
            .to_string();
        assert_eq!(fingerprint_in(&run.stdout), shown);
        shown
    };
    let first = fingerprint(&host);
    assert_eq!(fingerprint(&host), first, "same inputs, same fingerprint");
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"another package",
    );
    let second = fingerprint(&host);
    assert_ne!(second, first, "a different launcher changes it");
    let playbook = host.read("tools/slurm/packer/ansible-playbook.yml");
    host.write(
        "tools/slurm/packer/ansible-playbook.yml",
        playbook + "\n# changed\n",
    );
    assert_ne!(fingerprint(&host), second, "a changed playbook changes it");
}

#[test]
fn a_failed_packer_run_leaves_images_conf_byte_identical() {
    let host = HostCopy::with_launcher();
    let conf = "# pinned images\r\npbs: det-environments-pbs-ci-1717016272\r\nslurm: det-environments-slurm-ci-1717047568";
    host.write("tools/slurm/terraform/images.conf", conf);
    let run = host.run_env(&["build", "--offline"], &[("FAKE_PACKER", "fail")]);
    // 4: a failed build, told apart from a refusal (3) and a failed verification (5).
    run.exits_with(
        4,
        &[
            "packer build failed (exit 1)",
            "images.conf is unchanged",
            "target/slurm-image/slurm-packer.log",
        ],
    );
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), conf);
}

#[test]
fn a_failed_build_told_to_abort_names_the_vm_packer_kept_and_how_to_find_it() {
    let host = HostCopy::with_launcher();
    let plan = host
        .run(&["build", "--offline", "--dry-run", "--on-error=abort"])
        .ok();
    assert!(
        plan.stdout
            .contains("packer build -on-error=abort -var-file="),
        "{}",
        plan.stdout
    );
    let run = host.run_env(
        &["build", "--offline", "--on-error=abort"],
        &[("FAKE_PACKER", "fail")],
    );
    run.exits_with(
        4,
        &[
            "packer build failed (exit 1)",
            "packer kept its VM packer-6583c0a5-1c2d-4e5f-8a9b-0c1d2e3f4a5b for debugging (--on-error=abort)",
            "`cargo xtask slurm-image orphans` finds it",
        ],
    );
    let builds = build_calls(&host);
    assert!(
        builds.len() == 1 && builds[0].contains("build -on-error=abort -var-file="),
        "{builds:?}"
    );
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn a_build_without_a_manifest_changes_nothing() {
    let host = HostCopy::with_launcher();
    let run = host.run_env(&["build", "--offline"], &[("FAKE_PACKER", "no-manifest")]);
    run.exits_with(
        4,
        &[
            "wrote no manifest",
            "target/slurm-image/slurm/build/manifest.json",
        ],
    );
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn crlf_comments_and_a_missing_final_newline_survive_a_build() {
    let host = HostCopy::with_launcher();
    host.write(
        "tools/slurm/terraform/images.conf",
        "# pinned images\r\npbs: old-pbs\r\n\r\nslurm: old-slurm",
    );
    host.run(&["build", "--offline"]).ok();
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "# pinned images\r\npbs: old-pbs\r\n\r\nslurm: det-environments-slurm-ci-1800000000"
    );
}

#[test]
fn a_missing_key_is_added_and_said_so() {
    let host = HostCopy::with_launcher();
    host.write(
        "tools/slurm/terraform/images.conf",
        "slurm: det-environments-slurm-ci-1717047568\n",
    );
    let run = host.run(&["build", "--wm", "pbs", "--offline"]).ok();
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1800000000\n"
    );
    assert!(
        run.stdout
            .contains("added the missing line `pbs: det-environments-pbs-ci-1800000000`"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_empty_images_conf_warns_once_that_both_lines_are_missing() {
    let host = HostCopy::with_launcher();
    host.write("tools/slurm/terraform/images.conf", "");
    let run = host.run(&["build", "--offline"]).ok();
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: ") && l.contains("images.conf"))
        .collect();
    assert_eq!(warnings.len(), 2, "{}", run.stderr);
    for wm in ["slurm", "pbs"] {
        assert!(
            warnings.iter().any(|w| w.contains(&format!(
                "tools/slurm/terraform/images.conf has no `{wm}` line"
            )) && w.contains(&format!("build --wm {wm}"))),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1800000000\n"
    );
}

#[test]
fn an_unknown_key_in_images_conf_is_warned_about_and_kept() {
    let host = HostCopy::with_launcher();
    let conf = format!("{SEED}lsf: foo\n");
    host.write("tools/slurm/terraform/images.conf", &conf);
    let run = host.run(&["build", "--offline", "--dry-run"]).ok();
    assert!(
        run.stderr.contains(
            "warning: tools/slurm/terraform/images.conf line 3: `lsf` is not a workload manager (slurm, pbs)"
        ) && run.stderr.contains("remove the line if it is a typo"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("images.conf").count(),
        1,
        "{}",
        run.stderr
    );
    host.run(&["build", "--offline"]).ok();
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1717016272\nlsf: foo\n"
    );
}

#[test]
fn a_bad_wm_fails_before_any_work_naming_the_choices() {
    let host = HostCopy::with_launcher();
    host.run(&["build", "--wm", "lsf"])
        .fails_with(&["invalid value 'lsf'", "slurm", "pbs"]);
    assert!(
        host.packer_calls().is_empty(),
        "packer ran: {:?}",
        host.packer_calls()
    );
}

#[test]
fn the_wm_is_taken_in_any_case() {
    let host = HostCopy::with_launcher();
    let run = host
        .run(&["build", "--wm", "PBS", "--offline", "--dry-run"])
        .ok();
    assert!(
        run.stdout.contains("workload_manager = \"pbs\""),
        "{}",
        run.stdout
    );
}

#[test]
fn no_launcher_says_what_to_do() {
    let host = HostCopy::with_launcher();
    std::fs::remove_file(host.build_dir().join(LAUNCHER)).unwrap();
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher_3.4.0-1.dev_amd64.deb",
        b"a pre-release is not a release",
    );
    // The pre-release is the only .deb there: it may be the one meant, so it is named, with
    // the release name expected and no version made up for it.
    let run = host.run(&["build", "--offline"]).fails_with(&[
        "tools/slurm/packer/build/hpe-hpc-launcher_3.4.0-1.dev_amd64.deb is not named as a launcher package \
         (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) and it is the only package there",
        "--launcher PATH",
    ]);
    assert!(!run.stderr.contains("3.4.0-1_amd64"), "{}", run.stderr);
    assert!(build_calls(&host).is_empty());

    // Without it, build/ holds nothing to build with.
    std::fs::remove_file(
        host.build_dir()
            .join("hpe-hpc-launcher_3.4.0-1.dev_amd64.deb"),
    )
    .unwrap();
    host.run(&["build", "--offline"]).fails_with(&[
        "no launcher package in tools/slurm/packer/build",
        "--launcher PATH",
    ]);
    assert!(build_calls(&host).is_empty());
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn several_launchers_are_named_and_refused() {
    let host = HostCopy::with_launcher();
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher_3.10.0-1_amd64.deb",
        b"newer",
    );
    host.run(&["build", "--offline"]).fails_with(&[
        "2 launcher packages",
        "hpe-hpc-launcher_3.10.0-1_amd64.deb, hpe-hpc-launcher_3.3.1-2_amd64.deb",
        "--launcher PATH",
    ]);
    assert!(build_calls(&host).is_empty());
}

#[test]
fn a_launcher_given_by_path_is_copied_into_build_and_used() {
    let host = HostCopy::with_launcher();
    std::fs::remove_file(host.build_dir().join(LAUNCHER)).unwrap();
    host.write(
        "downloads/hpe-hpc-launcher_3.9.0-7_amd64.deb",
        b"given package",
    );
    let given = host.path("downloads/hpe-hpc-launcher_3.9.0-7_amd64.deb");
    host.run(&["build", "--offline", "--launcher", given.to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read(host.build_dir().join("hpe-hpc-launcher_3.9.0-7_amd64.deb")).unwrap(),
        b"given package"
    );
    assert!(host
        .read("last.pkrvars.hcl")
        .contains("launcher_deb_name = \"hpe-hpc-launcher_3.9.0-7_amd64.deb\""));
}

#[test]
fn a_launcher_with_another_name_is_refused() {
    let host = HostCopy::with_launcher();
    host.write("downloads/launcher.deb", b"renamed package");
    let given = host.path("downloads/launcher.deb");
    host.run(&["build", "--offline", "--launcher", given.to_str().unwrap()])
        .fails_with(&[
            "the tool reads a launcher package's version from its name",
            "rename it to hpe-hpc-launcher_X.Y.Z-REV_amd64.deb",
        ]);
    assert!(build_calls(&host).is_empty());
}

#[test]
fn a_missing_launcher_path_is_said_to_be_missing_whatever_its_name() {
    let host = HostCopy::with_launcher();
    for name in ["launcher.deb", "hpe-hpc-launcher_3.9.0-7_amd64.deb"] {
        let given = host.path(&format!("downloads/{name}"));
        let run = host
            .run(&["build", "--offline", "--launcher", given.to_str().unwrap()])
            .fails_with(&[&format!("--launcher {}: no such file", given.display())]);
        assert!(!run.stderr.contains("rename it"), "{}", run.stderr);
    }
    assert!(build_calls(&host).is_empty());
}

#[test]
fn a_broken_images_conf_stops_the_build_before_packer_and_is_left_alone() {
    for (broken, wanted) in [
        (
            "slurm: a\npbs: b\nslurm: c\n",
            "key `slurm` is on line 1 and again on line 3",
        ),
        (
            "slurm: a\ndet-environments-pbs-ci-1717016272\n",
            "line 2 is not `key: value`",
        ),
    ] {
        let host = HostCopy::with_launcher();
        host.write("tools/slurm/terraform/images.conf", broken);
        host.run(&["build", "--offline"])
            .fails_with(&["tools/slurm/terraform/images.conf is broken", wanted]);
        assert!(build_calls(&host).is_empty());
        assert_eq!(host.read("tools/slurm/terraform/images.conf"), broken);
    }
}

#[test]
fn a_dry_run_writes_and_runs_nothing() {
    let host = HostCopy::with_launcher();
    let run = host
        .run(&["build", "--wm", "pbs", "--offline", "--dry-run"])
        .ok();
    assert!(
        run.stdout.contains("workload_manager = \"pbs\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("PACKER_LOG=1 PACKER_LOG_PATH=target/slurm-image/pbs-packer.log packer build -var-file=target/slurm-image/pbs.pkrvars.hcl ."),
        "{}",
        run.stdout
    );
    assert!(build_calls(&host).is_empty());
    assert!(!host.state_dir().exists());
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn it_runs_from_anywhere_inside_the_repository() {
    let host = HostCopy::with_launcher();
    let run = Run::in_process({
        let mut cmd = host.xtask(&["build", "--offline"]);
        cmd.current_dir(host.path("tools/slurm/terraform"));
        cmd
    });
    run.ok();
    assert!(host
        .read("tools/slurm/terraform/images.conf")
        .starts_with("slurm: det-environments-slurm-ci-1800000000\n"));
}

#[test]
fn outside_the_repository_it_says_where_to_run() {
    let host = HostCopy::new();
    // The system's temporary folder, unlike cargo's, is not inside this repository.
    let outside = std::env::temp_dir().join(format!("xtask-outside-{}", std::process::id()));
    std::fs::create_dir_all(&outside).unwrap();
    let run = Run::in_process({
        let mut cmd = host.xtask(&["clean"]);
        cmd.current_dir(&outside);
        cmd
    });
    let _ = std::fs::remove_dir(&outside);
    run.fails_with(&[
        "no tools/slurm/packer folder",
        "run cargo xtask from inside the repository",
    ]);
}

fn wait_for_packer(host: &HostCopy, xtask: &mut Running) {
    xtask.wait_for("the stand-in packer to start", |_| {
        host.path("packer-started").exists()
    });
}

fn kill(signal: &str, target: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_waits_for_packer_to_clean_up_answers_each_ctrl_c_and_exits_130() {
    let host = HostCopy::with_launcher();
    let mut cmd = host.xtask(&["build", "--offline"]);
    // A cleanup long enough for the second and third Ctrl-C to come during it.
    let cleaned_up = host.path("packer-may-finish-cleaning-up");
    cmd.env("FAKE_PACKER", "slow")
        .env("FAKE_PACKER_CLEANUP_UNTIL", &cleaned_up);
    // Its own process group stands for the terminal's foreground group, which Ctrl-C signals.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut xtask = Running::spawn(cmd);
    wait_for_packer(&host, &mut xtask);
    kill("INT", &format!("-{}", xtask.id()));
    xtask.wait_for_stderr(
        "Ctrl-C (SIGINT) received: waiting for packer to cancel the build and delete its VM",
    );
    // Impatient presses reach the xtask; packer, busy deleting its VM, is left to it. Each is
    // answered before the next is sent, so that no two merge into one signal.
    let still = "still waiting for packer to delete its VM; `kill -9` would leave it behind";
    for presses in 1..=2 {
        kill("INT", &xtask.id().to_string());
        xtask.wait_for_stderr_times(still, presses);
    }
    host.write("packer-may-finish-cleaning-up", "");
    let run = xtask.finish();
    let (status, stderr) = (run.code, run.stderr);
    assert_eq!(stderr.matches(still).count(), 2, "{stderr}");
    assert!(stderr.contains("slurm-image orphans"), "{stderr}");
    // 128 + SIGINT, as a shell reports a command Ctrl-C ended; not killed by the signal.
    assert_eq!(status, Some(130), "{stderr}");
    assert!(
        host.path("packer-cleaned").exists(),
        "the xtask exited before packer cleaned up: {stderr}"
    );
    assert!(stderr.contains("build interrupted by Ctrl-C"), "{stderr}");
    assert!(stderr.contains("images.conf is unchanged"), "{stderr}");
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

/// A build in-process, once the stand-in packer has started: the test delivers it signals as
/// `kill` of the tool alone would. The built binary's own handling of each signal is the
/// journeys' (SIGHUP below, Ctrl-C at the terminal above, SIGINT and SIGTERM in `signals.rs`).
fn build_in_process_with_packer_started(host: &HostCopy, cmd: Command) -> InProcess {
    let run = InProcess::start(cmd);
    run.wait_for("the stand-in packer to start", || {
        host.path("packer-started").exists()
    });
    run
}

#[test]
fn sigterm_to_the_xtask_alone_is_passed_on_to_packer() {
    let host = HostCopy::with_launcher();
    let mut cmd = host.xtask(&["build", "--offline"]);
    cmd.env("FAKE_PACKER", "slow");
    let build = build_in_process_with_packer_started(&host, cmd);
    build.deliver(libc::SIGTERM);
    let run = build.finish();
    let stderr = &run.stderr;
    assert!(
        host.path("packer-cleaned").exists(),
        "packer was not asked to clean up: {stderr}"
    );
    assert!(stderr.contains("build interrupted by SIGTERM"), "{stderr}");
    assert_eq!(run.code, Some(143), "{stderr}");
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn sighup_to_the_xtask_alone_is_passed_on_to_packer() {
    signal_to_the_xtask_alone_is_passed_on_to_packer("HUP", "SIGHUP (the terminal closed)", 129);
}

/// `signal` to the xtask alone (not its process group) during packer: packer is asked to clean
/// up, and the build ends as the signal would have ended it, pinning nothing.
fn signal_to_the_xtask_alone_is_passed_on_to_packer(signal: &str, name: &str, code: i32) {
    let host = HostCopy::with_launcher();
    let mut cmd = host.xtask(&["build", "--offline"]);
    cmd.env("FAKE_PACKER", "slow");
    let mut xtask = Running::spawn(cmd);
    wait_for_packer(&host, &mut xtask);
    kill(signal, &xtask.id().to_string());
    let run = xtask.finish();
    let stderr = &run.stderr;
    assert!(
        host.path("packer-cleaned").exists(),
        "packer was not asked to clean up: {stderr}"
    );
    assert!(
        stderr.contains(&format!("build interrupted by {name}")),
        "{stderr}"
    );
    assert_eq!(run.code, Some(code), "{stderr}");
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn clean_removes_build_and_nothing_else() {
    let host = HostCopy::with_launcher();
    host.run(&["clean"]).ok();
    assert!(!host.build_dir().exists());
    assert!(host.path("tools/slurm/packer/main.pkr.hcl").exists());
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
    let run = host.run(&["clean"]).ok();
    assert!(run.stdout.contains("nothing to clean"), "{}", run.stdout);
}

#[test]
fn fmt_and_init_run_packer_in_the_template_folder() {
    let host = HostCopy::with_launcher();
    host.run(&["fmt"]).ok();
    host.run(&["init"]).ok();
    let packer_dir = host.path("tools/slurm/packer").canonicalize().unwrap();
    let calls = host.packer_calls();
    assert!(
        calls.contains(&format!("{} | fmt .", packer_dir.display())),
        "{calls:?}"
    );
    assert!(
        calls.contains(&format!("{} | init .", packer_dir.display())),
        "{calls:?}"
    );
}

#[test]
fn fmt_check_failing_says_to_run_fmt() {
    let host = HostCopy::with_launcher();
    let run = host.run_env(&["fmt", "--check"], &[("FAKE_PACKER_EXIT", "3")]);
    run.fails_with(&["needs formatting", "run `cargo xtask slurm-image fmt`"]);
}

#[test]
fn an_old_packer_is_named_with_the_version_needed() {
    let host = HostCopy::with_launcher();
    for args in [&["init"][..], &["build", "--offline"]] {
        let run = host.run_env(args, &[("FAKE_PACKER", "1.6.6")]);
        run.fails_with(&["packer 1.6.6 is installed", "needs packer >= 1.7.0"]);
    }
    assert!(!host
        .packer_calls()
        .iter()
        .any(|c| c.contains("| init") || c.contains("| build")));
}

#[test]
fn a_broken_config_names_file_line_and_key() {
    let host = HostCopy::with_launcher();
    let config = host
        .read("tools/slurm/packer/slurm-image.toml")
        .replace("keep = 6", "keep = \"six\"");
    host.write("tools/slurm/packer/slurm-image.toml", config);
    let run = host.run(&["build", "--offline"]).fails_with(&[
        "tools/slurm/packer/slurm-image.toml line",
        "key `prune.keep`",
        "expected a whole number of images, e.g. `keep = 6`",
    ]);
    assert!(!run.stderr.contains("usize"), "{}", run.stderr);
    assert!(host.packer_calls().is_empty());
}

#[test]
fn a_launcher_given_beside_another_says_build_now_holds_both() {
    let host = HostCopy::with_launcher();
    host.write(
        "downloads/hpe-hpc-launcher_3.9.0-7_amd64.deb",
        b"given package",
    );
    let given = host.path("downloads/hpe-hpc-launcher_3.9.0-7_amd64.deb");
    let run = host
        .run(&["build", "--offline", "--launcher", given.to_str().unwrap()])
        .ok();
    let rm = format!("rm tools/slurm/packer/build/{LAUNCHER}");
    assert!(
        run.stderr.contains(&format!("also holds {LAUNCHER}"))
            && run
                .stderr
                .contains("a later build without --launcher stops until only one package is left")
            && run.stderr.contains(&rm),
        "{}",
        run.stderr
    );
    assert!(host
        .read("last.pkrvars.hcl")
        .contains("launcher_deb_name = \"hpe-hpc-launcher_3.9.0-7_amd64.deb\""));

    // The note's words hold: without --launcher the build stops, and after the `rm` it names,
    // it builds with the package given before (--force: the same inputs would reuse the image).
    host.run(&["build", "--offline"])
        .fails_with(&["2 launcher packages", LAUNCHER]);
    std::fs::remove_file(host.build_dir().join(LAUNCHER)).unwrap();
    host.run(&["build", "--offline", "--force"]).ok();
    assert_eq!(build_calls(&host).len(), 2);
    assert!(host.packer_launchers()[1].starts_with("hpe-hpc-launcher_3.9.0-7_amd64.deb "));
}

#[test]
fn a_build_waits_for_the_images_conf_lock_then_lands_beside_the_other_pin() {
    let host = HostCopy::with_launcher();
    std::fs::create_dir_all(host.state_dir()).unwrap();
    // The test holds the lock, as a build writing images.conf at that moment would.
    let lock = std::fs::File::create(host.state_dir().join("images.conf.lock")).unwrap();
    lock.lock().unwrap();
    // In-process: the lock is a lock of the file, which this process's other handle holds.
    let xtask = InProcess::start(host.xtask(&["build", "--offline", "--wm", "pbs"]));
    xtask.wait_for_stderr(
        "waiting for another build to finish writing tools/slurm/terraform/images.conf",
    );
    // Packer is done, and the pin waits: the other writer's change lands in the meantime.
    assert_eq!(build_calls(&host).len(), 1);
    host.write(
        "tools/slurm/terraform/images.conf",
        "slurm: det-environments-slurm-ci-1800000001\npbs: det-environments-pbs-ci-1717016272\n",
    );
    drop(lock);
    xtask.finish().ok();
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1800000001\npbs: det-environments-pbs-ci-1800000000\n",
        "the pin is made on images.conf as it is once the lock is free, not as it was read before"
    );
    for file in ["pbs.pkrvars.hcl", "pbs/build/manifest.json"] {
        assert!(host.state_dir().join(file).exists(), "{file}");
    }
}

#[test]
fn ctrl_c_as_packer_finishes_still_pins_the_image_it_built() {
    let host = HostCopy::with_launcher();
    let mut cmd = host.xtask(&["build", "--offline"]);
    // The stand-in answers SIGINT by writing its manifest and exiting 0: packer finishing
    // just as the signal arrives.
    cmd.env("FAKE_PACKER", "finish-on-interrupt");
    let build = build_in_process_with_packer_started(&host, cmd);
    build.deliver(libc::SIGINT);
    let run = build.finish();
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(130), "{stderr}");
    for wanted in [
        "arrived as packer finished: pinning the image it built before stopping",
        "det-environments-slurm-ci-1800000000 is built and pinned",
    ] {
        assert!(stderr.contains(wanted), "{wanted}\n{stderr}");
    }
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1717016272\n"
    );
}

#[test]
fn writing_the_staged_launcher_leaves_the_users_verified_package_alone() {
    let host = HostCopy::with_launcher();
    host.run(&["build", "--offline", "--no-verify"]).ok();
    // What a provisioner or a template could do to the package it was handed.
    let staged = host.state_dir().join(format!("slurm/build/{LAUNCHER}"));
    std::fs::write(&staged, b"changed by the build").unwrap();
    assert_eq!(
        std::fs::read(host.build_dir().join(LAUNCHER)).unwrap(),
        b"launcher package bytes"
    );
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_or_a_device_among_the_template_files_is_named_not_read_forever() {
    let host = HostCopy::with_launcher();
    mkfifo(&host.path("tools/slurm/packer/static/pipe"));
    for args in [
        &["build", "--offline"][..],
        &["build", "--offline", "--dry-run"],
    ] {
        let run = host.run(args);
        assert!(
            run.stderr
                .contains("static/pipe is a FIFO (named pipe), not a file"),
            "{args:?}\n{}",
            run.stderr
        );
    }
    std::fs::remove_file(host.path("tools/slurm/packer/static/pipe")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", host.path("tools/slurm/packer/static/zero")).unwrap();
    host.run(&["build", "--offline"])
        .fails_with(&["static/zero is a device, not a file"]);
    assert!(build_calls(&host).is_empty());
}

#[test]
fn an_images_conf_that_is_a_fifo_is_named_not_waited_on() {
    let host = HostCopy::with_launcher();
    std::fs::remove_file(host.images_conf()).unwrap();
    mkfifo(&host.images_conf());
    host.run(&["build", "--offline", "--dry-run"])
        .fails_with(&["images.conf is a FIFO (named pipe), not a file"]);
}

#[test]
fn a_link_among_the_tools_own_files_is_refused_before_packer_and_images_conf_is_untouched() {
    let host = HostCopy::with_launcher();
    std::fs::create_dir_all(host.state_dir()).unwrap();
    for name in ["slurm-build.lock", "images.conf.lock", "slurm.pkrvars.hcl"] {
        let link = host.state_dir().join(name);
        std::os::unix::fs::symlink(host.images_conf(), &link).unwrap();
        host.run(&["build", "--offline", "--no-verify"])
            .fails_with(&[
                &format!("{name} is a symbolic link, which the tool never follows"),
                "remove it",
            ]);
        assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
        std::fs::remove_file(link).unwrap();
    }
    assert!(build_calls(&host).is_empty());
    host.run(&["build", "--offline", "--no-verify"]).ok();
}

#[test]
fn a_target_link_that_leads_nowhere_is_named_with_the_fix() {
    let host = HostCopy::with_launcher();
    std::os::unix::fs::symlink("/nonexistent/target", host.path("target")).unwrap();
    host.run(&["build", "--offline", "--no-verify"])
        .fails_with(&[
            "target is a symbolic link to /nonexistent/target, which does not exist",
            "create that folder, or remove the link",
        ]);
}

#[test]
fn a_build_names_the_inputs_git_has_not_committed_and_goes_on() {
    let host = HostCopy::with_launcher();
    crate::support::commit_host_tree(&host);
    host.write("tools/slurm/packer/static/extra.conf", "not committed\n");
    host.write("tools/slurm/packer/ansible-playbook.yml", "- hosts: all\n");
    // Not inputs: the README, and a file outside the template folder.
    host.write("tools/slurm/packer/README.md", "edited\n");
    host.write("notes.txt", "mine\n");
    let run = host.run(&["build", "--offline"]).ok();
    let warning = run
        .stderr
        .lines()
        .find(|line| line.starts_with("warning: uncommitted inputs: "))
        .unwrap_or_else(|| panic!("no warning in\n{}", run.stderr));
    assert_eq!(
        warning,
        "warning: uncommitted inputs: tools/slurm/packer/ansible-playbook.yml (changed), \
         tools/slurm/packer/static/extra.conf (untracked: packer reads it): packer reads them, so this image \
         is not what the branch builds; a release refuses them until they are committed or removed"
    );
    assert_eq!(build_calls(&host).len(), 1);
    // Packer's copy of the folder holds the file the warning named.
    assert_eq!(
        host.read("target/slurm-image/slurm/static/extra.conf"),
        "not committed\n"
    );
}

#[test]
fn a_build_of_a_committed_template_warns_of_nothing() {
    let host = HostCopy::with_launcher();
    crate::support::commit_host_tree(&host);
    let run = host.run(&["build", "--offline"]).ok();
    assert!(!run.stderr.contains("uncommitted"), "{}", run.stderr);
    assert_eq!(build_calls(&host).len(), 1);
}

#[test]
fn a_missing_checks_script_stops_the_build_before_the_launcher_is_copied_or_plugins_installed() {
    let host = HostCopy::with_launcher();
    std::fs::remove_file(host.build_dir().join(LAUNCHER)).unwrap();
    let config = "tools/slurm/packer/slurm-image.toml";
    host.write(
        config,
        host.read(config)
            .replace("# script = \"verify-image.sh\"", "script = \"missing.sh\""),
    );
    host.write(
        "downloads/hpe-hpc-launcher_3.9.0-7_amd64.deb",
        b"given package",
    );
    let given = host.path("downloads/hpe-hpc-launcher_3.9.0-7_amd64.deb");
    host.run_env(
        &["build", "--offline", "--launcher", given.to_str().unwrap()],
        &[("FAKE_PACKER_PLUGINS", "none")],
    )
    .fails_with(&[
        "reading the checks script tools/slurm/packer/missing.sh",
        "add it, fix the name, or build with --no-verify",
    ]);
    let work: Vec<String> = host
        .packer_calls()
        .into_iter()
        .filter(|c| c.contains("| build") || c.ends_with("| init ."))
        .collect();
    assert!(work.is_empty(), "{work:?}");
    assert!(
        !host.build_dir().exists()
            || std::fs::read_dir(host.build_dir())
                .unwrap()
                .next()
                .is_none(),
        "the launcher package was copied into build/"
    );
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn an_image_records_the_packer_and_plugins_that_made_it_outside_its_fingerprint() {
    let host = HostCopy::with_launcher();
    host.run(&["build", "--offline", "--no-verify"]).ok();
    let image = host
        .api()
        .image("det-environments-slurm-ci-1800000000")
        .unwrap();
    let labels = &image["labels"];
    // The stand-in says Packer v1.8.6 with both plugins at 1.1.4.
    assert_eq!(labels["packer"], "1_8_6", "{labels}");
    assert_eq!(labels["packer-plugin-googlecompute"], "1_1_4", "{labels}");
    assert_eq!(labels["packer-plugin-ansible"], "1_1_4", "{labels}");
    // Another packer makes the same image from the same inputs: the next build reuses it.
    let again = host
        .run_env(
            &["build", "--offline", "--no-verify"],
            &[("FAKE_PACKER", "1.7.4")],
        )
        .ok();
    assert!(again.stdout.contains("reusing "), "{}", again.stdout);
}

const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

/// A packer that renames the image in its manifest from `from` to `to`, as a template naming
/// its images otherwise would.
fn packer_renaming_its_image(host: &HostCopy, from: &str, to: &str) {
    packer_then(host, &format!(r#"sed -i 's/"{from}/"{to}/g' "$manifest""#));
}

#[test]
fn a_build_never_pins_an_image_of_another_workload_manager() {
    let host = HostCopy::with_launcher();
    let template = "tools/slurm/packer/main.pkr.hcl";
    let text = host.read(template).replace(
        "det-environments-${var.workload_manager}-ci-",
        "det-environments-slurm-ci-",
    );
    host.write(template, text);
    packer_renaming_its_image(
        &host,
        "det-environments-pbs-ci-",
        "det-environments-slurm-ci-",
    );
    let run = host.run(&["build", "--offline", "--wm", "pbs"]).fails_with(&[
        "not pinning det-environments-slurm-ci-1800000000, the latest build in target/slurm-image/pbs/build/manifest.json",
        "tools/slurm/packer/main.pkr.hcl line 42: image_name = \"det-environments-slurm-ci-{{timestamp}}\"",
        "det-environments-slurm-ci-1800000000 is not a pbs image",
        "images.conf left as it is",
    ]);
    assert_eq!(host.read(IMAGES_CONF), SEED, "{}", run.stderr);
}

#[test]
fn a_build_never_pins_another_teams_image() {
    let host = HostCopy::with_launcher();
    packer_renaming_its_image(
        &host,
        "det-environments-slurm-ci-1800000000",
        "other-team-image-1",
    );
    host.run(&["build", "--offline"]).fails_with(&[
        "not pinning other-team-image-1, the latest build in target/slurm-image/slurm/build/manifest.json",
        "other-team-image-1 is not a slurm image",
    ]);
    assert_eq!(host.read(IMAGES_CONF), SEED);
    // Another team's image is not this tool's to label or boot.
    let touched: Vec<String> = host
        .api()
        .http_requests()
        .into_iter()
        .filter(|r| r.contains("setLabels") || r.contains("/instances"))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    // The images a cluster reads are still the ones the tool accepts.
    host.run(&["build", "--offline", "--dry-run"]).ok();
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
    assert_eq!(reads_side_by_side(calls.take_calls()), [FAMILY, LIST, LIST]);
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
    assert_eq!(reads_side_by_side(calls.take_calls()), [FAMILY, LIST]);
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
    assert_eq!(reads_side_by_side(calls.take_calls()), built);
    // Reused and verified already: the listing holds its labels.
    host.write("tools/slurm/terraform/images.conf", crate::verify::SEED);
    host.run(&["build", "--offline"]).ok();
    assert_eq!(reads_side_by_side(calls.take_calls()), [FAMILY, LIST]);
    // Verified on demand: the labels read to know what to expect are those added to.
    host.run(&["verify", new]).ok();
    let mut verified = vec![DESCRIBE];
    verified.extend(boot);
    verified.push(LABEL);
    assert_eq!(calls.take_calls(), verified);
}
