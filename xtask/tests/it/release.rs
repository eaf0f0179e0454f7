//! `release` through the built xtask in a temporary git repository, with the stand-in packer
//! (which sleeps, and on SIGINT takes a moment to clean up) and a loopback Artifactory: also
//! `--redo`, a missing git identity, a failing commit, and releases whose images fail
//! verification or are interrupted while they verify.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::process::{Command, Stdio};

use crate::support::artifactory::Server;
use crate::support::commit_host_tree;
use crate::support::{
    git, read_until_line, temp_dir, HostCopy, InProcess, Run, GIT_IDENTITY as IDENTITY,
    STAND_IN_PACKER,
};
use crate::verify::{sandbox_available, vm_of};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const NEWEST: &str = "hpe-hpc-launcher_3.10.1-12_amd64.deb";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";
const BOTH_NEW: &str =
    "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1800000000\n";
const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";
const BRANCH: &str = "slurm-images-test";

/// A host tree as a git repository with one commit on `main`: the stand-in packer, images.conf
/// pinning older images, and a launcher package in build/.
fn repo_of(host: HostCopy) -> HostCopy {
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(IMAGES_CONF, SEED);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    commit_host_tree(&host);
    host
}

fn repo() -> HostCopy {
    repo_of(HostCopy::new())
}

/// The xtask's `release` with `args`, as the tests' user.
fn release(host: &HostCopy, args: &[&str]) -> Command {
    let mut all = vec!["release"];
    all.extend_from_slice(args);
    let mut cmd = host.xtask(&all);
    cmd.envs(IDENTITY);
    cmd
}

/// The same, pointed at a loopback Artifactory.
fn release_with(host: &HostCopy, server: &Server, args: &[&str]) -> Command {
    let mut cmd = release(host, args);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", server.folder_url())
        .env("SLURM_IMAGE_RETRY_DELAY_MS", "10")
        .env("NO_PROXY", "127.0.0.1");
    cmd
}

fn build_calls(host: &HostCopy) -> Vec<String> {
    host.packer_calls()
        .into_iter()
        .filter(|c| c.contains("| build"))
        .collect()
}

fn branches(host: &HostCopy) -> Vec<String> {
    git(host, &["branch", "--format=%(refname:short)"])
        .lines()
        .map(String::from)
        .collect()
}

/// Each workload manager's build as the stand-in logged it: (start, end) in seconds.
fn build_times(host: &HostCopy) -> BTreeMap<String, (f64, f64)> {
    let mut times: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in host.read("packer-times.log").lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let (wm, what, at) = (parts[0], parts[1], parts[2].parse::<f64>().unwrap());
        let entry = times.entry(wm.to_string()).or_default();
        match what {
            "start" => entry.0 = at,
            _ => entry.1 = at,
        }
    }
    times
}

/// Starts a release in-process, which the test delivers signals to as `kill` of the tool alone
/// would, and waits until both stand-ins have started. The built binary's own handling of each
/// signal is the journeys' (`ctrl_c_while_a_release_verifies_...`, `build.rs`, `signals.rs`).
fn start_in_process_and_wait_for_both(cmd: Command, host: &HostCopy) -> InProcess {
    let run = InProcess::start(cmd);
    run.wait_for("both stand-in packers to start", || {
        let started = std::fs::read_to_string(host.path("packer-started")).unwrap_or_default();
        started.lines().count() == 2
    });
    run
}

/// The stderr of a release run in-process that a delivered `signal` stopped: it waited for
/// packer and ended as a shell reports the signal, 128 + its number.
fn delivered_run(run: InProcess, signal: i32) -> String {
    let Run { code, stderr, .. } = run.finish();
    assert_eq!(code, Some(128 + signal), "{stderr}");
    stderr
}

#[test]
fn both_builds_run_at_once_and_their_lines_never_mix() {
    let host = repo();
    // stdout and stderr share one file, as on a terminal.
    let out = temp_dir("release-output");
    let file = std::fs::File::create(out.path().join("output")).unwrap();
    let mut cmd = release(&host, &["--yes", "--offline", "--branch", BRANCH]);
    // Each stand-in build waits for the other to start (and fails if it never does), so the
    // builds overlap by an event, not by how long each one takes on a busy machine.
    cmd.env("FAKE_PACKER", "rendezvous")
        .env("FAKE_PACKER_DELAY", "2")
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let status = cmd.status().unwrap();
    let output = std::fs::read_to_string(out.path().join("output")).unwrap();
    assert!(status.success(), "{output}");

    let times = build_times(&host);
    let (slurm, pbs) = (times["slurm"], times["pbs"]);
    assert!(
        slurm.0 < pbs.1 && pbs.0 < slurm.1,
        "the builds did not overlap: {times:?}"
    );

    let mut steps = BTreeMap::<&str, usize>::new();
    for line in output.lines() {
        for (wm, other) in [("slurm", "pbs"), ("pbs", "slurm")] {
            let prefix = format!("[{wm}] ");
            if !line.contains(&prefix) {
                continue;
            }
            assert!(line.starts_with(&prefix), "a line mixes output: {line:?}");
            let text = &line[prefix.len()..];
            assert!(
                !text.contains(&format!("[{other}]")) && !text.contains(&format!(" {other} ")),
                "a line mixes output: {line:?}"
            );
            if text.contains(" step ") {
                *steps.entry(wm).or_default() += 1;
                let step = text.split(' ').nth(7).unwrap();
                assert_eq!(
                    text,
                    format!(
                        "    googlecompute.fixture: {wm} step {step} of 10, still building the {wm} image"
                    ),
                    "{output}"
                );
            }
        }
    }
    assert_eq!(
        steps,
        BTreeMap::from([("pbs", 10), ("slurm", 10)]),
        "{output}"
    );
    for wanted in [
        "[pbs] pbs warning: halfway through the pbs build",
        "[slurm] $ PACKER_LOG=1 PACKER_LOG_PATH=target/slurm-image/slurm-packer.log packer build",
    ] {
        assert!(output.contains(wanted), "{wanted}\n{output}");
    }
    assert_eq!(host.read(IMAGES_CONF), BOTH_NEW);
}

#[test]
fn a_dirty_tree_builds_nothing_and_names_the_files() {
    let host = repo();
    let server = Server::start();
    server.add(NEWEST, b"newest".to_vec());
    host.write("tools/slurm/packer/ansible-playbook.yml", "changed\n");
    git(
        &host,
        &["rm", "-q", "--cached", "tools/slurm/packer/static/motd"],
    );
    Run::in_process(release_with(&host, &server, &["--yes", "--branch", BRANCH])).fails_with(&[
        "uncommitted changes: tools/slurm/packer/ansible-playbook.yml (changed), tools/slurm/packer/static/motd (changed)",
        "git stash",
    ]);
    assert!(host.packer_calls().is_empty(), "{:?}", host.packer_calls());
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(branches(&host), ["main"]);
    assert_eq!(host.read(IMAGES_CONF), SEED);
}

#[test]
fn an_existing_branch_builds_nothing() {
    let host = repo();
    let server = Server::start();
    server.add(NEWEST, b"newest".to_vec());
    git(&host, &["branch", BRANCH]);
    let head = git(&host, &["rev-parse", "HEAD"]);
    Run::in_process(release_with(&host, &server, &["--yes", "--branch", BRANCH])).fails_with(&[
        "the branch slurm-images-test already exists",
        "--branch NAME",
    ]);
    // A remote's branch of that name counts too: pushing would collide with it.
    git(&host, &["branch", "-D", BRANCH]);
    git(
        &host,
        &[
            "update-ref",
            &format!("refs/remotes/origin/{BRANCH}"),
            "HEAD",
        ],
    );
    Run::in_process(release(&host, &["--yes", "--offline", "--branch", BRANCH]))
        .fails_with(&["already exists (origin/slurm-images-test)"]);
    assert!(host.packer_calls().is_empty(), "{:?}", host.packer_calls());
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(git(&host, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(git(&host, &["rev-parse", "HEAD"]), head);
}

#[test]
fn the_release_commits_images_conf_alone_on_a_new_branch_and_leaves_a_checklist() {
    let host = repo();
    git(
        &host,
        &[
            "remote",
            "add",
            "origin",
            "git@github.com:determined-ai/determined.git",
        ],
    );
    git(&host, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
    let start = git(&host, &["rev-parse", "HEAD"]);
    let run = Run::in_process(release(&host, &["--yes", "--offline"])).ok();

    let today = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%F"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let branch = format!("slurm-images-{}", today.trim());
    assert_eq!(git(&host, &["symbolic-ref", "--short", "HEAD"]), branch);
    assert_eq!(git(&host, &["rev-parse", "HEAD^"]), start);
    assert_eq!(git(&host, &["rev-parse", "main"]), start, "main moved");
    assert_eq!(
        git(&host, &["show", "--name-only", "--format=", "HEAD"]),
        IMAGES_CONF
    );
    assert_eq!(git(&host, &["status", "--porcelain"]), "");
    assert_eq!(host.read(IMAGES_CONF), BOTH_NEW);
    assert_eq!(
        git(&host, &["show", &format!("HEAD:{IMAGES_CONF}")]),
        BOTH_NEW.trim_end()
    );
    let message = git(&host, &["log", "-1", "--format=%B"]);
    for wanted in [
        "launcher 3.3.1-2",
        "slurm: det-environments-slurm-ci-1800000000",
        "pbs: det-environments-pbs-ci-1800000000",
        LAUNCHER,
    ] {
        assert!(message.contains(wanted), "{wanted}\n{message}");
    }
    assert_eq!(
        git(&host, &["log", "-1", "--format=%an <%ae>"]),
        "Release Tester <tester@example.com>"
    );
    for wanted in [
        format!("branch    {branch}, from main"),
        "does not carry the newest launcher: --offline".to_string(),
        format!("git push -u origin {branch}"),
        format!("https://github.com/determined-ai/determined/compare/main...{branch}?expand=1"),
        "cargo xtask slurm-image prune".to_string(),
        // The prune plan as `images` computes it, against the loopback Compute API, in a line.
        "prune would delete nothing now".to_string(),
        format!("det-environments-{wm}-ci-1800000000", wm = "pbs"),
    ] {
        assert!(run.stdout.contains(&wanted), "{wanted}\n{}", run.stdout);
    }
    // The table of images is `images`'s to show, when asked.
    assert!(
        !run.stdout
            .contains("images in project determined-ai (newest first):"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failing_pbs_build_keeps_the_slurm_pin_uncommitted_and_says_how_to_finish() {
    let host = repo();
    let start = git(&host, &["rev-parse", "HEAD"]);
    // --no-verify too: the command that finishes the release must keep it, or it would boot
    // and check the image this release chose not to.
    let mut cmd = release(
        &host,
        &["--offline", "--no-verify", "--yes", "--branch", BRANCH],
    );
    cmd.env("FAKE_PACKER_PBS", "fail");
    let run = Run::in_process(cmd).fails_with(&[
        "the pbs build failed",
        "nothing was committed",
        "(uncommitted): slurm det-environments-slurm-ci-1800000000",
        "cargo xtask slurm-image release --redo pbs --offline --no-verify --yes",
        // The failed build's log, and its end, where the error is.
        "packer's log is target/slurm-image/pbs-packer.log",
        "googlecompute: Error creating instance: quota exceeded",
    ]);
    assert_eq!(
        host.read(IMAGES_CONF),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1717016272\n",
        "{}",
        run.stderr
    );
    assert_eq!(git(&host, &["symbolic-ref", "--short", "HEAD"]), BRANCH);
    assert_eq!(
        git(&host, &["rev-parse", "HEAD"]),
        start,
        "something was committed"
    );
    assert_eq!(
        git(&host, &["status", "--porcelain"]),
        format!(" M {IMAGES_CONF}")
    );

    // The command it printed builds pbs alone and commits both pins.
    let calls = build_calls(&host).len();
    Run::in_process(release(
        &host,
        &["--redo", "pbs", "--offline", "--no-verify", "--yes"],
    ))
    .ok();
    assert_eq!(
        build_calls(&host).len(),
        calls + 1,
        "only pbs is built again"
    );
    assert_eq!(git(&host, &["rev-parse", "HEAD^"]), start);
    assert_eq!(
        git(&host, &["show", "--name-only", "--format=", "HEAD"]),
        IMAGES_CONF
    );
    assert_eq!(git(&host, &["status", "--porcelain"]), "");
    let message = git(&host, &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("slurm: det-environments-slurm-ci-1800000000")
            && message.contains("pbs: det-environments-pbs-ci-1800000000"),
        "{message}"
    );
}

#[test]
fn an_interrupt_waits_for_both_clean_ups_and_commits_nothing() {
    let host = repo();
    let start = git(&host, &["rev-parse", "HEAD"]);
    let mut cmd = release(&host, &["--offline", "--yes", "--branch", BRANCH]);
    cmd.env("FAKE_PACKER", "slow");
    let run = start_in_process_and_wait_for_both(cmd, &host);
    run.deliver(libc::SIGINT);
    let stderr = delivered_run(run, libc::SIGINT);
    let mut cleaned: Vec<String> = host
        .read("packer-cleaned")
        .lines()
        .map(String::from)
        .collect();
    cleaned.sort();
    assert_eq!(cleaned, ["pbs", "slurm"], "{stderr}");
    for wanted in [
        "Ctrl-C (SIGINT) stopped the release",
        "nothing was committed",
        "no pin was recorded",
        "release --redo slurm,pbs --offline --yes",
    ] {
        assert!(stderr.contains(wanted), "{wanted}\n{stderr}");
    }
    assert_eq!(host.read(IMAGES_CONF), SEED);
    assert_eq!(git(&host, &["rev-parse", "HEAD"]), start);
    assert_eq!(git(&host, &["status", "--porcelain"]), "");
}

#[test]
fn a_build_that_finishes_as_the_interrupt_arrives_is_still_pinned_but_not_committed() {
    let host = repo();
    let start = git(&host, &["rev-parse", "HEAD"]);
    let mut cmd = release(&host, &["--offline", "--yes", "--branch", BRANCH]);
    cmd.env("FAKE_PACKER_SLURM", "finish-on-interrupt")
        .env("FAKE_PACKER_PBS", "slow");
    let run = start_in_process_and_wait_for_both(cmd, &host);
    run.deliver(libc::SIGINT);
    let stderr = delivered_run(run, libc::SIGINT);
    assert_eq!(host.read("packer-cleaned").trim(), "pbs", "{stderr}");
    for wanted in [
        "arrived as packer finished: pinning the image it built before stopping",
        "(uncommitted): slurm det-environments-slurm-ci-1800000000",
        "release --redo pbs --offline --yes",
    ] {
        assert!(stderr.contains(wanted), "{wanted}\n{stderr}");
    }
    assert_eq!(
        host.read(IMAGES_CONF),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1717016272\n"
    );
    assert_eq!(git(&host, &["rev-parse", "HEAD"]), start);
}

#[test]
fn sigterm_to_the_xtask_alone_reaches_both_packers() {
    let host = repo();
    let mut cmd = release(&host, &["--offline", "--yes", "--branch", BRANCH]);
    cmd.env("FAKE_PACKER", "slow");
    let run = start_in_process_and_wait_for_both(cmd, &host);
    run.deliver(libc::SIGTERM);
    let stderr = delivered_run(run, libc::SIGTERM);
    assert_eq!(host.read("packer-cleaned").lines().count(), 2, "{stderr}");
    assert!(stderr.contains("SIGTERM stopped the release"), "{stderr}");
    assert_eq!(host.read(IMAGES_CONF), SEED);
}

#[test]
fn a_dry_run_writes_fetches_builds_and_commits_nothing() {
    let host = repo();
    let server = Server::start();
    server.add(NEWEST, b"newest".to_vec());
    let head = git(&host, &["rev-parse", "HEAD"]);
    let run = Run::in_process(release_with(
        &host,
        &server,
        &["--dry-run", "--branch", BRANCH],
    ))
    .ok();
    for wanted in [
        "# branch: a new slurm-images-test from main",
        &format!("# launcher: {NEWEST} (the newest release, to be fetched into build/)"),
        "# builds: side by side",
        "workload_manager = \"slurm\"",
        "workload_manager = \"pbs\"",
        "PACKER_LOG=1 PACKER_LOG_PATH=target/slurm-image/slurm-packer.log packer build -var-file=target/slurm-image/slurm.pkrvars.hcl .",
        "PACKER_LOG=1 PACKER_LOG_PATH=target/slurm-image/pbs-packer.log packer build -var-file=target/slurm-image/pbs.pkrvars.hcl .",
        "- slurm: det-environments-slurm-ci-1717047568\n+ slurm: <the new slurm image packer builds>",
        "- pbs: det-environments-pbs-ci-1717016272\n+ pbs: <the new pbs image packer builds>",
        "Update the slurm and pbs test cluster images (launcher 3.10.1-12)",
    ] {
        assert!(run.stdout.contains(wanted), "{wanted}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("would stop here"), "{}", run.stdout);
    assert_eq!(server.downloads_of(NEWEST), 0);
    assert!(build_calls(&host).is_empty());
    assert!(!host.state_dir().exists());
    assert_eq!(
        std::fs::read_dir(host.build_dir()).unwrap().count(),
        1,
        "build/ changed"
    );
    assert_eq!(branches(&host), ["main"]);
    assert_eq!(git(&host, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&host, &["status", "--porcelain"]), "");
    assert_eq!(host.read(IMAGES_CONF), SEED);

    // What would stop a real release is listed, and still nothing is written.
    host.write(
        IMAGES_CONF,
        "slurm: det-environments-slurm-ci-1\npbs: det-environments-pbs-ci-2\n",
    );
    let run = Run::in_process(release(
        &host,
        &["--dry-run", "--offline", "--branch", BRANCH],
    ))
    .stops();
    assert!(
        run.stdout.contains("# a real release would stop here")
            && run.stdout.contains(
                "#   checkout: uncommitted changes: tools/slurm/terraform/images.conf (changed)"
            ),
        "{}",
        run.stdout
    );
    assert!(!host.state_dir().exists());
    assert_eq!(branches(&host), ["main"]);
}

#[test]
fn the_newest_launcher_is_fetched_without_asking_and_named_in_the_commit() {
    let host = repo();
    let server = Server::start();
    server.add(LAUNCHER, b"launcher package bytes".to_vec());
    server.add(NEWEST, b"the newest launcher".to_vec());
    let run = Run::in_process(release_with(&host, &server, &["--yes", "--branch", BRANCH])).ok();
    assert_eq!(server.downloads_of(NEWEST), 1);
    let mut used: Vec<String> = host
        .packer_launchers()
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    used.sort();
    assert_eq!(used, [NEWEST, NEWEST]);
    let in_build: Vec<String> = std::fs::read_dir(host.build_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(in_build, [NEWEST], "the older package is replaced");
    let message = git(&host, &["log", "-1", "--format=%B"]);
    assert!(
        message.contains("(launcher 3.10.1-12)") && message.contains("the newest launcher release"),
        "{message}"
    );
    assert!(
        run.stdout
            .contains(&format!("{NEWEST}, the newest release")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("does not carry"), "{}", run.stdout);
}

#[test]
fn artifactory_out_of_reach_stops_before_building_with_the_vpn_hint() {
    let host = repo();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = release(&host, &["--yes", "--branch", BRANCH]);
    cmd.env(
        "SLURM_IMAGE_ARTIFACTORY_URL",
        format!("http://127.0.0.1:{port}/artifactory/launchers/hpc/"),
    )
    .env("SLURM_IMAGE_RETRY_DELAY_MS", "10");
    // build/ holds a package, but only the flags may say to release with it.
    Run::in_process(cmd).fails_with(&["cannot reach", "VPN", "--offline", "--launcher PATH"]);
    assert!(build_calls(&host).is_empty());
    assert_eq!(branches(&host), ["main"]);
}

#[test]
fn without_yes_and_without_a_terminal_nothing_starts() {
    let host = repo();
    Run::in_process(release(&host, &["--offline", "--branch", BRANCH]))
        .fails_with(&["rerun with --yes"]);
    assert!(build_calls(&host).is_empty());
    assert_eq!(branches(&host), ["main"]);
}

#[test]
fn sequential_builds_one_after_the_other_and_says_why() {
    let host = repo();
    let run = Run::in_process(release(
        &host,
        &["--yes", "--offline", "--sequential", "--branch", BRANCH],
    ))
    .ok();
    assert!(
        run.stderr.contains("one after the other (--sequential)"),
        "{}",
        run.stderr
    );
    let times = build_times(&host);
    assert!(times["slurm"].1 <= times["pbs"].0, "{times:?}");
}

/// Also what was `newcomer::a_release_with_nothing_to_change_leaves_no_branch_behind`, which
/// began with the same first release: one release fewer.
#[test]
fn each_workload_manager_reuses_on_its_own_and_nothing_to_change_leaves_no_branch_behind() {
    let Some(_) = crate::support::require_tool("gcloud") else {
        return;
    };
    let host = repo();
    let first = Run::in_process(release(&host, &["--offline", "--yes", "--branch", BRANCH])).ok();
    assert_eq!(host.read(IMAGES_CONF), BOTH_NEW);
    assert_eq!(build_calls(&host).len(), 2);
    // A release's own lines carry their workload manager, as packer's do.
    for wanted in [
        "[slurm] packer built det-environments-slurm-ci-1800000000",
        "[pbs] tools/slurm/terraform/images.conf: pbs: det-environments-pbs-ci-1717016272 -> det-environments-pbs-ci-1800000000",
    ] {
        assert!(first.stdout.lines().any(|l| l == wanted), "{wanted}\n{}", first.stdout);
    }

    // Nothing to change: both images are reused, and the new branch is deleted again.
    let head = git(&host, &["rev-parse", "HEAD"]);
    let again = Run::in_process(release(
        &host,
        &["--offline", "--yes", "--branch", "slurm-images-second"],
    ))
    .ok();
    assert_eq!(build_calls(&host).len(), 2, "both images are reused");
    assert!(
        again.stdout.contains("nothing to release")
            && again
                .stdout
                .contains("the branch slurm-images-second is deleted"),
        "{}",
        again.stdout
    );
    for claim in ["commit    ", "push the branch", "pull request"] {
        assert!(!again.stdout.contains(claim), "{claim}\n{}", again.stdout);
    }
    assert_eq!(branches(&host), ["main", BRANCH]);
    assert_eq!(git(&host, &["symbolic-ref", "--short", "HEAD"]), BRANCH);
    assert_eq!(git(&host, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&host, &["status", "--porcelain"]), "");

    // A newer pbs source image: pbs builds again, slurm reuses the image it has.
    host.api().add_source_image(
        "ubuntu-os-cloud",
        "ubuntu-2004-lts",
        "ubuntu-2004-focal-v20240301",
        crate::support::SOURCES_CREATED + 86_400 * 60,
    );
    let run = Run::in_process(release(
        &host,
        &["--offline", "--yes", "--branch", "second"],
    ))
    .ok();
    let builds = build_calls(&host);
    assert_eq!(builds.len(), 3, "only pbs builds again: {builds:?}");
    assert!(
        run.stderr
            .contains("slurm: pinned det-environments-slurm-ci-1800000000 (reused"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .contains("source image ubuntu-2004-focal-v20240101 -> ubuntu-2004-focal-v20240301"),
        "{}",
        run.stdout
    );
    assert_eq!(
        host.read(IMAGES_CONF),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1800000001\n"
    );
    assert_eq!(git(&host, &["status", "--porcelain"]), "");
    // The commit says what it changes: the pbs image; the reused slurm pin is kept, as such.
    let message = git(&host, &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("Update the pbs test cluster image (launcher 3.3.1-2)\n"),
        "{message}"
    );
    assert!(
        message.contains(
            "slurm: det-environments-slurm-ci-1800000000 (launcher 3.3.1-2; unchanged: reused, already pinned)"
        ),
        "{message}"
    );
}

/// A pre-commit hook that says when git's commit has begun and holds it until the test lets
/// it go, so that a signal arrives during the commit.
fn hold_the_commit(host: &HostCopy) {
    let hook = host.path(".git/hooks/pre-commit");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n: > '{started}'\nfor _ in $(seq 3000); do [ -e '{go}' ] && exit 0; sleep 0.1; done\n",
            started = host.path("commit-started").display(),
            go = host.path("commit-may-go").display()
        ),
    )
    .unwrap();
    let status = Command::new("chmod")
        .arg("755")
        .arg(&hook)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_during_the_commit_is_honoured_and_says_the_commit_landed() {
    let host = repo();
    hold_the_commit(&host);
    let run = InProcess::start(release(&host, &["--yes", "--offline", "--branch", BRANCH]));
    run.wait_for("git's commit to begin", || {
        host.path("commit-started").exists()
    });
    // `kill <pid>`, as a supervisor stops a job: the tool alone, not git.
    run.deliver(libc::SIGTERM);
    std::fs::write(host.path("commit-may-go"), "").unwrap();
    let stderr = delivered_run(run, libc::SIGTERM);
    let commit = git(&host, &["rev-parse", "--short", BRANCH]);
    assert!(
        stderr.contains(&format!(
            "release interrupted by SIGTERM during its commit: the commit {commit} on {BRANCH} holds the pins"
        )),
        "{stderr}"
    );
    assert_eq!(
        git(&host, &["show", &format!("{BRANCH}:{IMAGES_CONF}")]),
        BOTH_NEW.trim_end()
    );
}

#[test]
fn an_input_git_does_not_track_is_refused_by_name_before_the_branch() {
    let host = repo();
    // An ignore rule of the template folder's own, committed: its files are ignored inputs.
    host.write("tools/slurm/packer/static/.gitignore", "*.pem\n");
    git(&host, &["add", "tools/slurm/packer/static/.gitignore"]);
    git(&host, &["commit", "-q", "-m", "ignore keys"]);
    host.write("tools/slurm/packer/static/extra.conf", "not committed\n");
    host.write("tools/slurm/packer/static/key.pem", "secret\n");
    // Neither is an input: a file outside the template folder, and a README in it.
    host.write("notes.txt", "mine\n");
    host.write("tools/slurm/packer/static/README.md", "notes\n");
    Run::in_process(release(&host, &["--yes", "--offline", "--branch", BRANCH])).fails_with(&[
        "uncommitted changes: tools/slurm/packer/static/extra.conf (untracked: packer reads it), \
         tools/slurm/packer/static/key.pem (ignored by git: packer reads it): a release starts from a clean \
         checkout, so that its images are what its branch builds; commit or remove the untracked files \
         (`git stash --include-untracked` sets them aside too); remove the ignored files, or commit them \
         (`git add -f PATH`), then run the release again",
    ]);
    assert!(host.packer_calls().is_empty(), "{:?}", host.packer_calls());
    assert_eq!(branches(&host), ["main"]);
    assert!(!host.state_dir().join("slurm").exists());
}

#[test]
fn a_dry_run_lists_an_untracked_input_as_a_stop() {
    let host = repo();
    host.write("tools/slurm/packer/static/extra.conf", "not committed\n");
    let run = Run::in_process(release(
        &host,
        &["--dry-run", "--offline", "--branch", BRANCH],
    ))
    .stops();
    assert!(
        run.stdout.contains(
            "# a real release would stop here, before any work:\n#   checkout: uncommitted changes: \
             tools/slurm/packer/static/extra.conf (untracked: packer reads it)"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(branches(&host), ["main"]);
    assert!(!host.state_dir().exists());
}

#[test]
fn a_redo_keeps_images_conf_but_refuses_an_untracked_input() {
    let host = repo();
    git(&host, &["checkout", "-q", "-b", BRANCH]);
    git(
        &host,
        &[
            "config",
            &format!("branch.{BRANCH}.slurmImageRelease"),
            "true",
        ],
    );
    host.write(IMAGES_CONF, BOTH_NEW);
    host.write("tools/slurm/packer/static/extra.conf", "not committed\n");
    let run = Run::in_process(release(&host, &["--redo", "pbs", "--yes", "--offline"])).fails_with(&[
        "uncommitted changes: tools/slurm/packer/static/extra.conf (untracked: packer reads it): --redo \
         commits tools/slurm/terraform/images.conf alone",
    ]);
    assert!(
        !run.stderr.contains("images.conf (changed)"),
        "{}",
        run.stderr
    );
    assert!(host.packer_calls().is_empty(), "{:?}", host.packer_calls());
    assert_eq!(host.read(IMAGES_CONF), BOTH_NEW);
}

#[test]
fn a_deb_the_tool_cannot_read_stops_the_release_before_any_download_or_branch() {
    let host = repo();
    let server = Server::start();
    server.add(NEWEST, b"newest".to_vec());
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb",
        b"the package meant",
    );
    // Copied in after the release package: it may be the one meant.
    let build = host.build_dir();
    let at = |name: &str, seconds: u64| {
        std::fs::File::options()
            .write(true)
            .open(build.join(name))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
            .unwrap();
    };
    at(LAUNCHER, 100);
    at("hpe-hpc-launcher-3.3.1.deb", 200);
    let stop =
        "tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a launcher package";
    Run::in_process(release_with(&host, &server, &["--yes", "--branch", BRANCH]))
        .fails_with(&[stop, "rename it to hpe-hpc-launcher_3.3.1-REV_amd64.deb"]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(build_calls(&host).is_empty(), "{:?}", host.packer_calls());
    assert_eq!(branches(&host), ["main"]);

    let run = Run::in_process(release_with(
        &host,
        &server,
        &["--dry-run", "--branch", BRANCH],
    ))
    .stops();
    assert!(
        run.stdout.contains(&format!("#   launcher: {stop}")),
        "{}",
        run.stdout
    );
    assert_eq!(server.downloads_of(NEWEST), 0);
}

/// What a refused release must leave as it was: no branch, the checkout where it stood, no
/// packer build or plugin install, nothing asked of Compute but reads, and nothing announced.
fn assert_refused_before_any_work(host: &HostCopy, head: &str, run: &Run) {
    // 3: stopped before any work, the code a dry run listing the stop exits with too.
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert_eq!(branches(host), ["main"]);
    assert_eq!(git(host, &["symbolic-ref", "--short", "HEAD"]), "main");
    assert_eq!(git(host, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(host, &["status", "--porcelain"]), "");
    let work: Vec<String> = host
        .packer_calls()
        .into_iter()
        .filter(|c| c.contains("| build") || c.contains("| init"))
        .collect();
    assert!(work.is_empty(), "{work:?}");
    assert!(host.api().only_reads(), "{:?}", host.api().requests());
    assert!(!run.stderr.contains("release: build the"), "{}", run.stderr);
    assert_eq!(host.read(IMAGES_CONF), SEED);
}

/// The stand-in ansible-playbook, answering the syntax check as ansible-playbook does for a
/// playbook with a task no module runs.
const BROKEN_PLAYBOOK_CHECK: &str = "#!/usr/bin/env bash
case \"${1:-}\" in
  --version) echo \"ansible-playbook [core 2.14.18] (stand-in)\"; exit 0 ;;
esac
echo \"ERROR! couldn't resolve module/action 'ansible.builtin.no_such_module'\" >&2
exit 4
";

#[test]
fn a_broken_playbook_is_a_stop_of_the_plan_and_the_release_refuses_before_its_branch() {
    let host = repo();
    host.stand_in("ansible-playbook", BROKEN_PLAYBOOK_CHECK);
    let head = git(&host, &["rev-parse", "HEAD"]);
    let broken = "the playbook tools/slurm/packer/ansible-playbook.yml is broken";

    let dry = Run::in_process(release(
        &host,
        &["--dry-run", "--offline", "--branch", BRANCH],
    ))
    .stops();
    let stops = dry
        .stdout
        .split_once("# a real release would stop here, before any work:\n")
        .map(|(_, stops)| stops)
        .unwrap_or_else(|| panic!("no stops in\n{}", dry.stdout));
    for wm in ["slurm", "pbs"] {
        assert!(
            stops.contains(&format!("#   [{wm}] playbook: {broken}")),
            "{wm}\n{}",
            dry.stdout
        );
    }

    let run = Run::in_process(release(&host, &["--yes", "--offline", "--branch", BRANCH]))
        .fails_with(&[broken, "no_such_module", "fix it before a VM runs it"]);
    assert_refused_before_any_work(&host, &head, &run);
}

#[test]
fn a_missing_checks_script_is_a_stop_of_the_plan_and_the_release_refuses_before_its_branch() {
    let host = HostCopy::new();
    let config = "tools/slurm/packer/slurm-image.toml";
    host.write(
        config,
        host.read(config)
            .replace("# script = \"verify-image.sh\"", "script = \"missing.sh\""),
    );
    let host = repo_of(host);
    let head = git(&host, &["rev-parse", "HEAD"]);
    let missing = "reading the checks script tools/slurm/packer/missing.sh (verify.script in \
                   tools/slurm/packer/slurm-image.toml): add it, fix the name, or build with --no-verify";

    let dry = Run::in_process(release(
        &host,
        &["--dry-run", "--offline", "--branch", BRANCH],
    ))
    .stops();
    assert!(
        dry.stdout.contains(&format!(
            "# a real release would stop here, before any work:\n#   verification: {missing}"
        )),
        "{}",
        dry.stdout
    );

    let run = Run::in_process(release(&host, &["--yes", "--offline", "--branch", BRANCH]))
        .fails_with(&[missing]);
    assert_refused_before_any_work(&host, &head, &run);
}

const NEWER: &str = "hpe-hpc-launcher_3.5.0-0_amd64.deb";
const NEW_SLURM: &str = "det-environments-slurm-ci-1800000000";
const NEW_PBS: &str = "det-environments-pbs-ci-1800000000";

#[test]
fn redo_on_main_is_refused_before_any_work() {
    let host = repo();
    let head = git(&host, &["rev-parse", "HEAD"]);
    let run =
        Run::in_process(release(&host, &["--redo", "pbs", "--offline", "--yes"])).fails_with(&[
            "--redo finishes a release on the branch the release made, and main is not one",
            "cargo xtask slurm-image release",
        ]);
    assert_eq!(build_calls(&host).len(), 0, "{}", run.stderr);
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
    let asked = Run::in_process(release(&host, &["--redo", "pbs", "--offline"])).fails_with(&[
        "build the pbs image alone with launcher",
        "pin it in",
        "a release runs one packer VM",
    ]);
    assert!(!asked.stderr.contains("two packer VMs"), "{}", asked.stderr);

    Run::in_process(release(&host, &["--redo", "pbs", "--offline", "--yes"])).ok();
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
    assert_eq!(build_calls(&host).len(), 0, "{}", run.stderr);
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
    Run::in_process(release(
        &host,
        &["--offline", "--yes", "--branch", "slurm-images-hook"],
    ))
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

/// A host tree that verifies with the default checks, committed on `main` so that a release
/// may branch from it.
fn release_host(timeout: &str) -> HostCopy {
    let host = crate::verify::host(timeout);
    commit_host_tree(&host);
    host
}

fn head(host: &HostCopy) -> String {
    let out = std::process::Command::new("git")
        .args(["log", "--all", "--format=%s"])
        .current_dir(host.root())
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

const RELEASE: [&str; 5] = ["release", "--yes", "--offline", "--branch", "qa-release"];

#[test]
fn a_release_whose_pbs_image_fails_verification_commits_nothing_and_says_how_to_finish() {
    if !sandbox_available() {
        return;
    }
    let host = release_host("5m");
    host.api().boot_together(2);
    host.api().images_lack("enabled/pbs");
    let run = host.run_env(&RELEASE, &IDENTITY).exits_with(5, &[
        &format!("{NEW_PBS} failed its verification: pbs-service"),
        "the pbs image failed verification (see above): nothing was committed",
        "to finish the release on qa-release: cargo xtask slurm-image release --redo pbs --offline --yes \
         (it verifies the pbs image again (or builds it anew once a fix changes its inputs), then commits)",
    ]);
    // One next step: `verify IMAGE --pin` would pin it but leave the release uncommitted.
    assert!(
        !run.stderr.contains("slurm-image verify "),
        "{}",
        run.stderr
    );
    // packer built both: its log explains nothing here.
    assert!(
        !run.stderr.contains("packer's log is") && !run.stderr.contains("build failed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        host.read(IMAGES_CONF),
        format!("slurm: {NEW_SLURM}\npbs: det-environments-pbs-ci-1717016272\n"),
        "slurm pinned, pbs unchanged\n{}",
        run.stderr
    );
    assert_eq!(head(&host), "The host tree\n", "nothing committed");
    assert_eq!(
        host.api().image(NEW_SLURM).unwrap()["labels"]["verification"],
        "verified"
    );
    assert_eq!(
        host.api().image(NEW_PBS).unwrap()["labels"]["verification"],
        "failed"
    );
    assert!(host.api().instance_names().is_empty());
}

#[test]
fn a_release_whose_builds_fail_in_different_ways_says_each() {
    if !sandbox_available() {
        return;
    }
    let host = release_host("5m");
    host.api().images_lack("enabled/pbs");
    let env: Vec<(&str, &str)> = IDENTITY
        .into_iter()
        .chain([("FAKE_PACKER_SLURM", "fail")])
        .collect();
    let run = host.run_env(&RELEASE, &env).fails_with(&[
        &format!("{NEW_PBS} failed its verification: pbs-service"),
        "the slurm build failed and the pbs image failed verification (see above): nothing was committed",
        "cargo xtask slurm-image release --redo slurm,pbs --offline --yes (it builds slurm again, verifies the \
         pbs image again",
    ]);
    // The log of the build that failed, not of the one that built.
    assert!(
        run.stderr
            .contains("packer's log is target/slurm-image/slurm-packer.log")
            && !run
                .stderr
                .contains("packer's log is target/slurm-image/pbs-packer.log"),
        "{}",
        run.stderr
    );
    assert_eq!(host.read(IMAGES_CONF), SEED, "{}", run.stderr);
    assert_eq!(head(&host), "The host tree\n", "nothing committed");
}

#[test]
fn ctrl_c_while_a_release_verifies_deletes_both_vms_commits_nothing_and_exits_130() {
    if !sandbox_available() {
        return;
    }
    let host = release_host("10m");
    host.api().hang_at_boot();
    let mut cmd = host.xtask(&RELEASE);
    cmd.envs(IDENTITY);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let seen = read_until_line(&mut stderr, "reading the console of");
    if !seen.contains("reading the console of verify-det-environments-pbs")
        || !seen.contains("reading the console of verify-det-environments-slurm")
    {
        read_until_line(&mut stderr, "reading the console of");
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest}");
    // The images carry the build's labels: only the verification's are missing.
    assert!(
        !rest.contains("neither labelled")
            && rest.contains("labels are unchanged and it is not pinned")
            && rest.contains("packer and the verifications were left to delete their VMs"),
        "{rest}"
    );
    assert_eq!(host.read(IMAGES_CONF), SEED, "{rest}");
    assert_eq!(head(&host), "The host tree\n", "{rest}");
    let mut deleted = host.api().instance_deletions();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            format!("us-central1-c/{}", vm_of(&host, NEW_PBS)),
            format!("us-central1-c/{}", vm_of(&host, NEW_SLURM))
        ],
        "{rest}"
    );
    assert!(host.api().instance_names().is_empty(), "{rest}");
}

#[test]
fn a_release_dry_run_shows_the_verification_and_an_unknown_launcher_honestly() {
    let host = crate::verify::host("5m");
    std::fs::remove_dir_all(host.path("tools/slurm/packer/build")).unwrap();
    let run = host
        .run_env(
            &["release", "--dry-run", "--branch", "qa-release"],
            &[(
                "SLURM_IMAGE_ARTIFACTORY_URL",
                "http://127.0.0.1:9/artifactory",
            )],
        )
        .stops();
    for wanted in [
        "# [slurm] then verify it before the pin: boot verify-det-environments-slurm-ci-<timestamp>-<random>",
        "# [pbs] then verify it before the pin: boot verify-det-environments-pbs-ci-<timestamp>-<random>",
        "launcher_deb_name = <unknown: the newest release: unknown, Artifactory is unreachable",
        "Update the slurm and pbs test cluster images (launcher unknown)",
    ] {
        assert!(run.stdout.contains(wanted), "{wanted}\n{}", run.stdout);
    }
    assert!(
        !run.stdout.contains("hpe-hpc-launcher_3.3.1-2"),
        "no launcher is known: {}",
        run.stdout
    );
    assert!(host.api().only_reads());
}

#[test]
fn builds_side_by_side_share_one_listing_of_the_project_and_one_after_another_list_each() {
    let host = repo();
    host.api().take_calls();
    Run::in_process(release(&host, &["--yes", "--offline", "--branch", BRANCH])).ok();
    let calls = host.api().take_calls();
    let lists = |calls: &[String]| calls.iter().filter(|c| *c == "list_images_for").count();
    // One listing decides both builds' reuse, and one after packer counts the prune hint.
    assert_eq!(lists(&calls), 2, "{calls:?}");
    assert_eq!(
        calls.iter().filter(|c| *c == "image_from_family").count(),
        2,
        "{calls:?}"
    );

    // One after the other, the second build (an hour later, for real) lists afresh.
    let host = repo();
    host.api().take_calls();
    Run::in_process(release(
        &host,
        &["--yes", "--offline", "--sequential", "--branch", BRANCH],
    ))
    .ok();
    assert_eq!(lists(&host.api().take_calls()), 3);
}
