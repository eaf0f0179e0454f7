//! What a newcomer and an adversary met on a first day (issue 16, items 10-18): misspelt words,
//! a release without a git identity or with nothing to change, `--redo` off a release branch,
//! doctor logged out, a wide `images`, and which workload manager each line is about.

mod support;

use support::{HostCopy, Run, STAND_IN_PACKER};

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
