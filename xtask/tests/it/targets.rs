//! The Makefile's targets through the built xtask, with a stand-in packer on PATH: `check`,
//! `build --debug` and `clean`.

use crate::support::{HostCopy, STAND_IN_PACKER};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";

fn host_with_launcher() -> HostCopy {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    host
}

#[test]
fn check_formats_then_validates_both_workload_managers_outside_build() {
    let host = host_with_launcher();
    let run = host.run(&["check"]).ok();
    assert!(
        run.stdout.contains("template is formatted and valid"),
        "{}",
        run.stdout
    );
    let calls: Vec<String> = host
        .packer_calls()
        .into_iter()
        .filter(|c| c.contains("| fmt") || c.contains("| validate"))
        .map(|c| c.split(" | ").nth(1).unwrap().to_string())
        .collect();
    let state = host.state_dir().canonicalize().unwrap();
    assert_eq!(
        calls,
        [
            "fmt -check .".to_string(),
            format!(
                "validate -var-file={}/check-slurm.pkrvars.hcl .",
                state.display()
            ),
            format!(
                "validate -var-file={}/check-pbs.pkrvars.hcl .",
                state.display()
            ),
        ]
    );
    for (wm, family) in [
        ("slurm", "slurm-gcp-6-3-ubuntu-2004-lts"),
        ("pbs", "ubuntu-2004-lts"),
    ] {
        let vars = host.read(&format!("validated-{wm}.pkrvars.hcl"));
        assert!(
            vars.starts_with("# Written by `cargo xtask slurm-image check`"),
            "{vars}"
        );
        assert!(
            vars.contains(&format!("image_family = \"{family}\"")),
            "{vars}"
        );
        assert!(
            vars.contains(&format!("launcher_deb_name = \"{LAUNCHER}\"")),
            "{vars}"
        );
    }
    // build/ may be uploaded whole: check leaves nothing of its own there.
    let names: Vec<String> = std::fs::read_dir(host.build_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [LAUNCHER]);
}

#[test]
fn check_without_a_launcher_validates_the_syntax_only_and_says_so() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    let run = host.run(&["check"]).ok();
    assert!(
        run.stderr.contains("only the syntax was validated"),
        "{}",
        run.stderr
    );
    let validations = host
        .packer_calls()
        .into_iter()
        .filter(|c| c.contains("| validate -syntax-only -var-file="))
        .count();
    assert_eq!(validations, 2);
}

#[test]
fn check_fails_on_an_undefined_variable_warning() {
    let host = host_with_launcher();
    host.run_env(&["check"], &[("FAKE_PACKER", "undefined")])
        .fails_with(&[
            "`packer validate` for slurm warns of undefined variables (zone)",
            "the template must declare every variable the build passes",
        ]);
}

#[test]
fn check_fails_first_on_formatting_and_validates_nothing() {
    let host = host_with_launcher();
    host.run_env(&["check"], &[("FAKE_PACKER_EXIT", "3")])
        .fails_with(&["needs formatting", "run `cargo xtask slurm-image fmt`"]);
    assert!(!host.packer_calls().iter().any(|c| c.contains("| validate")));
}

#[test]
fn check_fails_when_validation_fails() {
    let host = host_with_launcher();
    // fmt passes; validate fails.
    host.stand_in(
        "packer",
        &STAND_IN_PACKER.replace(
            "    echo \"The configuration is valid.\"\n",
            "    echo 'Error: Unsupported argument' >&2; exit 1\n",
        ),
    );
    host.run(&["check"])
        .fails_with(&["`packer validate` failed for slurm"]);
}

#[test]
fn build_debug_runs_packer_debug_with_the_full_log_on_the_terminal() {
    let host = host_with_launcher();
    let run = host.run(&["build", "--offline", "--debug"]).ok();
    let build = host
        .packer_calls()
        .into_iter()
        .find(|c| c.contains("| build"))
        .unwrap();
    assert!(build.contains("| build -debug -var-file="), "{build}");
    // PACKER_LOG=10 and no log file: everything goes to the terminal, as `make build-debug` did.
    assert_eq!(
        host.read("packer-env.log"),
        "PACKER_LOG=10 PACKER_LOG_PATH=\n"
    );
    assert!(
        run.stderr
            .contains("$ PACKER_LOG=10 packer build -debug -var-file="),
        "{}",
        run.stderr
    );
    assert!(host
        .read("tools/slurm/terraform/images.conf")
        .starts_with("slurm: det-environments-slurm-ci-1800000000\n"));
}

#[test]
fn a_plain_build_logs_to_its_file_and_echoes_that() {
    let host = host_with_launcher();
    let run = host.run(&["build", "--offline"]).ok();
    let state = host.state_dir().canonicalize().unwrap();
    assert_eq!(
        host.read("packer-env.log"),
        format!(
            "PACKER_LOG=1 PACKER_LOG_PATH={}/slurm-packer.log\n",
            state.display()
        )
    );
    assert!(
        run.stderr.contains(
            "$ PACKER_LOG=1 PACKER_LOG_PATH=target/slurm-image/slurm-packer.log packer build"
        ),
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

/// Since builds run in staging copies, packer writes its manifest there: build/ holds the
/// launcher packages alone, as the README says, and clean's help must not say otherwise.
#[test]
fn clean_describes_build_as_the_readme_does() {
    let host = HostCopy::new();
    let help = host.run(&["clean", "--help"]).ok().stdout;
    assert!(!help.contains("manifest"), "{help}");
    assert!(help.contains("launcher packages"), "{help}");
}
