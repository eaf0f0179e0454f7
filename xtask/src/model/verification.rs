//! The verification of an image, pure: the VM it boots, the startup script it runs, the checks'
//! report read from the serial console, the labels it leaves and the bill of materials.
//!
//! The team's checks script prints one line per finding behind [`MARKER`], which survives the
//! guest agent's own prefix (`google_metadata_script_runner[PID]: startup-script: `):
//!
//! ```text
//! slurm-image-verify: ok launcher: hpe-hpc-launcher 3.3.1-2 installed, launcher.service enabled
//! slurm-image-verify: FAIL enroot-cache: /srv/enroot/x+y+z.sqsh is missing
//! slurm-image-verify: version slurm 23.11.4
//! slurm-image-verify: end
//! ```

use std::collections::BTreeMap;

use anyhow::bail;

use crate::model::provenance::{from_label_value, label_value};
use crate::model::WorkloadManager;

/// What the checks script writes before each line of its report.
pub const MARKER: &str = "slurm-image-verify: ";

/// The label that says how an image's last verification went.
pub const STATUS: &str = "verification";
pub const VERIFIED: &str = "verified";
pub const FAILED: &str = "failed";
/// The prefix of the bill of materials' labels: `bom-slurm=23_11_4`.
pub const BOM_PREFIX: &str = "bom-";
/// GCE's limit of labels on one resource.
pub const MAX_LABELS: usize = 64;

/// The labels of a verification VM: this tool's, and the image it verifies, so that `orphans`
/// finds one left behind and says what it was for.
pub const VM_ROLE: &str = "slurm-image";
pub const VM_ROLE_VALUE: &str = "verification";
pub const VM_IMAGE: &str = "verifies";

/// The settings of one verification, from the `[verify]` section of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long the checks may take to report, from the VM's creation on, in seconds.
    pub timeout_s: u64,
    pub machine_type: String,
}

/// The VM a verification boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vm {
    pub name: String,
    pub zone: String,
    pub image: String,
    pub machine_type: String,
    /// `--max-run-duration`: GCE deletes the VM after this, whoever forgot it.
    pub fuse_s: u64,
    pub labels: Vec<(String, String)>,
}

/// How long GCE lets a verification VM live past the bound, for the tool to delete it itself.
const FUSE_MARGIN_S: u64 = 600;

impl Vm {
    pub fn new(image: &str, zone: &str, settings: &Settings) -> Vm {
        Vm {
            name: vm_name(image),
            zone: zone.to_string(),
            image: image.to_string(),
            machine_type: settings.machine_type.clone(),
            fuse_s: settings.timeout_s + FUSE_MARGIN_S,
            labels: vec![
                (VM_ROLE.to_string(), VM_ROLE_VALUE.to_string()),
                (VM_IMAGE.to_string(), label_value(image)),
            ],
        }
    }
}

/// Whether a VM with this name and these labels is one a verification boots: this tool's
/// label, and the name [`Vm::new`] gives for the image its other label names. Both, since
/// anyone can copy a label onto a VM of their own.
pub fn is_vm(name: &str, labels: &BTreeMap<String, String>) -> bool {
    labels.get(VM_ROLE).map(String::as_str) == Some(VM_ROLE_VALUE)
        && labels
            .get(VM_IMAGE)
            .is_some_and(|image| vm_name(image) == name)
}

/// `verify-<image>`, cut to GCE's 63 characters without a trailing dash.
pub fn vm_name(image: &str) -> String {
    let mut name = format!("verify-{image}");
    name.truncate(63);
    name.trim_end_matches('-').to_string()
}

/// What the image should hold, handed to the checks script as shell variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub wm: WorkloadManager,
    /// The launcher version baked in, `3.3.1-2`.
    pub launcher: String,
    pub cpu_task_image: String,
    pub cuda_task_image: String,
}

/// The startup script: the expected values as shell variables, then the team's script.
pub fn startup_script(expected: &Expected, checks: &str) -> String {
    let body = checks
        .strip_prefix("#!")
        .map_or(checks, |rest| rest.split_once('\n').map_or("", |(_, b)| b));
    format!(
        "#!/bin/bash\n# Written by cargo xtask slurm-image: what the image should hold.\n\
         VERIFY_WORKLOAD_MANAGER={}\nVERIFY_LAUNCHER_VERSION={}\n\
         VERIFY_CPU_TASK_IMAGE={}\nVERIFY_CUDA_TASK_IMAGE={}\n{body}",
        shell_quote(expected.wm.key()),
        shell_quote(&expected.launcher),
        shell_quote(&expected.cpu_task_image),
        shell_quote(&expected.cuda_task_image),
    )
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// One check's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// What the checks reported so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
    /// `(what, version)`, in the order reported: the bill of materials.
    pub versions: Vec<(String, String)>,
    /// The script said `end`: nothing more will come.
    pub finished: bool,
}

impl Report {
    /// Reads the report out of the console text, ignoring everything that is not the script's.
    pub fn parse(console: &str) -> Report {
        let mut report = Report::default();
        for line in console.lines() {
            let Some((_, said)) = line.split_once(MARKER) else {
                continue;
            };
            let said = said.trim_end_matches('\r').trim();
            let (word, rest) = said.split_once(' ').unwrap_or((said, ""));
            match word {
                "ok" | "FAIL" => {
                    let (name, detail) = rest.split_once(':').unwrap_or((rest, ""));
                    report.checks.push(Check {
                        name: name.trim().to_string(),
                        ok: word == "ok",
                        detail: detail.trim().to_string(),
                    });
                }
                "version" => {
                    let (what, version) = rest.split_once(' ').unwrap_or((rest, ""));
                    if !what.is_empty() && !version.trim().is_empty() {
                        report
                            .versions
                            .push((what.to_string(), version.trim().to_string()));
                    }
                }
                "end" => report.finished = true,
                _ => {}
            }
        }
        report
    }

    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }

    /// Whether the image passed: the script finished, checked something and nothing failed.
    pub fn passed(&self) -> bool {
        self.finished && !self.checks.is_empty() && self.failed().is_empty()
    }

    /// One line per check, as the user reads them.
    pub fn lines(&self) -> Vec<String> {
        self.checks.iter().map(check_line).collect()
    }
}

pub fn check_line(check: &Check) -> String {
    format!(
        "{} {}: {}",
        if check.ok { "ok  " } else { "FAIL" },
        check.name,
        check.detail
    )
}

/// The last `n` lines of the console, for a failure's message.
pub fn console_tail(console: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = console.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

/// The labels a verification puts on the image: its status, and on a pass the bill of
/// materials. Label keys are `bom-<what>` in GCE's alphabet.
pub fn labels(report: &Report) -> Vec<(String, String)> {
    let mut labels = vec![(
        STATUS.to_string(),
        if report.passed() { VERIFIED } else { FAILED }.to_string(),
    )];
    if report.passed() {
        for (what, version) in &report.versions {
            let key = label_value(&format!("{BOM_PREFIX}{what}")).replace('_', "-");
            labels.push((key, label_value(version)));
        }
    }
    labels
}

/// The image's labels after adding `new` to `existing`: one value per key, the new one winning.
/// Fails when that passes GCE's 64 labels, naming how many there would be.
pub fn merged_labels(
    existing: &BTreeMap<String, String>,
    new: &[(String, String)],
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut all = existing.clone();
    all.extend(new.iter().cloned());
    if all.len() > MAX_LABELS {
        bail!(
            "the image would carry {} labels, more than GCE's {MAX_LABELS}: report fewer versions from the checks script",
            all.len()
        );
    }
    Ok(all)
}

/// How an image's labels say its verification went, for `images`.
pub fn status_of(labels: &BTreeMap<String, String>) -> &'static str {
    match labels.get(STATUS).map(String::as_str) {
        Some(VERIFIED) => "verified",
        Some(FAILED) => "FAILED",
        _ => "never verified",
    }
}

/// Whether a label is one a verification puts on an image.
pub fn is_verification_label(key: &str) -> bool {
    key == STATUS || key.starts_with(BOM_PREFIX)
}

/// The few words `images` shows of a verification: its status and the workload manager's
/// version, `verified 23.11.4`.
pub fn summary(labels: &BTreeMap<String, String>, wm: &str) -> String {
    match labels.get(&format!("{BOM_PREFIX}{wm}")) {
        Some(version) if labels.get(STATUS).map(String::as_str) == Some(VERIFIED) => {
            format!("verified {}", from_label_value(version))
        }
        _ => status_of(labels).to_string(),
    }
}

/// The bill of materials of an image, from its labels: `(what, version)`.
pub fn bill_of_materials(labels: &BTreeMap<String, String>) -> Vec<(String, String)> {
    labels
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(BOM_PREFIX)?.to_string(), shown(k, v))))
        .collect()
}

/// A label value as the user reads it: versions get their dots back; task images stay as
/// they are, since their `_` may have been a `/` or a `:`.
fn shown(key: &str, value: &str) -> String {
    if key.ends_with("-image") {
        value.to_string()
    } else {
        from_label_value(value)
    }
}

/// What changed inside an image against the one it replaces: `slurm 23.11.4 -> 23.11.6;
/// launcher 3.3.0-0 -> 3.3.1-2`. Empty when neither carries a bill of materials.
pub fn bom_diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> String {
    let old: BTreeMap<String, String> = bill_of_materials(old).into_iter().collect();
    let new: BTreeMap<String, String> = bill_of_materials(new).into_iter().collect();
    let mut changes = Vec::new();
    for (what, version) in &new {
        match old.get(what) {
            Some(before) if before != version => {
                changes.push(format!("{what} {before} -> {version}"))
            }
            None if !old.is_empty() => changes.push(format!("{what} {version} (new)")),
            _ => {}
        }
    }
    for what in old.keys().filter(|k| !new.contains_key(*k)) {
        if !new.is_empty() {
            changes.push(format!("{what} gone"));
        }
    }
    changes.join("; ")
}

/// The part of the release commit message that says what changed inside the images, one
/// `wm: changes` line each; empty when nothing is known.
pub fn inside_section(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut text = "\nWhat changed inside the images (their bills of materials):\n".to_string();
    for line in lines {
        text.push_str(&format!("- {line}\n"));
    }
    text
}

/// A verification bound such as `20m`, `90s` or `1h`, in seconds.
pub fn parse_bound(text: &str) -> anyhow::Result<u64> {
    let accepted = "write a whole number of seconds, minutes or hours, such as `20m`";
    let trimmed = text.trim();
    let (number, scale) = match trimmed.char_indices().last() {
        Some((at, 's')) => (&trimmed[..at], 1),
        Some((at, 'm')) => (&trimmed[..at], 60),
        Some((at, 'h')) => (&trimmed[..at], 3600),
        _ => bail!("verify.timeout {text:?} has no unit: {accepted}"),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 && n * scale <= 24 * 3600 => Ok(n * scale),
        _ => bail!("verify.timeout {text:?} is not a duration from 1s to 24h: {accepted}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONSOLE: &str = "\
[    0.000000] Linux version 5.15.0-1057-gcp\r
Nov 30 09:00:01 vm google_metadata_script_runner[812]: startup-script: slurm-image-verify: ok slurm-daemons: slurmctld and slurmd enabled\r
Nov 30 09:00:01 vm google_metadata_script_runner[812]: startup-script: slurm-image-verify: FAIL enroot-cache: /srv/enroot/a+b+c.sqsh is missing\r
Nov 30 09:00:01 vm google_metadata_script_runner[812]: startup-script: slurm-image-verify: version slurm 23.11.4\r
Nov 30 09:00:01 vm google_metadata_script_runner[812]: startup-script: slurm-image-verify: version launcher 3.3.1-2\r
Nov 30 09:00:02 vm google_metadata_script_runner[812]: startup-script: slurm-image-verify: end\r
";

    #[test]
    fn a_verification_vm_has_the_name_its_image_label_gives_and_the_label() {
        let image = "det-environments-slurm-ci-1717047568";
        let vm = Vm::new(
            image,
            "us-central1-c",
            &Settings {
                timeout_s: 60,
                machine_type: "e2-medium".into(),
            },
        );
        let labels: BTreeMap<String, String> = vm.labels.iter().cloned().collect();
        assert!(is_vm(&vm.name, &labels));
        assert!(!is_vm("alice-box", &labels), "another name with the labels");
        let mut other = labels.clone();
        other.remove(VM_ROLE);
        assert!(!is_vm(&vm.name, &other), "the name without the label");
    }

    #[test]
    fn the_report_is_read_behind_the_guest_agents_prefix() {
        let report = Report::parse(CONSOLE);
        assert!(report.finished);
        assert_eq!(
            report.lines(),
            [
                "ok   slurm-daemons: slurmctld and slurmd enabled",
                "FAIL enroot-cache: /srv/enroot/a+b+c.sqsh is missing"
            ]
        );
        assert_eq!(
            report.versions,
            [
                ("slurm".to_string(), "23.11.4".to_string()),
                ("launcher".to_string(), "3.3.1-2".to_string())
            ]
        );
        assert!(!report.passed());
        let unfinished = Report::parse(&CONSOLE.replace("slurm-image-verify: end", ""));
        assert!(!unfinished.finished && !unfinished.passed());
        assert!(
            !Report::parse("slurm-image-verify: end\n").passed(),
            "no checks, no pass"
        );
    }

    #[test]
    fn a_pass_labels_the_image_verified_with_its_bill_of_materials() {
        let report = Report::parse(&CONSOLE.replace("FAIL enroot-cache", "ok enroot-cache"));
        assert!(report.passed());
        assert_eq!(
            labels(&report),
            [
                ("verification".to_string(), "verified".to_string()),
                ("bom-slurm".to_string(), "23_11_4".to_string()),
                ("bom-launcher".to_string(), "3_3_1-2".to_string()),
            ]
        );
        assert_eq!(
            labels(&Report::parse(CONSOLE)),
            [("verification".to_string(), "failed".to_string())]
        );
    }

    #[test]
    fn labels_merge_within_gces_limit() {
        let existing: BTreeMap<String, String> = [("launcher", "3_3_1-2"), ("bom-old", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let merged = merged_labels(&existing, &[("bom-old".into(), "2".into())]).unwrap();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged["bom-old"], "2", "the new value wins");
        let many: Vec<(String, String)> = (0..64).map(|i| (format!("k{i}"), "v".into())).collect();
        let err = merged_labels(&existing, &many).unwrap_err().to_string();
        assert!(err.contains("66 labels, more than GCE's 64"), "{err}");
    }

    #[test]
    fn the_bill_of_materials_diff_names_what_changed() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let old = labels(&[
            ("bom-slurm", "23_11_4"),
            ("bom-launcher", "3_3_0-0"),
            ("bom-kernel", "5_15"),
        ]);
        let new = labels(&[
            ("bom-slurm", "23_11_6"),
            ("bom-launcher", "3_3_1-2"),
            ("bom-kernel", "5_15"),
        ]);
        assert_eq!(
            bom_diff(&old, &new),
            "launcher 3.3.0-0 -> 3.3.1-2; slurm 23.11.4 -> 23.11.6"
        );
        assert_eq!(bom_diff(&old, &old), "");
        assert_eq!(bom_diff(&BTreeMap::new(), &new), "");
        assert_eq!(status_of(&new), "never verified");
        assert_eq!(status_of(&labels(&[("verification", "failed")])), "FAILED");
    }

    #[test]
    fn the_vm_carries_its_labels_and_a_fuse() {
        let settings = Settings {
            timeout_s: 1200,
            machine_type: "e2-medium".into(),
        };
        let vm = Vm::new(
            "det-environments-slurm-ci-1800000000",
            "us-central1-c",
            &settings,
        );
        assert_eq!(vm.name, "verify-det-environments-slurm-ci-1800000000");
        assert_eq!(vm.fuse_s, 1800);
        assert_eq!(
            vm.labels,
            [
                ("slurm-image".to_string(), "verification".to_string()),
                (
                    "verifies".to_string(),
                    "det-environments-slurm-ci-1800000000".to_string()
                )
            ]
        );
        let long = vm_name(&format!("a{}-b", "x".repeat(54)));
        assert!(long.len() <= 63 && !long.ends_with('-'), "{long}");
    }

    #[test]
    fn the_startup_script_starts_with_what_the_image_should_hold() {
        let expected = Expected {
            wm: WorkloadManager::Pbs,
            launcher: "3.3.1-2".into(),
            cpu_task_image: "determinedai/cpu:e960eae".into(),
            cuda_task_image: "it's".into(),
        };
        let script = startup_script(&expected, "#!/usr/bin/env bash\necho checks\n");
        assert_eq!(
            script,
            "#!/bin/bash\n# Written by cargo xtask slurm-image: what the image should hold.\n\
             VERIFY_WORKLOAD_MANAGER='pbs'\nVERIFY_LAUNCHER_VERSION='3.3.1-2'\n\
             VERIFY_CPU_TASK_IMAGE='determinedai/cpu:e960eae'\nVERIFY_CUDA_TASK_IMAGE='it'\\''s'\n\
             echo checks\n"
        );
    }

    #[test]
    fn bounds_take_seconds_minutes_or_hours() {
        assert_eq!(parse_bound("20m").unwrap(), 1200);
        assert_eq!(parse_bound(" 45s ").unwrap(), 45);
        assert_eq!(parse_bound("1h").unwrap(), 3600);
        for bad in ["", "20", "0m", "25h", "m", "1.5m", "-1s"] {
            assert!(parse_bound(bad).is_err(), "{bad:?}");
        }
        assert_eq!(console_tail("a\n\nb\r\nc\n", 2), ["b", "c"]);
    }
}
