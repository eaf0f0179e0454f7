//! The verification of an image, pure: the VM it boots, the startup script it runs, the checks'
//! report read from the serial console, the labels it leaves and the bill of materials.
//!
//! The team's checks script prints one line per finding behind [`MARKER`]:
//!
//! ```text
//! slurm-image-verify: ok launcher: hpe-hpc-launcher 3.3.1-2 installed, launcher.service enabled
//! slurm-image-verify: FAIL enroot-cache: /srv/enroot/x+y+z.sqsh is missing
//! slurm-image-verify: version slurm 23.11.4
//! slurm-image-verify: end
//! ```
//!
//! Anything on the image can write to the serial console, and a check's own output can hold any
//! text, so those lines are not read from the console as they are. The startup script is a
//! wrapper the tool writes: it runs the team's script as a child, passes on each finding
//! numbered and tagged with a nonce only this run knows, escapes every other line, and ends
//! with how many findings it passed on. Only tagged lines count, behind the guest agent's own
//! prefix (`google_metadata_script_runner[PID]: startup-script: `):
//!
//! ```text
//! slurm-image-verify[5f0c…] 0: begin
//! slurm-image-verify[5f0c…] 1: ok launcher: hpe-hpc-launcher 3.3.1-2 installed, launcher.service enabled
//! slurm-image-verify[5f0c…] 2: version slurm 23.11.4
//! slurm-image-verify[5f0c…] 3: end lines=2 status=0 script-end=yes
//! ```

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;

use crate::model::hex;
use crate::model::image::Verification;
use crate::model::provenance::{from_label_value, label_value};
use crate::model::WorkloadManager;

/// What the team's checks script writes before each line of its report.
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

/// How many random bytes a verification run takes: [`Nonce::BYTES`] for its nonce, then
/// [`SUFFIX_BYTES`] for its VM's name.
pub const RANDOM_BYTES: usize = Nonce::BYTES + SUFFIX_BYTES;
/// The random part of a VM's name, in bytes (twice as many hex digits): two verifications of
/// one image at once get VMs of their own.
const SUFFIX_BYTES: usize = 4;
/// GCE's longest VM name.
const MAX_VM_NAME: usize = 63;
/// How many characters of one console line, check or detail the user is shown.
pub const SHOWN_CHARS: usize = 300;

/// The secret of one verification: only console lines that carry it are the report. Made by
/// the tool from random bytes and written only into the wrapper, where it stays a shell
/// variable, so neither a service on the image nor the team's script can print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    pub const BYTES: usize = 16;

    pub fn from_bytes(bytes: &[u8; Nonce::BYTES]) -> Nonce {
        Nonce(hex(bytes))
    }

    /// What starts each line the wrapper passes on: `slurm-image-verify[<nonce>]`.
    fn tag(&self) -> String {
        format!("slurm-image-verify[{}]", self.0)
    }
}

/// The randomness of one verification run, split: its nonce and its VM's name suffix.
pub fn from_random(bytes: &[u8; RANDOM_BYTES]) -> (Nonce, String) {
    let (nonce, suffix) = bytes.split_at(Nonce::BYTES);
    let nonce: &[u8; Nonce::BYTES] = nonce.try_into().expect("split at Nonce::BYTES");
    (Nonce::from_bytes(nonce), hex(suffix))
}

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
    /// The VM of one verification of `image`; `suffix` is the run's own (random) part of its
    /// name, so that a second verification of the image at once does not meet this one's VM.
    pub fn new(image: &str, suffix: &str, zone: &str, settings: &Settings) -> Vm {
        Vm {
            name: vm_name(image, suffix),
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
/// label, and a name [`Vm::new`] gives for the image its other label names (with a random
/// suffix of the length it gives). Both, since anyone can copy a label onto a VM of their own.
pub fn is_vm(name: &str, labels: &BTreeMap<String, String>) -> bool {
    labels.get(VM_ROLE).map(String::as_str) == Some(VM_ROLE_VALUE)
        && labels.get(VM_IMAGE).is_some_and(|image| {
            name.strip_prefix(&vm_name_stem(image))
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|suffix| {
                    suffix.len() == 2 * SUFFIX_BYTES
                        && suffix
                            .chars()
                            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                })
        })
}

/// `verify-<image>-<suffix>`, the image's part cut so that the whole fits GCE's 63 characters,
/// without a dash doubled where the cut falls.
pub fn vm_name(image: &str, suffix: &str) -> String {
    format!("{}-{suffix}", vm_name_stem(image))
}

fn vm_name_stem(image: &str) -> String {
    let mut stem = format!("verify-{image}");
    stem.truncate(MAX_VM_NAME - 1 - 2 * SUFFIX_BYTES);
    stem.trim_end_matches('-').to_string()
}

/// What the image should hold, handed to the checks script as environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub wm: WorkloadManager,
    /// The launcher version baked in, `3.3.1-2`.
    pub launcher: String,
    pub cpu_task_image: String,
    pub cuda_task_image: String,
}

/// The startup script: a wrapper that exports what the image should hold, runs the team's
/// script (`checks`, carried in a quoted heredoc whose delimiter holds the nonce) as a child,
/// passes on its findings numbered and tagged with the nonce, escapes every other line it
/// prints (`printf %q`), and ends the report itself with the number of findings passed on,
/// the script's exit status and whether it said its own `end`.
///
/// Fails only when the team's script holds the heredoc's delimiter, which it cannot without
/// knowing the nonce.
pub fn startup_script(expected: &Expected, checks: &str, nonce: &Nonce) -> anyhow::Result<String> {
    let delimiter = format!("END_OF_CHECKS_{}", nonce.0);
    if checks.lines().any(|line| line == delimiter) {
        bail!("the checks script holds the line {delimiter}: verify again, with a new nonce");
    }
    let newline = if checks.ends_with('\n') { "" } else { "\n" };
    let tag = nonce.tag();
    Ok(format!(
        r#"#!/bin/bash
# Written by cargo xtask slurm-image for one verification: it runs the team's checks script
# (below) as a child with what the image should hold in its environment, passes on each finding
# numbered and tagged with this run's nonce, escapes everything else the checks print, and ends
# the report itself. The tag is a variable of this shell alone: it is not exported.
export VERIFY_WORKLOAD_MANAGER={wm}
export VERIFY_LAUNCHER_VERSION={launcher}
export VERIFY_CPU_TASK_IMAGE={cpu}
export VERIFY_CUDA_TASK_IMAGE={cuda}
tag='{tag}'
checks=$(mktemp) || {{ echo "$tag 0: begin"; echo "$tag 1: end lines=0 status=mktemp-failed script-end=no"; exit 1; }}
cat > "$checks" <<'{delimiter}'
{checks}{newline}{delimiter}
seq=0
script_end=no
echo "$tag 0: begin"
while IFS= read -r line || [ -n "$line" ]; do
  line=${{line%$'\r'}}
  case $line in
    '{MARKER}ok '* | '{MARKER}FAIL '* | '{MARKER}version '*)
      seq=$((seq + 1))
      said=${{line#'{MARKER}'}}
      printf '%s %s: %s\n' "$tag" "$seq" "${{said//[[:cntrl:]]/?}}"
      ;;
    '{MARKER}end') script_end=yes; printf '%q\n' "$line" ;;
    *) printf '%q\n' "$line" ;;
  esac
done < <(bash "$checks" < /dev/null 2>&1)
wait "$!"
status=$?
rm -f "$checks"
echo "$tag $((seq + 1)): end lines=$seq status=$status script-end=$script_end"
"#,
        wm = shell_quote(expected.wm.key()),
        launcher = shell_quote(&expected.launcher),
        cpu = shell_quote(&expected.cpu_task_image),
        cuda = shell_quote(&expected.cuda_task_image),
    ))
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

/// What became of an image's verification before its pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// This run booted it and every check passed: the checks, in the order they came.
    Passed(Vec<Check>),
    /// Reused, and verified when it was built: not booted again.
    Earlier,
    /// Pinned unverified, and why (`--no-verify`, no checks script).
    Skipped(String),
}

impl Verified {
    /// One line for a summary: `verified (12 checks passed)`.
    pub fn summary(&self) -> String {
        match self {
            Verified::Passed(checks) => format!("verified ({} checks passed)", checks.len()),
            Verified::Earlier => {
                "verified when it was built (reused, not booted again)".to_string()
            }
            Verified::Skipped(why) => format!("unverified: {why}"),
        }
    }
}

/// The serial console as read so far, and where it had dropped output the tool never read.
#[derive(Debug, Clone, Default)]
pub struct Console {
    pub text: String,
    /// The byte to ask for next.
    pub next: u64,
    /// `(offset in text, bytes)`: the console dropped these bytes (GCE keeps only its last
    /// 1 MiB) before the tool read them, between `text[..offset]` and `text[offset..]`.
    gaps: Vec<(usize, u64)>,
}

impl Console {
    /// Adds a piece read from `asked` on, that the API says starts at `start` and ends before
    /// `next`: a `start` beyond `asked` is output dropped unread.
    pub fn append(&mut self, asked: u64, start: u64, contents: &str, next: u64) {
        if start > asked {
            self.gaps.push((self.text.len(), start - asked));
        }
        self.text.push_str(contents);
        self.next = next.max(self.next);
    }
}

/// The wrapper's last line: nothing more will come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// How many findings the wrapper passed on, numbered 1 to this.
    pub lines: u64,
    /// The team's script's exit status, as the wrapper saw it.
    pub status: String,
    /// The team's script said its own `end`.
    pub script_end: bool,
}

/// Why a finished (or unfinished) report cannot pass, besides failed checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortfall {
    /// No end came.
    Unfinished,
    /// The console dropped output where the report was, or before its first line was read.
    Truncated { bytes: u64 },
    /// Findings the wrapper passed on that never reached the tool.
    Missing { lines: Vec<u64>, of: u64 },
    /// The team's script ended without its own `end`.
    StoppedEarly { status: String },
    /// The report holds no check.
    NoChecks,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shortfall::Unfinished => write!(f, "the checks did not report their end"),
            Shortfall::Truncated { bytes } => write!(
                f,
                "the VM's console dropped {bytes} bytes before the tool read them (GCE keeps its last 1 MiB), \
                 so the report may lack lines: find what floods the console (see its tail below) and verify again"
            ),
            Shortfall::Missing { lines, of } => write!(
                f,
                "{} of the {of} findings the checks reported never reached the console (number {}): verify again",
                lines.len(),
                lines
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Shortfall::StoppedEarly { status } => write!(
                f,
                "the checks script stopped before its `end` (exit status {status}): run it on a VM booted \
                 from the image to see where it stops"
            ),
            Shortfall::NoChecks => write!(f, "the checks script reported no check"),
        }
    }
}

/// What the checks reported so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
    /// `(what, version)`, in the order reported: the bill of materials.
    pub versions: Vec<(String, String)>,
    /// The wrapper's end, once read.
    pub end: Option<End>,
    /// Bytes the console dropped where they may have held the report.
    pub lost_bytes: u64,
    /// The numbers of the findings read.
    numbers: BTreeSet<u64>,
}

impl Report {
    /// Reads the report out of the console: only lines tagged with `nonce`, each number once,
    /// up to the end; everything else on the console is ignored.
    pub fn read(console: &Console, nonce: &Nonce) -> Report {
        let tag = nonce.tag();
        let mut report = Report::default();
        let mut begin = None;
        let mut end_at = None;
        let mut offset = 0;
        for line in console.text.split_inclusive('\n') {
            let at = offset;
            offset += line.len();
            if report.end.is_some() {
                break;
            }
            let Some((_, rest)) = line.split_once(&tag) else {
                continue;
            };
            let Some((number, said)) = rest.strip_prefix(' ').and_then(|r| r.split_once(": "))
            else {
                continue;
            };
            let Ok(number) = number.parse::<u64>() else {
                continue;
            };
            let said = said.trim_end_matches(['\r', '\n']).trim();
            if number == 0 {
                if said == "begin" && begin.is_none() {
                    begin = Some(at);
                }
                continue;
            }
            if let Some(end) = said.strip_prefix("end ").and_then(parse_end) {
                report.end = Some(end);
                end_at = Some(offset);
                continue;
            }
            if !report.numbers.insert(number) {
                continue;
            }
            report.take(said);
        }
        // Output dropped before the wrapper's first line cost the report nothing; dropped after
        // it, or with that line never read, it may have.
        report.lost_bytes = console
            .gaps
            .iter()
            .filter(|(at, _)| {
                end_at.is_none_or(|end| *at < end) && begin.is_none_or(|begin| *at > begin)
            })
            .map(|(_, bytes)| bytes)
            .sum();
        report
    }

    /// One finding the wrapper passed on: `ok NAME: detail`, `FAIL NAME: detail` or
    /// `version WHAT VERSION`, kept as the user may be shown it.
    fn take(&mut self, said: &str) {
        let (word, rest) = said.split_once(' ').unwrap_or((said, ""));
        match word {
            "ok" | "FAIL" => {
                let (name, detail) = rest.split_once(':').unwrap_or((rest, ""));
                self.checks.push(Check {
                    name: printable(name.trim()),
                    ok: word == "ok",
                    detail: printable(detail.trim()),
                });
            }
            "version" => {
                let (what, version) = rest.split_once(' ').unwrap_or((rest, ""));
                if !what.is_empty() && !version.trim().is_empty() {
                    self.versions
                        .push((printable(what), printable(version.trim())));
                }
            }
            _ => {}
        }
    }

    /// The wrapper said its end: nothing more will come.
    pub fn finished(&self) -> bool {
        self.end.is_some()
    }

    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.ok).collect()
    }

    /// Why the report cannot pass besides a failed check, if it cannot: in the order the user
    /// should look at them.
    pub fn shortfall(&self) -> Option<Shortfall> {
        if self.lost_bytes > 0 {
            return Some(Shortfall::Truncated {
                bytes: self.lost_bytes,
            });
        }
        let Some(end) = &self.end else {
            return Some(Shortfall::Unfinished);
        };
        let missing: Vec<u64> = (1..=end.lines)
            .filter(|n| !self.numbers.contains(n))
            .collect();
        if !missing.is_empty() {
            return Some(Shortfall::Missing {
                lines: missing,
                of: end.lines,
            });
        }
        if !end.script_end {
            return Some(Shortfall::StoppedEarly {
                status: end.status.clone(),
            });
        }
        if self.checks.is_empty() {
            return Some(Shortfall::NoChecks);
        }
        None
    }

    /// Whether the image passed: the whole report arrived, checked something and nothing failed.
    pub fn passed(&self) -> bool {
        self.shortfall().is_none() && self.failed().is_empty()
    }

    /// One line per check, as the user reads them (a verification says each as it arrives).
    #[cfg(test)]
    pub fn lines(&self) -> Vec<String> {
        self.checks.iter().map(check_line).collect()
    }
}

/// `lines=N status=S script-end=yes|no`, the wrapper's end.
fn parse_end(text: &str) -> Option<End> {
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for field in text.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        fields.insert(key, value);
    }
    Some(End {
        lines: fields.get("lines")?.parse().ok()?,
        status: printable(fields.get("status")?),
        script_end: *fields.get("script-end")? == "yes",
    })
}

pub fn check_line(check: &Check) -> String {
    format!(
        "{} {}: {}",
        if check.ok { "ok  " } else { "FAIL" },
        check.name,
        check.detail
    )
}

/// Console text as the user may be shown it: no control characters (a window title, a clear
/// screen, a colour would reach the user's terminal), none that reorders text, a tab a space,
/// cut to [`SHOWN_CHARS`] characters with how many more there were.
pub fn printable(text: &str) -> String {
    let mut shown = String::new();
    let mut count = 0;
    for c in text.chars() {
        let c = match c {
            '\t' => ' ',
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                continue
            }
            c => c,
        };
        if count < SHOWN_CHARS {
            shown.push(c);
        }
        count += 1;
    }
    if count > SHOWN_CHARS {
        shown.push_str(&format!("… ({} more characters)", count - SHOWN_CHARS));
    }
    shown
}

/// The last `n` lines of the console, for a failure's message, as the user may be shown them.
pub fn console_tail(console: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = console.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| printable(l.trim_end_matches('\r')))
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

/// Whether a label is one a verification puts on an image.
pub fn is_verification_label(key: &str) -> bool {
    key == STATUS || key.starts_with(BOM_PREFIX)
}

/// The few words `images` shows of a verification: its status and the workload manager's
/// version, `verified 23.11.4`.
pub fn summary(labels: &BTreeMap<String, String>, wm: &str) -> String {
    match labels.get(&format!("{BOM_PREFIX}{wm}")) {
        Some(version) if Verification::of(labels) == Verification::Verified => {
            format!("verified {}", from_label_value(version))
        }
        _ => Verification::of(labels).to_string(),
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

    const NONCE: [u8; Nonce::BYTES] = [7; Nonce::BYTES];
    const TAG: &str = "slurm-image-verify[07070707070707070707070707070707]";
    const AGENT: &str = "Nov 30 09:00:01 vm google_metadata_script_runner[812]: startup-script: ";

    fn nonce() -> Nonce {
        Nonce::from_bytes(&NONCE)
    }

    /// A console read in one piece, with nothing dropped.
    fn console(text: &str) -> Console {
        let mut console = Console::default();
        console.append(0, 0, text, text.len() as u64);
        console
    }

    /// The console of a run whose wrapper passed on `findings` and ended, behind the guest
    /// agent's prefix.
    fn reported(findings: &[&str]) -> String {
        let mut text =
            format!("[    0.000000] Linux version 5.15.0-1057-gcp\r\n{AGENT}{TAG} 0: begin\r\n");
        for (n, finding) in findings.iter().enumerate() {
            text.push_str(&format!("{AGENT}{TAG} {}: {finding}\r\n", n + 1));
        }
        text.push_str(&format!(
            "{AGENT}{TAG} {}: end lines={} status=0 script-end=yes\r\n",
            findings.len() + 1,
            findings.len()
        ));
        text
    }

    const FINDINGS: [&str; 4] = [
        "ok slurm-daemons: slurmctld and slurmd enabled",
        "FAIL enroot-cache: /srv/enroot/a+b+c.sqsh is missing",
        "version slurm 23.11.4",
        "version launcher 3.3.1-2",
    ];

    fn settings() -> Settings {
        Settings {
            timeout_s: 1200,
            machine_type: "e2-medium".into(),
        }
    }

    #[test]
    fn a_verification_vm_has_the_name_its_image_label_gives_with_a_random_suffix_and_the_label() {
        let image = "det-environments-slurm-ci-1717047568";
        let vm = Vm::new(image, "0a1b2c3d", "us-central1-c", &settings());
        assert_eq!(vm.name, format!("verify-{image}-0a1b2c3d"));
        let labels: BTreeMap<String, String> = vm.labels.iter().cloned().collect();
        assert!(is_vm(&vm.name, &labels));
        assert!(!is_vm("alice-box", &labels), "another name with the labels");
        for name in [
            format!("verify-{image}"),
            format!("verify-{image}-0a1b2c3"),
            format!("verify-{image}-0A1B2C3D"),
            format!("verify-{image}-0a1b2c3dx"),
            format!("verify-{image}-alice-box"),
        ] {
            assert!(!is_vm(&name, &labels), "{name}");
        }
        let mut other = labels.clone();
        other.remove(VM_ROLE);
        assert!(!is_vm(&vm.name, &other), "the name without the label");

        // Two runs' randomness gives two names and two nonces.
        let (nonce_a, suffix_a) = from_random(&[1; RANDOM_BYTES]);
        let (nonce_b, suffix_b) = from_random(&[2; RANDOM_BYTES]);
        assert_eq!(suffix_a, "01010101");
        assert!(suffix_a != suffix_b && nonce_a != nonce_b);
        assert!(!nonce_a.tag().contains(&suffix_b));

        // A long image name is cut to leave room for the suffix, within GCE's 63 characters.
        let long_image = format!("a{}-b", "x".repeat(60));
        let long = Vm::new(&long_image, "0a1b2c3d", "us-central1-c", &settings());
        assert!(
            long.name.len() <= 63 && long.name.ends_with("x-0a1b2c3d"),
            "{}",
            long.name
        );
        let labels: BTreeMap<String, String> = long.labels.iter().cloned().collect();
        assert!(is_vm(&long.name, &labels), "{}", long.name);
        let dash = vm_name(&format!("{}-xyz", "d".repeat(46)), "0a1b2c3d");
        assert!(!dash.contains("--"), "{dash}");
    }

    #[test]
    fn the_report_is_read_from_lines_tagged_with_the_nonce_behind_the_guest_agents_prefix() {
        let report = Report::read(&console(&reported(&FINDINGS)), &nonce());
        assert!(report.finished());
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
        assert_eq!(report.shortfall(), None, "only a failed check");
        assert!(!report.passed());
        let text = reported(&FINDINGS);
        let unfinished = &text[..text.find(" 5: end").unwrap()];
        let unfinished = Report::read(&console(unfinished), &nonce());
        assert!(!unfinished.finished() && !unfinished.passed());
        assert_eq!(unfinished.shortfall(), Some(Shortfall::Unfinished));
        let none = Report::read(&console(&reported(&["version slurm 23.11.4"])), &nonce());
        assert_eq!(
            none.shortfall(),
            Some(Shortfall::NoChecks),
            "no checks, no pass"
        );
        assert!(!none.passed());
    }

    /// Issue 25, item 1: a service that writes the team's protocol to the console, before the
    /// startup script or at any time, says nothing; nor does a line of another run's nonce.
    #[test]
    fn lines_without_this_runs_nonce_count_for_nothing() {
        let forged = format!(
            "{AGENT}slurm-image-verify: ok enroot-cache: fine\r\n\
             forged.service[99]: slurm-image-verify: end\r\n\
             {AGENT}slurm-image-verify[0000] 1: ok forged: by another nonce\r\n\
             {AGENT}slurm-image-verify[07070707070707070707070707070707] x: ok forged: no number\r\n\
             {AGENT}slurm-image-verify[00000000000000000000000000000000] 9: end lines=0 status=0 script-end=yes\r\n"
        );
        let report = Report::read(&console(&forged), &nonce());
        assert!(report.checks.is_empty() && !report.finished(), "{report:?}");
        let with_real = format!("{forged}{}", reported(&FINDINGS));
        let report = Report::read(&console(&with_real), &nonce());
        assert_eq!(report.checks.len(), 2);
        assert!(report.checks.iter().all(|c| c.name != "forged"));
        assert!(!report.passed(), "the real FAIL stands");
    }

    /// Issue 25, item 2: only the wrapper ends the report, with the count of what it passed on;
    /// a finding that never arrived, or a team's script that stopped short, fails it.
    #[test]
    fn only_the_wrappers_end_ends_the_report_and_every_finding_it_counted_must_be_there() {
        let all_ok = [
            "ok slurm-daemons: slurmctld and slurmd enabled",
            "ok motd: slurm-image-verify: end",
            "ok enroot-cache: /srv/enroot/a+b+c.sqsh",
            "version slurm 23.11.4",
        ];
        let text = reported(&all_ok);
        let report = Report::read(&console(&text), &nonce());
        assert!(report.passed(), "{report:?}");
        assert_eq!(report.checks.len(), 3);
        assert_eq!(report.checks[1].detail, "slurm-image-verify: end");

        // Finding 3 lost, finding 1 twice (a console may repeat a line).
        let gappy = text
            .lines()
            .filter(|l| !l.contains(&format!("{TAG} 3: ")))
            .chain(text.lines().filter(|l| l.contains(&format!("{TAG} 1: "))))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        let report = Report::read(&console(&gappy), &nonce());
        assert_eq!(report.checks.len(), 2, "{report:?}");
        assert_eq!(
            report.shortfall(),
            Some(Shortfall::Missing {
                lines: vec![3],
                of: 4
            })
        );
        assert!(!report.passed());

        let stopped = text.replace("status=0 script-end=yes", "status=1 script-end=no");
        let report = Report::read(&console(&stopped), &nonce());
        assert_eq!(
            report.shortfall(),
            Some(Shortfall::StoppedEarly { status: "1".into() })
        );
        let said = report.shortfall().unwrap().to_string();
        assert!(
            said.contains("stopped before its `end` (exit status 1)"),
            "{said}"
        );

        // Nothing after the end counts.
        let after = format!("{text}{AGENT}{TAG} 5: FAIL late: after the end\r\n");
        assert!(Report::read(&console(&after), &nonce()).passed());
    }

    /// Issue 25, item 3: output the console dropped unread fails the report unless it came
    /// before the wrapper's first line.
    #[test]
    fn output_the_console_dropped_where_the_report_was_fails_it() {
        let text = reported(&["ok a: 1", "ok b: 2"]);
        let (head, tail) = text.split_at(text.find(&format!("{TAG} 2: ")).unwrap());

        // Dropped between two reads after the begin: the report may lack a FAIL.
        let mut dropped = Console::default();
        dropped.append(0, 0, head, head.len() as u64);
        let asked = dropped.next;
        dropped.append(asked, asked + 4096, tail, asked + 4096 + tail.len() as u64);
        let report = Report::read(&dropped, &nonce());
        assert_eq!(
            report.shortfall(),
            Some(Shortfall::Truncated { bytes: 4096 })
        );
        let said = report.shortfall().unwrap().to_string();
        assert!(
            said.contains("dropped 4096 bytes") && said.contains("verify again"),
            "{said}"
        );
        assert!(!report.passed());

        // Dropped at the first read, with the begin still there after: boot noise only.
        let mut early = Console::default();
        early.append(0, 2_000_000, &text, 2_000_000 + text.len() as u64);
        assert!(Report::read(&early, &nonce()).passed());

        // Dropped with the begin: whatever the count says, lines may be gone.
        let without_begin = text
            .lines()
            .filter(|l| !l.contains(&format!("{TAG} 0: begin")))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
        let mut lost = Console::default();
        lost.append(0, 5, &without_begin, 5 + without_begin.len() as u64);
        assert_eq!(
            Report::read(&lost, &nonce()).shortfall(),
            Some(Shortfall::Truncated { bytes: 5 })
        );
    }

    /// Issue 25, item 5: what the user is shown of the console holds no control characters
    /// and no line of more than a few hundred characters.
    #[test]
    fn console_text_is_shown_without_control_characters_and_cut() {
        assert_eq!(
            printable("a\u{1b}]0;owned\u{7}b\u{1b}[2J\tc\u{9b}d\u{202e}e"),
            "a]0;ownedb[2J cde"
        );
        let long = "y".repeat(500_000);
        let shown = printable(&long);
        assert!(shown.starts_with(&"y".repeat(SHOWN_CHARS)), "{shown:.40}");
        assert!(shown.ends_with("… (499700 more characters)"), "{shown:.40}");
        assert!(shown.chars().count() < SHOWN_CHARS + 40);
        let tail = console_tail(&format!("a\n\nb\r\n\u{1b}[31mc\n{long}\n"), 2);
        assert_eq!(tail[0], "[31mc");
        assert!(tail[1].chars().count() < SHOWN_CHARS + 40);
        // Checks are read as they may be shown.
        let hostile = reported(&[&format!("FAIL x\u{1b}[2J: {long}")]);
        let report = Report::read(&console(&hostile), &nonce());
        assert_eq!(report.checks[0].name, "x[2J");
        assert!(report.checks[0].detail.chars().count() < SHOWN_CHARS + 40);
    }

    #[test]
    fn a_pass_labels_the_image_verified_with_its_bill_of_materials() {
        let passing = FINDINGS.map(|f| f.replace("FAIL enroot-cache", "ok enroot-cache"));
        let passing: Vec<&str> = passing.iter().map(String::as_str).collect();
        let report = Report::read(&console(&reported(&passing)), &nonce());
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
            labels(&Report::read(&console(&reported(&FINDINGS)), &nonce())),
            [("verification".to_string(), "failed".to_string())]
        );
    }

    #[test]
    fn the_vm_carries_its_labels_and_a_fuse() {
        let vm = Vm::new(
            "det-environments-slurm-ci-1800000000",
            "0a1b2c3d",
            "us-central1-c",
            &settings(),
        );
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
    }

    fn expected() -> Expected {
        Expected {
            wm: WorkloadManager::Pbs,
            launcher: "3.3.1-2".into(),
            cpu_task_image: "determinedai/cpu:e960eae".into(),
            cuda_task_image: "it's".into(),
        }
    }

    #[test]
    fn the_startup_script_exports_what_the_image_should_hold_and_carries_the_checks_in_a_quoted_heredoc(
    ) {
        let script =
            startup_script(&expected(), "#!/usr/bin/env bash\necho checks", &nonce()).unwrap();
        for part in [
            "export VERIFY_WORKLOAD_MANAGER='pbs'\n",
            "export VERIFY_LAUNCHER_VERSION='3.3.1-2'\n",
            "export VERIFY_CPU_TASK_IMAGE='determinedai/cpu:e960eae'\n",
            "export VERIFY_CUDA_TASK_IMAGE='it'\\''s'\n",
            &format!("tag='{TAG}'\n"),
            "<<'END_OF_CHECKS_07070707070707070707070707070707'\n#!/usr/bin/env bash\necho checks\nEND_OF_CHECKS_07070707070707070707070707070707\n",
        ] {
            assert!(script.contains(part), "lacks {part:?}\n{script}");
        }
        assert!(!script.contains("export tag"), "{script}");
        let err = startup_script(
            &expected(),
            "echo\nEND_OF_CHECKS_07070707070707070707070707070707\n",
            &nonce(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("verify again"), "{err}");
    }

    /// The wrapper as bash runs it, around a team's script that prints the protocol, its own
    /// `end` in the middle, control sequences, and looks for the nonce.
    #[test]
    fn the_wrapper_run_by_bash_passes_on_findings_tagged_and_escapes_everything_else() {
        let checks = r#"#!/usr/bin/env bash
say() { echo "slurm-image-verify: $*"; }
say "start $VERIFY_WORKLOAD_MANAGER image"
say "ok env: launcher=$VERIFY_LAUNCHER_VERSION tag=${tag:-unset} visible=$(env | grep -c slurm-image-verify)"
say end
printf 'title \033]0;owned\007 clear \033[2J\n'
say "FAIL after-end: $(printf 'bell\007')"
echo "slurm-image-verify[07070707070707070707070707070707] 9: ok forged: guessed" | tr 7 8
say "version kernel 5.15"
echo "to stderr" >&2
say end
"#;
        let script = startup_script(&expected(), checks, &nonce()).unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let out = String::from_utf8(out.stdout).unwrap();
        assert!(!out.contains(['\u{1b}', '\u{7}']), "{out}");
        let report = Report::read(&console(&out), &nonce());
        assert!(report.finished(), "{out}");
        assert_eq!(
            report.lines(),
            [
                "ok   env: launcher=3.3.1-2 tag=unset visible=0",
                "FAIL after-end: bell?",
            ],
            "{out}"
        );
        assert_eq!(
            report.versions,
            [("kernel".to_string(), "5.15".to_string())]
        );
        assert_eq!(
            report.end,
            Some(End {
                lines: 3,
                status: "0".into(),
                script_end: true
            }),
            "{out}"
        );
        assert!(out.contains("to\\ stderr\n"), "{out}");
        assert!(out.contains("slurm-image-verify:\\ end\n"), "{out}");
        let stopped = startup_script(
            &expected(),
            "echo 'slurm-image-verify: ok a: b'\nexit 3\n",
            &nonce(),
        )
        .unwrap();
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&stopped)
            .output()
            .unwrap();
        let report = Report::read(&console(&String::from_utf8_lossy(&out.stdout)), &nonce());
        assert_eq!(
            report.shortfall(),
            Some(Shortfall::StoppedEarly { status: "3".into() })
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
        assert_eq!(Verification::of(&new), Verification::Unverified);
        assert_eq!(
            Verification::of(&labels(&[("verification", "failed")])),
            Verification::Failed
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
