//! The verification of an image before its pin: a short-lived VM boots it, the team's checks
//! script runs at boot, its report is read from the serial console, the VM is deleted in every
//! case, and the image is labelled verified or failed with its bill of materials.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::edges::compute::Compute;
use crate::edges::packer::Output;
use crate::host::{write_state_file, HostTree};
use crate::model::config::{Config, DEFAULT_VERIFY_SCRIPT};
use crate::model::image::{Image, Verification};
use crate::model::launcher_version::LauncherPackage;
use crate::model::provenance::{self, from_label_value};
use crate::model::records::{CheckRecord, Progress, Record};
use crate::model::template::Template;
use crate::model::time::format_duration;
use crate::model::verification::{
    self, bom_diff, check_line, console_tail, merged_labels, startup_script, Console, Expected,
    Nonce, Report, Settings, Shortfall, Verified, Vm, RANDOM_BYTES,
};
use crate::model::WorkloadManager;
use crate::steps::build::Plan;
use crate::term::{signal_name, InterruptGuard, Interrupted, StatusLine};

/// How many lines of the VM's console a failure shows.
const CONSOLE_TAIL: usize = 15;

/// Whether new images are verified before their pin, and how.
#[derive(Clone)]
pub enum Gate {
    Verify(Setup),
    /// Pinned unverified; the reason is said at the pin.
    Skip(String),
}

/// Everything a verification needs that does not depend on the image.
#[derive(Clone)]
pub struct Setup {
    /// The checks script as the user names it, and its text.
    pub script: String,
    pub checks: String,
    pub zone: String,
    pub settings: Settings,
    pub cpu_task_image: String,
    pub cuda_task_image: String,
}

impl Gate {
    /// The gate of a build or a release. A checks script the config names must exist; the
    /// default one may be missing (a template adopted as it is), and then every pin says it is
    /// unverified and how to add the checks.
    pub fn read(
        host: &HostTree,
        config: &Config,
        template: &Template,
        no_verify: bool,
    ) -> anyhow::Result<Gate> {
        if no_verify {
            return Ok(Gate::Skip(
                "--no-verify: the image was not booted or checked".to_string(),
            ));
        }
        let path = host.packer_dir.join(config.verify.script());
        let shown = host.show(&path);
        let checks = match std::fs::read_to_string(&path) {
            Ok(checks) => checks,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && config.verify.script.is_none() => {
                return Ok(Gate::Skip(format!(
                    "there is no checks script at {shown}: add one (this tool's repository has a default \
                     {DEFAULT_VERIFY_SCRIPT} in tools/slurm/packer/) so that images are booted and checked before \
                     their pin"
                )))
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "reading the checks script {shown} (verify.script in {}): add it, fix the name, or build \
                         with --no-verify to pin unverified",
                        host.show(&host.config_file)
                    )
                })
            }
        };
        Ok(Gate::Verify(Setup {
            script: shown,
            checks,
            zone: template
                .zones
                .iter()
                .next()
                .cloned()
                .unwrap_or_else(|| config.verify.zone.clone()),
            settings: config.verify.settings()?,
            cpu_task_image: config.image.cpu_task_image.clone(),
            cuda_task_image: config.image.cuda_task_image.clone(),
        }))
    }

    /// What a dry run shows of the step.
    pub fn preview(&self, project: &str, image: &str, tag: &str) -> String {
        match self {
            Gate::Skip(why) => {
                format!("# {tag}then no verification: the pin would be unverified ({why})")
            }
            Gate::Verify(setup) => {
                let vm = Vm::new(image, "<random>", &setup.zone, &setup.settings);
                format!(
                    "# {tag}then verify it before the pin: boot {} ({}, {}, project {project}, no external address, \
                     deleted by GCE after {} s at the latest), run {} at boot, wait at most {} s for its report, \
                     delete the VM, label the image",
                    vm.name,
                    vm.machine_type,
                    vm.zone,
                    vm.fuse_s,
                    setup.script,
                    setup.settings.timeout_s
                )
            }
        }
    }
}

impl Setup {
    pub fn expected(&self, wm: WorkloadManager, launcher: &str) -> Expected {
        Expected {
            wm,
            launcher: launcher.to_string(),
            cpu_task_image: self.cpu_task_image.clone(),
            cuda_task_image: self.cuda_task_image.clone(),
        }
    }
}

/// The step between packer (or the choice to reuse an image) and the pin. Returns when
/// `image` may be pinned, with what changed inside it against `replaced` (the image pinned
/// before) when both have a bill of materials, and whether a VM booted it; otherwise an error
/// that names the failed checks and the commands to verify again or pin anyway. A reused
/// image already verified is not booted again; one that failed, or was never verified, is.
pub fn before_pin(
    host: &HostTree,
    gcloud: &dyn Compute,
    gate: &Gate,
    plan: &Plan,
    new: &New<'_>,
    replaced: Option<&str>,
    output: Output<'_>,
) -> anyhow::Result<Checked> {
    let image = new.image;
    let setup = match gate {
        Gate::Skip(why) => {
            output.say(&format!("pinning {image} unverified: {why}"));
            return Ok(Checked::not_booted(Verified::Skipped(why.clone())));
        }
        Gate::Verify(setup) => setup,
    };
    if let Some(signal) = new.interrupted {
        return Err(Interrupted::error(
            signal,
            format!(
                "{} arrived as packer finished: {image} is built but neither verified nor pinned; \
                 to verify and pin it: {}",
                signal_name(signal),
                verify_command(image, "--pin")
            ),
        ));
    }
    // A reused image was listed moments ago, with its labels; a new one carries only what
    // packer and the build gave it, which the labelling reads before it adds to them.
    let mut existing = None;
    if new.reused {
        let labels = match new.listed.and_then(|listed| labels_in(listed, image)) {
            Some(labels) => labels,
            None => gcloud.describe_image(image)?.labels,
        };
        if Verification::of(&labels) == Verification::Verified {
            output.say(&format!(
                "{image} was verified when it was built: not booting it again"
            ));
            return Ok(Checked::not_booted(Verified::Earlier));
        }
        output.say(&format!(
            "{image} is {}: verifying it before it is pinned again",
            Verification::of(&labels)
        ));
        existing = Some(labels);
    }
    let launcher = plan
        .variables
        .text("launcher_deb_name")
        .and_then(LauncherPackage::from_file_name)
        .map(|p| p.version.to_string())
        .context("the build's variables name no launcher package to check the image for")?;
    let expected = setup.expected(plan.wm, &launcher);
    let outcome = verify(host, gcloud, setup, image, &expected, existing, output)?;
    if !outcome.report.passed() {
        return Err(Failed::new(image, &outcome).into());
    }
    output.say(&format!("verified {image}: every check passed"));
    let mut checked = Checked {
        inside: None,
        booted: true,
        verified: Verified::Passed(outcome.report.checks.clone()),
    };
    let Some(replaced) = replaced.filter(|r| *r != image) else {
        return Ok(checked);
    };
    // Only for the summary: a replaced image that cannot be read changes nothing.
    let before = match new.listed {
        // Not in the listing made moments ago: it does not exist.
        Some(listed) => labels_in(listed, replaced),
        None => gcloud
            .describe_image(replaced)
            .ok()
            .map(|before| before.labels),
    };
    let Some(before) = before else {
        return Ok(checked);
    };
    let diff = bom_diff(&before, &outcome.labels);
    if diff.is_empty() {
        return Ok(checked);
    }
    output.print(&format!("inside {image}, against {replaced}: {diff}"));
    checked.inside = Some(diff);
    Ok(checked)
}

/// The labels of the image named `name` in a listing, when it is there.
fn labels_in(listed: &[Image], name: &str) -> Option<BTreeMap<String, String>> {
    listed
        .iter()
        .find(|listed| listed.name == name)
        .map(|listed| listed.labels.clone())
}

/// The image a build is about to pin.
pub struct New<'a> {
    pub image: &'a str,
    /// Made by an earlier build from the same inputs, not by packer now.
    pub reused: bool,
    /// A signal that arrived as packer finished.
    pub interrupted: Option<i32>,
    /// The project's images as this run listed them moments before (under the build lock,
    /// with nothing built since): the labels of the image and of the one it replaces are read
    /// from it, not asked for again. `None` after a packer run, which takes long enough for
    /// them to change.
    pub listed: Option<&'a [Image]>,
}

/// What the step before the pin found.
pub struct Checked {
    /// What changed inside the image against the one it replaced: `slurm 23.11.4 -> 23.11.6`.
    pub inside: Option<String>,
    /// A VM booted the image to verify it, which relabelled it.
    pub booted: bool,
    pub verified: Verified,
}

impl Checked {
    fn not_booted(verified: Verified) -> Checked {
        Checked {
            inside: None,
            booted: false,
            verified,
        }
    }
}

/// What a verification found.
pub struct Outcome {
    pub report: Report,
    pub console: String,
    /// The bound ran out before the script said `end`.
    pub timed_out: bool,
    /// The image's labels after the verification.
    pub labels: BTreeMap<String, String>,
}

/// Boots `image`, waits for the checks' report within the bound, deletes the VM whatever
/// happens, and labels the image. A signal ends the wait; the VM is deleted and the error says
/// the signal. `existing` is the image's labels when the caller has just read them; else they
/// are read before the labelling.
pub fn verify(
    host: &HostTree,
    gcloud: &dyn Compute,
    setup: &Setup,
    image: &str,
    expected: &Expected,
    existing: Option<BTreeMap<String, String>>,
    output: Output<'_>,
) -> anyhow::Result<Outcome> {
    let (nonce, suffix) = verification::from_random(&random_bytes()?);
    let vm = Vm::new(image, &suffix, &setup.zone, &setup.settings);
    // Named after the run's VM, so that two verifications of one image at once each boot their
    // own script (and nonce).
    let script_file = host
        .state_dir_ready()?
        .join(format!("{}.startup-script.sh", vm.name));
    write_state_file(
        &script_file,
        startup_script(expected, &setup.checks, &nonce)?.as_bytes(),
    )?;
    // From here a signal is recorded, so that the VM is always deleted before the tool ends.
    let guard = InterruptGuard::new()?;
    output.say(&format!(
        "verifying {image}: booting {} ({}, {}) to run {}; its report is awaited for at most {} s",
        vm.name, vm.machine_type, vm.zone, setup.script, setup.settings.timeout_s
    ));
    let started = Instant::now();
    let created = gcloud.create_instance(&vm, &script_file);
    let waited = match created {
        Ok(()) => wait_for_report(
            gcloud,
            &vm,
            expected.wm,
            &nonce,
            &setup.settings,
            &guard,
            started,
            output,
        ),
        Err(err) => Err(err.context(format!("creating the verification VM {}", vm.name))),
    };
    // In every case, also when the create failed part-way: a VM that does not exist is fine.
    delete_vm(gcloud, &vm, output);
    let took = started.elapsed().as_secs();
    output.say(&format!("verification: {}", format_duration(took)));
    crate::output::record(&Record::Progress(Progress {
        workload_manager: Some(expected.wm),
        phase: "verification",
        seconds: took,
    }));
    // Its nonce is of no use once the VM is gone; a file per run is not kept to pile up.
    let _ = std::fs::remove_file(&script_file);
    if let Some(signal) = guard.received() {
        return Err(Interrupted::error(
            signal,
            format!(
                "verification of {image} interrupted by {}: the verification VM {} was deleted; the image's \
                 labels are unchanged{} and it is not pinned; to verify it again: {}",
                signal_name(signal),
                vm.name,
                labels_left(existing.as_ref()),
                verify_command(image, "--pin")
            ),
        ));
    }
    let (console, timed_out) = waited?;
    let report = Report::read(&console, &nonce);
    let labels = label(gcloud, image, existing, &report, output)?;
    Ok(Outcome {
        report,
        console: console.text,
        timed_out,
        labels,
    })
}

/// Random bytes from the kernel, for a run's nonce and its VM's name.
fn random_bytes() -> anyhow::Result<[u8; RANDOM_BYTES]> {
    let mut bytes = [0; RANDOM_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut bytes))
        .context("reading /dev/urandom for the verification's nonce")?;
    Ok(bytes)
}

/// What an interrupted verification leaves on the image, as far as its labels were read: an
/// earlier run's verdict stays.
fn labels_left(existing: Option<&BTreeMap<String, String>>) -> String {
    match existing.map(|labels| labels.get(verification::STATUS)) {
        Some(Some(status)) => format!(
            " (it still carries {}={status} from an earlier verification)",
            verification::STATUS
        ),
        Some(None) => " (it carries no verification label)".to_string(),
        None => String::new(),
    }
}

/// Reads the console until the wrapper says `end`, the bound runs out or a signal comes: the
/// console read so far and whether the bound ran out.
#[allow(clippy::too_many_arguments)] // Each is the wait's own; a struct would only rename them.
fn wait_for_report(
    gcloud: &dyn Compute,
    vm: &Vm,
    wm: WorkloadManager,
    nonce: &Nonce,
    settings: &Settings,
    guard: &InterruptGuard,
    started: Instant,
    output: Output<'_>,
) -> anyhow::Result<(Console, bool)> {
    let bound = Duration::from_secs(settings.timeout_s);
    // Often enough to answer soon, seldom enough to cost little: the pause between reads starts
    // at a quarter second (a report already written is read at once, not a second late) and
    // doubles up to a 120th of the bound, between 1 and 10 s. A VM that takes a minute to boot
    // costs two reads more than a start at a second would.
    let longest = (bound / 120).clamp(Duration::from_secs(1), Duration::from_secs(10));
    let mut interval = Duration::from_millis(250);
    let mut console = Console::default();
    let mut shown = 0;
    // Said once here, then on a terminal as one line redrawn in place, and in a log at most
    // once a minute: a CI log of a 20-minute wait stays short.
    output.say(&format!(
        "  waiting for the checks' report: reading the console of {} every few seconds",
        vm.name
    ));
    let mut status = StatusLine::new(matches!(output, Output::Inherit));
    let mut said_waiting = Instant::now();
    let mut said_unreadable = false;
    loop {
        if guard.received().is_some() {
            return Ok((console, false));
        }
        let asked = console.next;
        match gcloud.serial_output(&vm.zone, &vm.name, asked) {
            Ok(piece) => console.append(asked, piece.start, &piece.contents, piece.next),
            // A VM still starting has no console yet; a real fault shows as a time-out.
            Err(err) if guard.received().is_none() => {
                if !said_unreadable {
                    said_unreadable = true;
                    status.clear();
                    output.say(&format!(
                        "  the console is not readable yet ({err:#}); trying again"
                    ));
                }
            }
            Err(_) => return Ok((console, false)),
        }
        let report = Report::read(&console, nonce);
        for check in &report.checks[shown..] {
            status.clear();
            output.say(&format!("  {}", check_line(check)));
            crate::output::record(&Record::Check(CheckRecord {
                workload_manager: Some(wm),
                image: vm.image.clone(),
                name: check.name.clone(),
                ok: check.ok,
                detail: check.detail.clone(),
            }));
        }
        shown = report.checks.len();
        if report.finished() {
            return Ok((console, false));
        }
        if started.elapsed() >= bound {
            return Ok((console, true));
        }
        let progress = format!(
            "  still waiting for the checks on {}: {} checks reported, {} s of at most {} s",
            vm.name,
            shown,
            started.elapsed().as_secs(),
            settings.timeout_s
        );
        if status.updates_in_place() {
            status.show(&progress);
        } else if said_waiting.elapsed() >= Duration::from_secs(60) {
            said_waiting = Instant::now();
            output.say(&progress);
        }
        let pause = Instant::now();
        while pause.elapsed() < interval && guard.received().is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        interval = (interval * 2).min(longest);
    }
}

/// Deletes the verification VM, saying so; a failure is a warning with the command that
/// finishes the job, since GCE's fuse deletes it in any case.
fn delete_vm(gcloud: &dyn Compute, vm: &Vm, output: Output<'_>) {
    output.say(&format!("deleting the verification VM {}", vm.name));
    if let Err(err) = gcloud.delete_instances(&vm.zone, std::slice::from_ref(&vm.name)) {
        if format!("{err:#}").contains("was not found") {
            return;
        }
        output.say(&format!(
            "warning: deleting the verification VM {} failed ({err:#}): GCE deletes it {} s after it started; \
             to delete it now: gcloud compute instances delete {} --zone={} --project={}",
            vm.name,
            vm.fuse_s,
            vm.name,
            vm.zone,
            gcloud.project()
        ));
    }
}

/// Labels the image with how its verification went and what it contains; its labels after.
fn label(
    gcloud: &dyn Compute,
    image: &str,
    existing: Option<BTreeMap<String, String>>,
    report: &Report,
    output: Output<'_>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let labels = verification::labels(report);
    let existing = match existing {
        Some(existing) => existing,
        None => gcloud.describe_image(image)?.labels,
    };
    let merged = merged_labels(&existing, &labels)?;
    gcloud
        .add_image_labels(image, &labels)
        .with_context(|| format!("labelling {image} with its verification"))?;
    output.say(&format!(
        "labelled {image}: {}",
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(merged)
}

/// An image that packer built and that then failed its verification: a release says so
/// instead of pointing at packer's log. What failed and what to do next are kept apart, so a
/// release can name its own next step (`release --redo`) instead of `verify`'s.
#[derive(Debug)]
pub struct Failed {
    /// Each failed check and the console's tail.
    pub report: String,
    /// The `verify` commands that finish the job by hand.
    pub next: String,
}

impl Failed {
    pub fn new(image: &str, outcome: &Outcome) -> Failed {
        Failed {
            report: failure(image, outcome),
            next: format!(
                "to verify it again (and pin it if it passes): {}\nto pin it anyway: \
                 cargo xtask slurm-image pin {image} --unverified",
                verify_command(image, "--pin"),
            ),
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{}", self.report, self.next)
    }
}

impl std::error::Error for Failed {}

/// The failed verification `err` is, or was caused by.
pub fn failed(err: &anyhow::Error) -> Option<&Failed> {
    err.chain().find_map(|cause| cause.downcast_ref::<Failed>())
}

/// What a failed verification found: each failed check and the console's tail.
fn failure(image: &str, outcome: &Outcome) -> String {
    let mut text = if outcome.timed_out {
        format!(
            "the verification of {image} timed out: the checks did not report their end within the bound \
             (verify.timeout)"
        )
    } else {
        format!("{image} failed its verification")
    };
    let mut reasons: Vec<String> = outcome
        .report
        .failed()
        .iter()
        .map(|c| format!("{} ({})", c.name, c.detail))
        .collect();
    match outcome.report.shortfall() {
        // A time-out says so already.
        None | Some(Shortfall::Unfinished) => {}
        Some(shortfall) => reasons.push(shortfall.to_string()),
    }
    if !reasons.is_empty() {
        text.push_str(&format!(": {}", reasons.join("; ")));
    }
    text.push_str(&format!(
        "; it is labelled {}={}, and its line in images.conf is unchanged\n\
         the last lines of the VM's console:",
        verification::STATUS,
        verification::FAILED
    ));
    for line in console_tail(&outcome.console, CONSOLE_TAIL) {
        text.push_str(&format!("\n  | {line}"));
    }
    text
}

fn verify_command(image: &str, flag: &str) -> String {
    format!("cargo xtask slurm-image verify {image} {flag}")
}

/// Checks the checks script's syntax with `bash -n`, which runs nothing.
pub fn check_syntax(path: &std::path::Path) -> anyhow::Result<()> {
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running `bash -n` (is bash installed?)")?;
    if !out.status.success() {
        bail!(
            "`bash -n {}` fails: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The workload manager of one of this tool's images, from its labels or its name.
pub fn workload_manager_of(
    name: &str,
    labels: &BTreeMap<String, String>,
) -> anyhow::Result<WorkloadManager> {
    labels
        .get(provenance::WORKLOAD_MANAGER)
        .map(String::as_str)
        .or_else(|| {
            WorkloadManager::ALL
                .iter()
                .map(|wm| wm.key())
                .find(|key| name.starts_with(&format!("det-environments-{key}-ci-")))
        })
        .and_then(|key| WorkloadManager::ALL.into_iter().find(|wm| wm.key() == key))
        .with_context(|| {
            format!(
                "{name} carries no workload-manager label and its name names none: it is not an image this tool built"
            )
        })
}

/// What `image` should hold, from its name, labels and description: the workload manager and
/// the launcher version it was baked with.
pub fn expected_of(
    setup: &Setup,
    name: &str,
    labels: &BTreeMap<String, String>,
    description: Option<&str>,
) -> anyhow::Result<Expected> {
    let wm = workload_manager_of(name, labels)?;
    let launcher = description
        .and_then(|d| d.split_whitespace().last())
        .and_then(LauncherPackage::from_file_name)
        .map(|p| p.version.to_string())
        .or_else(|| labels.get(provenance::LAUNCHER).map(|v| from_label_value(v)))
        .with_context(|| {
            format!(
                "{name} names no launcher package in its description or labels: the checks cannot know which \
                 version to expect"
            )
        })?;
    Ok(setup.expected(wm, &launcher))
}
