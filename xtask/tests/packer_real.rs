//! The committed template against the real packer (Debian's 1.6.6): it must be `packer fmt`-clean.

mod support;

use support::{require_tool, HostCopy};

#[test]
fn the_committed_template_is_packer_fmt_clean() {
    if require_tool("packer").is_none() {
        return;
    }
    let host = HostCopy::new();
    host.run(&["fmt", "--check"]).ok();
}

#[test]
fn fmt_check_fails_on_a_misformatted_template_and_fmt_fixes_it() {
    if require_tool("packer").is_none() {
        return;
    }
    let host = HostCopy::new();
    let template = host.read("tools/slurm/packer/main.pkr.hcl");
    let misformatted = template.replacen("  ", "      ", 1);
    assert_ne!(misformatted, template);
    host.write("tools/slurm/packer/main.pkr.hcl", &misformatted);
    host.run(&["fmt", "--check"]).fails_with(&[
        "needs formatting",
        "main.pkr.hcl",
        "run `cargo xtask slurm-image fmt`",
    ]);
    assert_eq!(
        host.read("tools/slurm/packer/main.pkr.hcl"),
        misformatted,
        "--check must change nothing"
    );
    host.run(&["fmt"]).ok();
    assert_eq!(host.read("tools/slurm/packer/main.pkr.hcl"), template);
    host.run(&["fmt", "--check"]).ok();
}

#[test]
fn the_real_packer_version_is_read_and_checked_against_the_template() {
    let Some(_) = require_tool("packer") else {
        return;
    };
    let version = std::process::Command::new("packer")
        .arg("version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let host = HostCopy::new();
    let run = host.run(&["init"]);
    if version.starts_with("Packer v1.6.") {
        // Debian's packer predates `packer init`: the tool says so instead of failing obscurely.
        run.fails_with(&["packer 1.6.6 is installed but the template needs packer >= 1.7.0"]);
    } else {
        // A newer packer passes the check; `init` itself may then fail for want of the network.
        assert!(
            !run.stderr.contains("is installed but the template needs"),
            "{}",
            run.stderr
        );
    }
}
