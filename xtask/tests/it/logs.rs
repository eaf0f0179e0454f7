//! Logs read later (issue 24): without a terminal every line carries the time, each phase ends
//! with its duration, a wait is said once and then at most once a minute, and each check once.

use crate::support::{commit_host_tree, HostCopy, GIT_IDENTITY, STAND_IN_PACKER};
use crate::verify::{host, sandbox_available};

/// Whether `line` starts with the time as the tool stamps it: `2026-11-30T09:00:01Z `.
pub fn stamped(line: &str) -> bool {
    let bytes = line.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ ";
    bytes.len() >= shape.len()
        && shape.iter().zip(bytes).all(|(want, got)| match want {
            b'd' => got.is_ascii_digit(),
            other => other == got,
        })
}

/// The line without its stamp.
fn unstamped(line: &str) -> &str {
    line.get(21..).unwrap_or(line)
}

/// The seconds since midnight a stamped line was written at (the test runs within a day's
/// change at worst, which only makes a gap look longer).
fn second_of(line: &str) -> u64 {
    let field = |range: std::ops::Range<usize>| line[range].parse::<u64>().unwrap();
    field(11..13) * 3600 + field(14..16) * 60 + field(17..19)
}

#[test]
fn a_release_log_without_a_terminal_has_the_time_on_every_line_and_says_each_wait_once() {
    if !sandbox_available() {
        return;
    }
    let host = host("5m");
    commit_host_tree(&host);
    let mut env: Vec<(&str, &str)> = GIT_IDENTITY.to_vec();
    // As a CI job runs it: no terminal, and no choice made about the time.
    env.push(("SLURM_IMAGE_TIMESTAMPS", "auto"));
    let run = host
        .run_env(
            &["release", "--yes", "--offline", "--branch", "logs-release"],
            &env,
        )
        .ok();
    let log: Vec<&str> = run.stdout.lines().chain(run.stderr.lines()).collect();
    for line in &log {
        assert!(stamped(line), "a line without the time: {line:?}");
    }
    let lines: Vec<&str> = log.iter().map(|line| unstamped(line)).collect();
    for wm in ["slurm", "pbs"] {
        let said = |text: &str| {
            lines
                .iter()
                .filter(|line| line.starts_with(&format!("[{wm}] ")) && line.contains(text))
                .count()
        };
        // Each phase ends with its duration.
        assert_eq!(said("] packer: "), 1, "{wm}\n{}", run.stderr);
        assert_eq!(said("] verification: "), 1, "{wm}\n{}", run.stderr);
        // The wait is said once, then as progress: no line per read of the console.
        assert_eq!(
            said("waiting for the checks' report: reading the console of verify-"),
            1,
            "{wm}\n{}",
            run.stderr
        );
        assert_eq!(said("gcloud: reading the console"), 0, "{}", run.stderr);
        // Progress at most once a minute, by the log's own times.
        let progress: Vec<u64> = log
            .iter()
            .filter(|line| line.contains(&format!("[{wm}]   still waiting for the checks")))
            .map(|line| second_of(line))
            .collect();
        for pair in progress.windows(2) {
            assert!(pair[1] >= pair[0] + 60, "{progress:?}\n{}", run.stderr);
        }
        // Each check is reported once.
        let checks: Vec<&&str> = lines
            .iter()
            .filter(|line| line.starts_with(&format!("[{wm}]   ok ")))
            .collect();
        assert!(!checks.is_empty(), "{wm}: no check said\n{}", run.stderr);
        for check in &checks {
            let times = lines.iter().filter(|line| line == check).count();
            assert_eq!(times, 1, "{check} said {times} times\n{}", run.stderr);
        }
    }
    // The release ends with the few lines that matter, not the table of images.
    assert!(!run.stdout.contains("(newest first)"), "{}", run.stdout);
}

#[test]
fn the_flag_puts_the_time_on_lines_a_setting_of_never_would_leave_bare() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    // The tests' own setting is `never`: the flag outranks the variable.
    let run = host
        .run(&["build", "--offline", "--dry-run", "--timestamps"])
        .stops();
    let log: Vec<&str> = run.stdout.lines().chain(run.stderr.lines()).collect();
    assert!(log.len() > 5, "{}", run.stdout);
    for line in log {
        assert!(stamped(line), "a line without the time: {line:?}");
    }
    let bare = host.run(&["build", "--offline", "--dry-run"]).stops();
    assert!(
        bare.stdout.lines().all(|line| !stamped(line)),
        "{}",
        bare.stdout
    );
}
