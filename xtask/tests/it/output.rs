//! Output into a closed pipe: the xtask ends quietly, with the status a shell shows for a
//! program that SIGPIPE ended, instead of panicking with a backtrace.

use std::io::Read;
use std::process::{Child, Command, Stdio};

use crate::support::commit_host_tree;
use crate::support::{
    require_tool, wait_until, HostCopy, Run, GIT_IDENTITY as IDENTITY, STAND_IN_PACKER,
};

/// What a shell reports for a program a closed pipe (SIGPIPE, 13) ended: 128 + 13.
const CLOSED_PIPE: i32 = 141;

/// Which of the xtask's streams goes into a pipe that no one reads.
#[derive(Clone, Copy)]
enum Closed {
    Stdout,
    Stderr,
}

/// Runs `cmd` with one stream a pipe whose reading end is already closed, as a `| head -1`
/// that has its line leaves it: every write to it fails with EPIPE, whatever the timing. The
/// other stream is collected.
fn run_into_closed_pipe(mut cmd: Command, closed: Closed) -> Run {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    match closed {
        Closed::Stdout => cmd.stdout(writer).stderr(Stdio::piped()),
        Closed::Stderr => cmd.stdout(Stdio::piped()).stderr(writer),
    };
    let mut child = Ending(cmd.spawn().unwrap());
    let mut open = match closed {
        Closed::Stdout => Box::new(child.0.stderr.take().unwrap()) as Box<dyn Read + Send>,
        Closed::Stderr => Box::new(child.0.stdout.take().unwrap()),
    };
    let collect = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = open.read_to_string(&mut text);
        text
    });
    let mut status = None;
    wait_until(
        || {
            status = child.0.try_wait().unwrap();
            status.is_some()
        },
        || "the xtask did not end with a stream closed".to_string(),
    );
    let text = collect.join().unwrap();
    let (stdout, stderr) = match closed {
        Closed::Stdout => (String::new(), text),
        Closed::Stderr => (text, String::new()),
    };
    Run {
        code: status.unwrap().code(),
        stdout,
        stderr,
    }
}

/// A child that is killed if the test fails while it runs.
struct Ending(Child);

impl Drop for Ending {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Nothing of a panic: no message, no backtrace (asked for, so that one would show).
fn assert_no_panic(run: &Run) {
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains("panicked") && !text.contains("backtrace"),
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            run.code,
            run.stdout,
            run.stderr
        );
    }
}

#[test]
fn images_with_its_stderr_closed_still_lists_the_images() {
    if require_tool("gcloud").is_none() {
        return;
    }
    let host = HostCopy::new();
    let mut cmd = host.xtask(&["images"]);
    cmd.env("RUST_BACKTRACE", "1");
    // Its stderr has a note (no launcher package in build/, so no image is marked as the one
    // a build would reuse): the note is lost, and the listing is not.
    let run = run_into_closed_pipe(cmd, Closed::Stderr);
    assert_no_panic(&run);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stdout.contains("slurm") && run.stdout.contains("pbs"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_dry_run_into_a_closed_pipe_ends_quietly() {
    let host = HostCopy::new();
    let mut cmd = host.xtask(&["build", "--offline", "--dry-run"]);
    cmd.env("RUST_BACKTRACE", "1");
    let run = run_into_closed_pipe(cmd, Closed::Stdout);
    assert_no_panic(&run);
    assert_eq!(run.code, Some(CLOSED_PIPE), "{}", run.stderr);
    assert!(!run.stderr.contains("error"), "{}", run.stderr);
}

#[test]
fn help_into_a_closed_pipe_ends_with_the_same_status() {
    let host = HostCopy::new();
    for args in [&["--help"][..], &["build", "--help"]] {
        let run = run_into_closed_pipe(host.xtask(args), Closed::Stdout);
        assert_no_panic(&run);
        assert_eq!(run.code, Some(CLOSED_PIPE), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr, "", "{args:?}");
    }
}

/// Runs git in the host tree; its trimmed stdout.
fn git(host: &HostCopy, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(host.root())
        .envs(IDENTITY)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Runs `cmd` (stdout and stderr piped) and reads its stdout until packer's first progress
/// line, then closes it as `| head` would, and waits for the run to end.
fn close_stdout_during_packer(mut cmd: Command) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Ending(cmd.spawn().unwrap());
    let mut stderr = child.0.stderr.take().unwrap();
    let collect = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("step 1 of 10") {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() == 0 {
            panic!("stdout ended before packer's progress: {seen}");
        }
        seen.push_str(&line);
    }
    drop(stdout);
    let mut status = None;
    wait_until(
        || {
            status = child.0.try_wait().unwrap();
            status.is_some()
        },
        || "the run did not end after its stdout closed".to_string(),
    );
    Run {
        code: status.unwrap().code(),
        stdout: seen,
        stderr: collect.join().unwrap(),
    }
}

const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

/// A copy with the stand-in packer, both images pinned and a launcher in build/.
fn host_ready_to_build() -> HostCopy {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(
        IMAGES_CONF,
        "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n",
    );
    host.write(
        "tools/slurm/packer/build/hpe-hpc-launcher_3.3.1-2_amd64.deb",
        b"launcher package bytes",
    );
    host
}

#[test]
fn a_release_whose_stdout_closes_mid_build_still_pins_and_commits() {
    let host = host_ready_to_build();
    let conf = IMAGES_CONF;
    commit_host_tree(&host);

    let mut cmd = host.xtask(&["release", "--yes", "--offline", "--branch", "closed-pipe"]);
    cmd.envs(IDENTITY)
        .env("FAKE_PACKER_DELAY", "2")
        .env("RUST_BACKTRACE", "1");
    // The builds are under way when the pipe closes, and their VMs must not be left behind.
    let run = close_stdout_during_packer(cmd);
    assert_no_panic(&run);
    // It finished its work, the commit included; only the checklist after it may have found
    // the pipe closed.
    assert!(
        matches!(run.code, Some(0 | CLOSED_PIPE)),
        "{:?}: {}",
        run.code,
        run.stderr
    );
    assert_eq!(
        host.read(conf),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1800000000\n"
    );
    assert_eq!(git(&host, &["status", "--porcelain"]), "", "{}", run.stderr);
    assert_eq!(
        git(&host, &["show", "--name-only", "--format=", "HEAD"]),
        conf
    );
}

#[test]
fn a_build_whose_stdout_closes_mid_build_lets_packer_finish_and_pins() {
    let host = host_ready_to_build();
    let conf = IMAGES_CONF;
    let mut cmd = host.xtask(&["build", "--offline"]);
    cmd.env("FAKE_PACKER_DELAY", "2");
    // packer must run on (a packer killed by SIGPIPE leaves its VM behind) and the image be
    // pinned.
    let run = close_stdout_during_packer(cmd);
    assert_no_panic(&run);
    assert!(
        matches!(run.code, Some(0 | CLOSED_PIPE)),
        "{:?}: {}",
        run.code,
        run.stderr
    );
    assert_eq!(
        host.read(conf),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1717016272\n",
        "{}",
        run.stderr
    );
}
