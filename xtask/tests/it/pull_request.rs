//! `release --pr`: after the commit, the branch is pushed to the remote its starting branch
//! tracks (a bare repository here) and a stand-in `gh` opens the pull request; without a
//! logged-in gh the exact commands are printed instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    commit_host_tree, git, temp_dir, HostCopy, TempDir, GIT_IDENTITY, STAND_IN_PACKER,
};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";
const BRANCH: &str = "slurm-images-pr";
const URL: &str = "https://github.com/determined-ai/determined/pull/4242";
/// The commit's subject, which is the pull request's title.
const TITLE: &str = "Update the slurm and pbs test cluster images (launcher 3.3.1-2)";

/// A stand-in `gh`: logs each call beside itself, answers `auth status` as logged in (or not,
/// with `FAKE_GH_LOGGED_OUT`), and for `pr create` keeps the body file and prints an address.
const STAND_IN_GH: &str = r#"#!/usr/bin/env bash
here="$(dirname "$0")"
echo "$*" >> "$here/gh-calls.log"
case "$1 $2" in
  "auth status")
    if [ -n "${FAKE_GH_LOGGED_OUT:-}" ]; then
      echo "You are not logged into any GitHub hosts. To log in, run: gh auth login" >&2; exit 1
    fi
    echo "github.com: Logged in to github.com account tester" >&2; exit 0 ;;
  "pr create")
    while [ $# -gt 0 ]; do
      [ "$1" = --body-file ] && cp "$2" "$here/gh-pr-body.md"
      shift
    done
    echo "Creating pull request for slurm-images-pr into main in determined-ai/determined" >&2
    echo "https://github.com/determined-ai/determined/pull/4242" ;;
  *) echo "stand-in gh: unexpected $*" >&2; exit 1 ;;
esac
"#;

/// A committed host tree whose `main` tracks `origin`, a bare repository beside it, with the
/// stand-ins for packer and gh.
fn repo_with_remote() -> (HostCopy, TempDir, PathBuf) {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.stand_in("gh", STAND_IN_GH);
    host.write("tools/slurm/terraform/images.conf", SEED);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    commit_host_tree(&host);
    let dir = temp_dir("remote");
    let remote = dir.path().join("determined.git");
    run_git(
        dir.path(),
        &["init", "-q", "--bare", "-b", "main", "determined.git"],
    );
    git(
        &host,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    git(&host, &["push", "-q", "-u", "origin", "main"]);
    (host, dir, remote)
}

fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(GIT_IDENTITY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn release_env(logged_out: bool) -> Vec<(&'static str, &'static str)> {
    let mut env = GIT_IDENTITY.to_vec();
    if logged_out {
        env.push(("FAKE_GH_LOGGED_OUT", "1"));
    }
    env
}

fn gh_calls(host: &HostCopy) -> Vec<String> {
    std::fs::read_to_string(host.path("bin/gh-calls.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_release_with_pr_pushes_its_branch_and_opens_the_pull_request_naming_both_images() {
    let (host, dir, remote) = repo_with_remote();
    // Someone merged meanwhile: main here is one commit behind origin.
    let other = dir.path().join("other");
    run_git(
        dir.path(),
        &["clone", "-q", remote.to_str().unwrap(), "other"],
    );
    std::fs::write(other.join("NEWS"), "merged meanwhile\n").unwrap();
    run_git(&other, &["add", "NEWS"]);
    run_git(&other, &["commit", "-q", "-m", "Merged meanwhile"]);
    run_git(&other, &["push", "-q", "origin", "main"]);

    let run = host
        .run_env(
            &["release", "--yes", "--offline", "--branch", BRANCH, "--pr"],
            &release_env(false),
        )
        .ok();
    assert!(
        run.stderr.contains(
            "warning: main is 1 commit(s) behind origin: the release branch starts from main"
        ),
        "{}",
        run.stderr
    );
    // The branch is on the remote, at the release's commit.
    let pushed = run_git(&remote, &["rev-parse", &format!("refs/heads/{BRANCH}")]);
    assert_eq!(pushed, git(&host, &["rev-parse", BRANCH]));
    let calls = gh_calls(&host);
    let body_file = host.state_dir().join("release-pr-body.md");
    assert_eq!(
        calls,
        [
            "auth status".to_string(),
            format!(
                "pr create --base main --head {BRANCH} --title {TITLE} --body-file {}",
                body_file.display()
            )
        ],
        "{}",
        run.stderr
    );
    let body = host.read("bin/gh-pr-body.md");
    let message = git(&host, &["log", "-1", "--format=%B", BRANCH]);
    assert!(
        body.starts_with(message.trim_end()),
        "{body}\n---\n{message}"
    );
    for wanted in [
        "det-environments-slurm-ci-1800000000",
        "det-environments-pbs-ci-1800000000",
        "## Verification",
        "- slurm: det-environments-slurm-ci-1800000000: unverified: there is no checks script",
        "- pbs: det-environments-pbs-ci-1800000000: unverified: there is no checks script",
    ] {
        assert!(body.contains(wanted), "{wanted}\n{body}");
    }
    for wanted in [
        format!("  pushed    {BRANCH} to origin\n  pull request {URL}\n"),
        format!("pull request: {URL}\n"),
    ] {
        assert!(run.stdout.contains(&wanted), "{wanted}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("git push -u"), "{}", run.stdout);
}

#[test]
fn without_a_logged_in_gh_a_release_with_pr_says_so_and_prints_the_commands() {
    let (host, _dir, remote) = repo_with_remote();
    let run = host
        .run_env(
            &["release", "--yes", "--offline", "--branch", BRANCH, "--pr"],
            &release_env(true),
        )
        .ok();
    assert!(
        run.stderr.contains(
            "pull request: gh is not logged in (`gh auth status`: You are not logged into any GitHub hosts."
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains(&format!(
            "git push -u origin {BRANCH}\ngh pr create --base main --head {BRANCH} \
             --title '{TITLE}' --body-file target/slurm-image/release-pr-body.md\n"
        )),
        "{}",
        run.stdout
    );
    // Nothing was pushed or opened; the body the commands name is there.
    assert_eq!(gh_calls(&host), ["auth status"]);
    let branches = run_git(&remote, &["branch", "--format=%(refname:short)"]);
    assert_eq!(branches, "main");
    assert!(host
        .read("target/slurm-image/release-pr-body.md")
        .contains("det-environments-pbs-ci-1800000000"));
}

#[test]
fn a_release_with_pr_from_a_branch_that_tracks_no_remote_stops_before_any_work() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.stand_in("gh", STAND_IN_GH);
    host.write("tools/slurm/terraform/images.conf", SEED);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    commit_host_tree(&host);
    let run = host
        .run_env(
            &["release", "--yes", "--offline", "--branch", BRANCH, "--pr"],
            &release_env(false),
        )
        .exits_with(
            3,
            &["--pr pushes the release branch to the remote main tracks, and main tracks none"],
        );
    assert!(!run.stderr.contains("branch: created"), "{}", run.stderr);
    assert!(host.packer_calls().iter().all(|c| !c.contains("| build")));
}

/// A release's dry run with `--pr`.
const DRY_RUN_PR: &[&str] = &[
    "release",
    "--dry-run",
    "--offline",
    "--branch",
    BRANCH,
    "--pr",
];

#[test]
fn a_release_dry_run_with_pr_shows_the_push_and_the_pull_request_and_what_would_refuse_it() {
    let (host, _dir, _remote) = repo_with_remote();
    let run = host.run_env(DRY_RUN_PR, &release_env(false)).ok();
    let remote_line = format!(
        "# then push {BRANCH} to origin and open its pull request into main with gh, printing its address"
    );
    assert!(run.stdout.contains(&remote_line), "{}", run.stdout);
    // The checklist no longer holds what --pr does.
    assert!(
        run.stdout
            .contains("# and end with the checklist: prune (the plan of"),
        "{}",
        run.stdout
    );
    // gh is asked whether it is logged in, and nothing is pushed or opened.
    assert_eq!(gh_calls(&host), ["auth status"]);
    assert!(git(&host, &["ls-remote", "origin"])
        .lines()
        .all(|l| !l.contains(BRANCH)));

    // Without a logged-in gh the run would print the commands: the plan says so.
    let run = host.run_env(DRY_RUN_PR, &release_env(true)).ok();
    assert!(
        run.stdout.contains(&format!(
            "# then print the commands that push {BRANCH} to origin and open its pull request into main"
        )),
        "{}",
        run.stdout
    );

    // A base that tracks no remote would refuse the run: the dry run lists it as a stop.
    git(&host, &["branch", "--unset-upstream", "main"]);
    let run = host.run_env(DRY_RUN_PR, &release_env(false)).stops();
    assert!(
        run.stdout.contains(
            "#   pull request: --pr pushes the release branch to the remote main tracks, and main tracks none"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn a_release_with_pr_in_a_log_puts_the_time_on_git_s_and_gh_s_lines_too() {
    let (host, _dir, _remote) = repo_with_remote();
    let mut env = release_env(false);
    // As a CI job runs it: no terminal, and no choice made about the time.
    env.push(("SLURM_IMAGE_TIMESTAMPS", "auto"));
    let run = host
        .run_env(
            &["release", "--yes", "--offline", "--branch", BRANCH, "--pr"],
            &env,
        )
        .ok();
    // git push's own report and gh's line come through the tool, stamped like its own.
    for said in ["To ", "Creating pull request for"] {
        let line = run
            .stderr
            .lines()
            .find(|line| line.contains(said))
            .unwrap_or_else(|| panic!("{said:?} is not in the log\n{}", run.stderr));
        assert!(crate::logs::stamped(line), "{line:?}");
    }
    for line in run.stdout.lines().chain(run.stderr.lines()) {
        assert!(
            crate::logs::stamped(line),
            "a line without the time: {line:?}"
        );
    }
}
