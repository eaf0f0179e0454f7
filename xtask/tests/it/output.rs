//! Output into a closed pipe: the xtask ends quietly, with the status a shell shows for a
//! program that SIGPIPE ended, instead of panicking with a backtrace.

use std::io::Read;
use std::process::{Child, Command, Stdio};

use crate::support::{require_tool, wait_until, HostCopy, Run};

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
