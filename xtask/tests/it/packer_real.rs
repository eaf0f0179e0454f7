//! The real packer: the live template (this repository's `tools/`, or the real host
//! repository's in its place) formatted and valid with the variables the tool renders, and a
//! null-builder template built through the xtask. Only what holds for any template is checked
//! against the live one, so editing the playbook or a static file never breaks a test.

use std::process::Command;

use crate::support::{require_tool, HostCopy, Run};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";

#[test]
fn the_live_template_is_packer_fmt_clean() {
    if require_tool("packer").is_none() {
        return;
    }
    let host = HostCopy::live();
    host.run(&["fmt", "--check"]).ok();
}

#[test]
fn the_live_template_is_valid_with_the_rendered_variables_for_both_workload_managers() {
    if require_tool("packer").is_none() {
        return;
    }
    let host = HostCopy::live();
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    // Debian's packer 1.6.6 reads everything but the `packer {}` block, which came in 1.7.
    if packer_version() < (1, 7) {
        let template = host.read("tools/slurm/packer/main.pkr.hcl");
        host.write(
            "tools/slurm/packer/main.pkr.hcl",
            without_packer_block(&template),
        );
    }
    for wm in ["slurm", "pbs"] {
        // The dry run renders exactly what a build would pass, and never fails for an old packer.
        let run = host
            .run(&["build", "--offline", "--dry-run", "--wm", wm])
            .stops();
        let variables = rendered_variables(&run.stdout);
        assert!(
            variables.contains(&format!("workload_manager = \"{wm}\"")),
            "{}",
            run.stdout
        );
        let var_file = host.path(&format!("{wm}.pkrvars.hcl"));
        std::fs::write(&var_file, &variables).unwrap();
        let output = Command::new("packer")
            .arg("validate")
            .arg(format!("-var-file={}", var_file.display()))
            .arg(".")
            .current_dir(host.path("tools/slurm/packer"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{wm}: {text}\n{variables}");
        assert!(!text.contains("Undefined variable"), "{wm}: {text}");
    }
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
    if require_tool("packer").is_none() {
        return;
    }
    let host = HostCopy::real_form();
    let run = host.run(&["init"]);
    if packer_version() < (1, 7) {
        // Debian's packer predates `packer init`: the tool says so instead of failing obscurely.
        run.fails_with(&[
            "packer 1.6.6 is installed but the template needs packer >= 1.7.0",
            "install packer >= 1.7 from HashiCorp",
        ]);
    } else {
        // A newer packer passes the check; `init` itself may then fail for want of the network.
        assert!(
            !run.stderr.contains("is installed but the template needs"),
            "{}",
            run.stderr
        );
    }
}

/// A stand-in packer that hands `build` to the real one at REAL_PACKER.
const HANDS_BUILDS_TO_THE_REAL_PACKER: &str = r#"#!/bin/sh
case "$1" in
  version) echo "Packer v1.8.6" ;;
  plugins) ;;
  build) exec REAL_PACKER "$@" ;;
  *) echo "stand-in packer: unexpected $*" >&2; exit 64 ;;
esac
"#;

/// A config value with everything HCL would read differently: quotes, backslashes, `${...}`
/// and `%{` templates, unicode, a tab and a newline.
const AWKWARD: &str =
    "a \"quote\", a back\\slash, ${var.cpu_image_name} and %{ if } ünï\ttab\nline";

#[test]
fn the_real_packer_reads_every_value_as_written_and_its_null_artifact_is_refused() {
    let Some(real_packer) = require_tool("packer") else {
        return;
    };
    let host = HostCopy::null_builder();
    // The real packer builds; the stand-in answers what Debian's 1.6.6 cannot (a version the
    // tool accepts, and the plugins, of which the template needs none).
    let real = format!("'{}'", real_packer.display());
    host.stand_in(
        "packer",
        &HANDS_BUILDS_TO_THE_REAL_PACKER.replace("REAL_PACKER", &real),
    );
    // gcloud, against the loopback Compute API, resolves the source image; no image is made.
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    let images_conf = std::fs::read_to_string(host.images_conf()).unwrap();
    let manifest = host.state_dir().join("slurm/build/manifest.json");

    for value in ["first run", AWKWARD] {
        let config = host.read("tools/slurm/packer/slurm-image.toml");
        let line = config
            .lines()
            .find(|line| line.starts_with("ssh_user = "))
            .unwrap();
        // A JSON string is a TOML basic string for these characters. (The task images, which
        // the template passes to a shell, must be image references; the user's name is free.)
        let config = config.replace(
            line,
            &format!("ssh_user = {}", serde_json::to_string(value).unwrap()),
        );
        host.write("tools/slurm/packer/slurm-image.toml", config);
        let mut cmd = host.xtask(&["build", "--offline"]);
        cmd.env("CHECKPOINT_DISABLE", "1");
        // The null builder's artifact is not an image: the tool refuses it by name, and pins
        // nothing.
        Run::in_process(cmd).fails_with(&["\"Null\"", "not a GCE image name"]);
        assert_eq!(
            std::fs::read_to_string(host.images_conf()).unwrap(),
            images_conf
        );
    }

    // Packer appends each run to its manifest; the tool starts every build afresh, so the
    // manifest holds the last run alone.
    let json = std::fs::read_to_string(&manifest).unwrap();
    let all: serde_json::Value = serde_json::from_str(&json).unwrap();
    let builds = all["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 1, "{json}");
    assert_eq!(builds[0]["builder_type"], "null", "{json}");
    assert_eq!(builds[0]["artifact_id"], "Null", "{json}");
    // Byte for byte as in the config: the variables file escaped what HCL would have read
    // differently.
    let data = &builds[0]["custom_data"];
    assert_eq!(data["ssh_username"], AWKWARD, "{json}");
    assert_eq!(data["workload_manager"], "slurm", "{json}");
    assert_eq!(data["launcher_deb_name"], LAUNCHER, "{json}");
    assert_eq!(
        data["cpu_image_name"], "determinedai/pytorch-tensorflow-cpu-dev:e960eae",
        "{json}"
    );
}

/// The real packer's major and minor version.
fn packer_version() -> (u64, u64) {
    let out = Command::new("packer").arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .next()
        .and_then(|l| l.trim().strip_prefix("Packer v"))
        .unwrap_or_else(|| panic!("unexpected `packer version`: {text}"));
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// The variables file a dry run prints between its `would contain:` and `and run` lines.
fn rendered_variables(stdout: &str) -> String {
    let start = stdout
        .find("would contain:\n")
        .unwrap_or_else(|| panic!("no variables in\n{stdout}"));
    let rest = &stdout[start + "would contain:\n".len()..];
    let end = rest.find("\n# and run").unwrap();
    rest[..end].to_string()
}

/// The template without its top-level `packer { ... }` block (from `packer {` at the start of
/// a line to the first `}` at the start of a line after it).
fn without_packer_block(template: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in template.lines() {
        if !inside && line.starts_with("packer {") {
            inside = true;
            continue;
        }
        if inside {
            inside = !line.starts_with('}');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(!out.contains("required_plugins"), "{out}");
    out
}
