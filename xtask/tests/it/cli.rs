//! The command line itself through the built xtask: usage errors and `--help`, before any tool
//! runs.

use crate::support::{HostCopy, Run};

/// A host copy whose gcloud and packer only record that they were started.
fn host() -> HostCopy {
    let host = HostCopy::new();
    for tool in ["gcloud", "packer"] {
        host.stand_in(
            tool,
            &format!("#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/../{tool}-started\"\nexit 1\n"),
        );
    }
    host
}

/// A usage error: clap's exit code 2, the message's parts, and no tool started.
fn usage_error(host: &HostCopy, args: &[&str], wanted: &[&str]) -> Run {
    let run = host.run(args).fails_with(wanted);
    assert_eq!(run.code, Some(2), "{args:?}\n{}", run.stderr);
    for tool in ["gcloud", "packer"] {
        assert!(
            !host.path(&format!("{tool}-started")).exists(),
            "{args:?} started {tool}"
        );
    }
    run
}

#[test]
fn keep_errors_speak_of_images_not_integer_types() {
    let host = host();
    for small in ["0", "-1"] {
        let run = usage_error(
            &host,
            &["prune", "--keep", small],
            &["--keep must be at least 1"],
        );
        assert!(
            !run.stderr.contains("18446744073709551615"),
            "{}",
            run.stderr
        );
    }
    usage_error(
        &host,
        &["prune", "--keep", "six"],
        &["--keep takes a whole number of images, e.g. --keep 6"],
    );
}

#[test]
fn a_bad_duration_is_a_usage_error_naming_the_accepted_forms() {
    let host = host();
    for bad in ["4", "4 hours", "1w"] {
        usage_error(
            &host,
            &["orphans", "--older-than", bad],
            &[
                &format!("invalid value '{bad}' for '--older-than <DURATION>'"),
                "whole number of minutes, hours or days",
                "`90m`, `4h` or `2d`",
            ],
        );
    }
}

#[test]
fn yes_without_the_action_it_confirms_is_refused() {
    let host = host();
    usage_error(&host, &["orphans", "--yes"], &["--delete"]);
    usage_error(&host, &["launcher", "--yes"], &["--fetch"]);
}

/// The subcommands `cargo xtask slurm-image --help` lists.
fn subcommands(host: &HostCopy) -> Vec<String> {
    let help = host.run(&["--help"]).ok().stdout;
    let (_, commands) = help
        .split_once("\nCommands:\n")
        .expect("a list of commands");
    commands
        .lines()
        .take_while(|line| line.starts_with("  "))
        .map(|line| line.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn every_subcommand_ends_its_help_with_examples_then_environment_then_config() {
    let host = host();
    let reads_config = [
        "check", "build", "release", "launcher", "images", "prune", "orphans", "doctor", "verify",
        "pin", "rollback",
    ];
    let reads_artifactory = ["build", "release", "launcher", "doctor"];
    let calls_gcloud = [
        "build", "release", "images", "prune", "orphans", "doctor", "verify", "pin", "rollback",
    ];
    let commands = subcommands(&host);
    for cmd in ["release", "doctor"] {
        assert!(commands.iter().any(|c| c == cmd), "{cmd}: {commands:?}");
    }
    for cmd in commands.iter().map(String::as_str) {
        let run = host.run(&[cmd, "--help"]).ok();
        let help = &run.stdout;
        let at = |title: &str| help.find(&format!("\n{title}:\n"));
        let examples =
            at("Examples").unwrap_or_else(|| panic!("{cmd} --help has no examples\n{help}"));
        assert!(
            help[examples..].contains(&format!("Examples:\n  cargo xtask slurm-image {cmd}")),
            "{help}"
        );
        let environment = at("Environment");
        let (artifactory, gcloud) = (
            reads_artifactory.contains(&cmd),
            calls_gcloud.contains(&cmd),
        );
        assert_eq!(environment.is_some(), artifactory || gcloud, "{help}");
        if let Some(environment) = environment {
            assert!(examples < environment, "{help}");
            let artifactory_vars = [
                "ARTIFACTORY_TOKEN",
                "ARTIFACTORY_USER",
                "ARTIFACTORY_PASSWORD",
                "SLURM_IMAGE_ARTIFACTORY_URL",
                "SLURM_IMAGE_STALL_TIMEOUT_S",
                "SLURM_IMAGE_RETRY_DELAY_MS",
            ];
            for (var, read) in artifactory_vars
                .iter()
                .map(|var| (*var, artifactory))
                .chain([("SLURM_IMAGE_GCLOUD_TIMEOUT_S", gcloud)])
            {
                assert_eq!(
                    help[environment..].contains(var),
                    read,
                    "{cmd}: {var}\n{help}"
                );
            }
        }
        let config = at("Config");
        assert_eq!(config.is_some(), reads_config.contains(&cmd), "{help}");
        if let Some(config) = config {
            assert!(examples.max(environment.unwrap_or(0)) < config, "{help}");
            assert!(
                help[config..].contains("tools/slurm/packer/slurm-image.toml"),
                "{help}"
            );
        }
    }
    assert!(!host.path("gcloud-started").exists() && !host.path("packer-started").exists());
    // check's files are the tool's own, in target/slurm-image/, not in the uploaded build/.
    let check = host.run(&["check", "--help"]).ok().stdout;
    assert!(check.contains("target/slurm-image/check-"), "{check}");
    assert!(!check.contains("build/check-"), "{check}");
}

/// Every `SLURM_IMAGE_*` variable the tool reads is a setting the README documents: none is a
/// knob only the tests know of.
#[test]
fn every_environment_variable_the_tool_reads_is_in_the_readme() {
    let root = crate::support::repo_root();
    let readme = std::fs::read_to_string(root.join("xtask/README.md")).unwrap();
    let mut sources = vec![root.join("xtask/src")];
    let mut read = std::collections::BTreeSet::new();
    while let Some(path) = sources.pop() {
        if path.is_dir() {
            sources.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices("\"SLURM_IMAGE_") {
            let name: String = text[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            read.insert(name);
        }
    }
    assert!(read.contains("SLURM_IMAGE_GCLOUD_TIMEOUT_S"), "{read:?}");
    for name in &read {
        assert!(
            readme.contains(name),
            "{name} is read but the README does not say so"
        );
    }
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
