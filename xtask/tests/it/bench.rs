//! Measurements of whole commands, for `xtask/bench/run.sh`: gcloud calls per command, a
//! release against the slower single build, and an unchanged rebuild (reused) against a build.
//! Each prints a Markdown table; none asserts a timing. Run with
//! `cargo test -p xtask --test it -- --ignored --nocapture --test-threads=1 bench::`.

use std::time::{Duration, Instant};

use crate::support::{require_tool, HostCopy, STAND_IN_PACKER};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const DEB: &str = "HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb";

/// A host tree in a git checkout, with ten images of each workload manager in its loopback
/// Compute API, two packer VMs (one of them old), a launcher in build/, and a gcloud that
/// records each call before running the real one.
fn host() -> Option<HostCopy> {
    host_of(HostCopy::new)
}

/// [`host`] on the template `fixture` makes.
fn host_of(fixture: fn() -> HostCopy) -> Option<HostCopy> {
    let gcloud = require_tool("gcloud")?;
    let host = fixture();
    host.stand_in("packer", STAND_IN_PACKER);
    host.stand_in(
        "gcloud",
        &format!(
            "#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/../gcloud-calls.log\"\nexec '{}' \"$@\"\n",
            gcloud.display()
        ),
    );
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    for wm in ["slurm", "pbs"] {
        for n in 0..10 {
            let created = 1_717_000_000 + n * 86_400;
            host.api().add_image(
                &format!("det-environments-{wm}-ci-{created}"),
                created,
                "READY",
                &[],
                DEB,
            );
        }
    }
    host.write(
        "tools/slurm/terraform/images.conf",
        "slurm: det-environments-slurm-ci-1717777600\npbs: det-environments-pbs-ci-1717777600\n",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let packer_vm = "New instance created by Packer";
    host.api().add_instance(
        "us-central1-c",
        "packer-old",
        now - 86_400,
        "RUNNING",
        packer_vm,
    );
    host.api().add_instance(
        "us-central1-c",
        "packer-new",
        now - 60,
        "RUNNING",
        packer_vm,
    );
    host.write(".gitignore", "*\n!tools/\n!tools/**\n");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.email=b@example.com",
            "-c",
            "user.name=bench",
            "commit",
            "-qm",
            "host",
        ],
    ] {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(host.root())
            .status()
            .unwrap();
        assert!(status.success());
    }
    Some(host)
}

/// Runs one command; its gcloud calls, requests to the Compute API, and wall time.
fn measure(host: &HostCopy, args: &[&str], env: &[(&str, &str)]) -> (usize, usize, Duration) {
    let calls_log = host.path("gcloud-calls.log");
    let _ = std::fs::remove_file(&calls_log);
    let requests = host.api().requests().len();
    let started = Instant::now();
    let run = host.run_env(args, env);
    let elapsed = started.elapsed();
    // doctor fails on purpose here (no Artifactory); everything else must succeed.
    if args[0] != "doctor" {
        run.ok();
    } else {
        assert!(run.stdout.contains("git"), "{}", run.stdout);
    }
    let calls = std::fs::read_to_string(&calls_log)
        .unwrap_or_default()
        .lines()
        .count();
    (calls, host.api().requests().len() - requests, elapsed)
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn gcloud_calls_per_command() {
    let Some(host) = host() else { return };
    println!("\n| command | gcloud calls | Compute API requests | wall time |");
    println!("|---|---|---|---|");
    let closed = [(
        "SLURM_IMAGE_ARTIFACTORY_URL",
        "http://127.0.0.1:9/artifactory/x/",
    )];
    // The second `build --offline` finds the image the first one built: it reuses it.
    for (args, note) in [
        (&["images"][..], ""),
        (&["prune"], ""),
        (&["prune", "--yes"], ""),
        (&["orphans"], ""),
        (&["orphans", "--delete", "--yes"], ""),
        (&["build", "--offline"], ""),
        (&["build", "--offline"], " (reused)"),
        (&["build", "--offline", "--wm", "pbs"], ""),
        (&["doctor"], ""),
    ] {
        let (calls, requests, elapsed) = measure(&host, args, &closed);
        println!(
            "| `{}`{note} | {calls} | {requests} | {:.2} s |",
            args.join(" "),
            elapsed.as_secs_f64()
        );
    }
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn an_unchanged_rebuild_against_a_build() {
    let Some(host) = host() else { return };
    const DELAY: &str = "5";
    println!(
        "\n| round | build (stand-in packer sleeping {DELAY} s) | unchanged rebuild (reused) | ratio |"
    );
    println!("|---|---|---|---|");
    for round in 1..=3 {
        // A changed static file makes the next build a real one.
        host.write(
            "tools/slurm/packer/static/motd",
            format!("bench round {round}\n"),
        );
        let env = [("FAKE_PACKER_DELAY", DELAY)];
        let (_, _, build) = measure(&host, &["build", "--offline"], &env);
        let packer_builds = |host: &HostCopy| {
            host.packer_calls()
                .iter()
                .filter(|c| c.contains("| build"))
                .count()
        };
        let builds = packer_builds(&host);
        let (_, _, reuse) = measure(&host, &["build", "--offline"], &env);
        assert_eq!(
            packer_builds(&host),
            builds,
            "the unchanged rebuild ran packer"
        );
        println!(
            "| {round} | {:.2} s | {:.2} s | {:.3} |",
            build.as_secs_f64(),
            reuse.as_secs_f64(),
            reuse.as_secs_f64() / build.as_secs_f64()
        );
    }
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn a_release_against_the_slower_single_build() {
    println!(
        "\n| template | round | build slurm | build pbs | release | ratio to the slower build | release --sequential |"
    );
    println!("|---|---|---|---|---|---|---|");
    // The real template's form (no optional declarations), and this repository's.
    for (form, fixture) in [
        ("real form", HostCopy::real_form as fn() -> HostCopy),
        ("with image_labels, source_image", HostCopy::new),
    ] {
        let Some(host) = host_of(fixture) else { return };
        release_rounds(&host, form);
    }
}

/// The rounds of [`a_release_against_the_slower_single_build`] on one host tree.
fn release_rounds(host: &HostCopy, form: &str) {
    const DELAY: &str = "10";
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(host.root())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Back to main as committed, without the branches of earlier rounds.
    let reset = || {
        git(&["checkout", "-q", "-f", "main"]);
        for branch in git(&["branch", "--format=%(refname:short)"]).lines() {
            if branch != "main" {
                git(&["branch", "-q", "-D", branch]);
            }
        }
    };
    let env = [
        ("FAKE_PACKER_DELAY", DELAY),
        ("GIT_AUTHOR_NAME", "bench"),
        ("GIT_AUTHOR_EMAIL", "bench@example.com"),
        ("GIT_COMMITTER_NAME", "bench"),
        ("GIT_COMMITTER_EMAIL", "bench@example.com"),
    ];
    // --force everywhere: every run builds, as a release after a change of inputs does.
    for round in 1..=rounds {
        reset();
        let (_, _, slurm) = measure(host, &["build", "--offline", "--force"], &env);
        git(&["checkout", "-q", "--", "tools/slurm/terraform/images.conf"]);
        let (_, _, pbs) = measure(
            host,
            &["build", "--offline", "--force", "--wm", "pbs"],
            &env,
        );
        reset();
        let branch = format!("bench-{round}");
        let release = [
            "release",
            "--yes",
            "--offline",
            "--force",
            "--branch",
            &branch,
        ];
        let (_, _, both) = measure(host, &release, &env);
        reset();
        let branch = format!("bench-sequential-{round}");
        let sequential = [
            "release",
            "--yes",
            "--offline",
            "--force",
            "--sequential",
            "--branch",
            &branch,
        ];
        let (_, _, one_after_the_other) = measure(host, &sequential, &env);
        let slower = slurm.max(pbs).as_secs_f64();
        println!(
            "| {form} | {round} | {:.2} s | {:.2} s | {:.2} s | {:.3} | {:.2} s |",
            slurm.as_secs_f64(),
            pbs.as_secs_f64(),
            both.as_secs_f64(),
            both.as_secs_f64() / slower,
            one_after_the_other.as_secs_f64()
        );
    }
    reset();
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn verification_cost_in_builds_and_releases() {
    let Some(host) = host() else { return };
    let sandbox = std::process::Command::new("unshare")
        .args(["--mount", "--fork", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !sandbox {
        println!("verification: not measured, `unshare --mount` does not work here (run as root)");
        return;
    }
    host.write(
        "tools/slurm/packer/verify-image.sh",
        std::fs::read(crate::support::repo_root().join("tools/slurm/packer/verify-image.sh"))
            .unwrap(),
    );
    host.api().boot_instances_in(&host.path("vms"));
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let env = [
        ("GIT_AUTHOR_NAME", "bench"),
        ("GIT_AUTHOR_EMAIL", "bench@example.com"),
        ("GIT_COMMITTER_NAME", "bench"),
        ("GIT_COMMITTER_EMAIL", "bench@example.com"),
    ];
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(host.root())
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    };
    let reset = || {
        git(&["checkout", "-q", "-f", "main"]);
        let out = std::process::Command::new("git")
            .args(["branch", "--format=%(refname:short)"])
            .current_dir(host.root())
            .output()
            .unwrap();
        for branch in String::from_utf8_lossy(&out.stdout).lines() {
            if branch != "main" {
                git(&["branch", "-q", "-D", branch]);
            }
        }
    };
    println!(
        "\n| round | build --no-verify | build (verified) | added | release --no-verify | release (both verified) | added |"
    );
    println!("|---|---|---|---|---|---|---|");
    for round in 1..=rounds {
        reset();
        let (_, _, bare) = measure(
            &host,
            &["build", "--offline", "--force", "--no-verify"],
            &env,
        );
        reset();
        let (_, _, verified) = measure(&host, &["build", "--offline", "--force"], &env);
        reset();
        let branch = format!("bench-unverified-{round}");
        let (_, _, release_bare) = measure(
            &host,
            &[
                "release",
                "--yes",
                "--offline",
                "--force",
                "--no-verify",
                "--branch",
                &branch,
            ],
            &env,
        );
        reset();
        let branch = format!("bench-verified-{round}");
        let (_, _, release_verified) = measure(
            &host,
            &[
                "release",
                "--yes",
                "--offline",
                "--force",
                "--branch",
                &branch,
            ],
            &env,
        );
        println!(
            "| {round} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {:.2} s |",
            bare.as_secs_f64(),
            verified.as_secs_f64(),
            verified.as_secs_f64() - bare.as_secs_f64(),
            release_bare.as_secs_f64(),
            release_verified.as_secs_f64(),
            release_verified.as_secs_f64() - release_bare.as_secs_f64(),
        );
    }
    reset();
}
