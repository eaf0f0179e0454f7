//! gcloud: the only module that runs it; every call reads `--format=json` with serde, and
//! every call has a deadline.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use xshell::{cmd, Cmd, Shell};

use crate::edges::compute::{last_segment, Cloud, Compute, Instance, SerialOutput};
use crate::model::image::Image;
use crate::model::verification::Vm;
use crate::model::{list_or_none, whole_number_setting};
use crate::term::{exit_interrupted, signal_name, Interrupted, Watch};

const INSTALL_HINT: &str =
    "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install";

/// How long a gcloud call that reads may take, in seconds: a setting for a slow network,
/// documented in the README and in the `--help` of the commands that call gcloud.
const TIMEOUT_VAR: &str = "SLURM_IMAGE_GCLOUD_TIMEOUT_S";
const DEFAULT_TIMEOUT_S: u64 = 60;
const MAX_TIMEOUT_S: u64 = 3600;
/// A delete waits until Google has finished it, and deleting VMs takes minutes: it may take
/// this many times as long as a read. Each of its requests still has the read's timeout.
const DELETE_TIMEOUT_FACTOR: u32 = 10;

/// gcloud has no account or no valid credentials: every call fails the same way, so a caller
/// that makes several says it once.
#[derive(Debug)]
pub struct NotLoggedIn {
    /// The gcloud command that failed.
    shown: String,
    /// gcloud's first sentence about it.
    said: String,
}

impl std::fmt::Display for NotLoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed: gcloud is not logged in: run `gcloud auth login` (gcloud said: {})",
            self.shown, self.said
        )
    }
}

impl std::error::Error for NotLoggedIn {}

/// Whether `err` (or a cause of it) is gcloud not being logged in.
pub fn is_not_logged_in(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<NotLoggedIn>())
}

/// For a line whose fix is already `gcloud auth login`: `not logged in (gcloud said: ...)`.
pub fn login_problem(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|e| e.downcast_ref::<NotLoggedIn>())
        .map(|e| format!("not logged in (gcloud said: {})", e.said))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInstance {
    name: String,
    zone: String,
    status: String,
    creation_timestamp: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// gcloud bound to one project.
pub struct Gcloud<'a> {
    sh: &'a Shell,
    project: String,
    /// The deadline of a call that reads, and of each HTTP request gcloud makes.
    timeout: Duration,
}

impl<'a> Gcloud<'a> {
    /// Fails at once, with how to install it, when there is no gcloud on PATH.
    pub fn new(sh: &'a Shell, project: &str) -> anyhow::Result<Gcloud<'a>> {
        let path = sh.var_os("PATH").unwrap_or_default();
        if !std::env::split_paths(&path).any(|dir| dir.join("gcloud").is_file()) {
            bail!("gcloud is not on PATH: {INSTALL_HINT}");
        }
        let seconds = whole_number_setting(
            TIMEOUT_VAR,
            sh.var(TIMEOUT_VAR).ok().as_deref(),
            DEFAULT_TIMEOUT_S,
            1..=MAX_TIMEOUT_S,
            "seconds",
        )?;
        Ok(Gcloud {
            sh,
            project: project.to_string(),
            timeout: Duration::from_secs(seconds),
        })
    }

    /// One `gcloud <args> --project=P --format=json`. Prompts are off: nothing may wait for
    /// an answer, and gcloud must not offer to enable an API (it would retry a 403 instead of
    /// reporting it). gcloud's own HTTP timeout is the read deadline, so that a delete, which
    /// may run longer, still gives up on a server that stops answering.
    fn command(&self, args: &[&str]) -> Cmd<'a> {
        let project = &self.project;
        cmd!(
            self.sh,
            "gcloud {args...} --project={project} --format=json"
        )
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_CORE_SHOULD_PROMPT_TO_ENABLE_API", "false")
        .env(
            "CLOUDSDK_CORE_HTTP_TIMEOUT",
            self.timeout.as_secs().to_string(),
        )
        .quiet()
        .ignore_status()
    }

    /// Runs gcloud for at most `deadline`, saying first what it waits for; its stdout when it
    /// succeeds, else its reason. gcloud left alone waits five minutes on a server that says
    /// nothing and then crashes, so past the deadline its process is killed. A list whose
    /// requests failed (no access to the project, an API error) still exits 0 with `[]` and
    /// only warns "Some requests did not succeed": that is a failure too, since an incomplete
    /// list would make prune count the newest images wrongly.
    fn run(&self, what: &str, args: &[&str], deadline: Duration) -> anyhow::Result<String> {
        self.run_saying(Some(what), args, deadline)
    }

    /// [`Gcloud::run`], saying `what` it waits for first unless it is `None`: a call repeated
    /// while a wait says its own progress (the console read every few seconds) says nothing.
    fn run_saying(
        &self,
        what: Option<&str>,
        args: &[&str],
        deadline: Duration,
    ) -> anyhow::Result<String> {
        let shown = format!("gcloud {}", args.join(" "));
        // A signal ends gcloud with the tool: left alone it would run on until its deadline.
        // Watched from before gcloud starts, so that no signal finds the tool unguarded.
        let watch = Watch::start()?;
        if let Some(what) = what {
            errln!(
                "gcloud: {what} in project {} (waiting at most {} s)",
                self.project,
                deadline.as_secs()
            );
        }
        let (mut child, call) = {
            // Under the lock, so that a tool ending on a signal meanwhile cannot miss it.
            let mut calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
            let child = Command::from(self.command(args))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("running {shown}: {INSTALL_HINT}"))?;
            calls.push(child.id());
            let call = Call(child.id());
            (child, call)
        };
        let stdout = read_to_end(child.stdout.take());
        let stderr = read_to_end(child.stderr.take());
        let started = Instant::now();
        let status = loop {
            let exited = child.try_wait().context("waiting for gcloud")?;
            // Looked at even when gcloud has exited: Ctrl-C at the terminal ends it too, and
            // that is the user's stop, not a failure of gcloud's.
            if let Some(signal) = watch.signal() {
                if exited.is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                let delete = if args.contains(&"delete") {
                    ": Google may still finish the delete it was asked for"
                } else {
                    ""
                };
                let message = format!("{shown} stopped by {}{delete}", signal_name(signal));
                if watch.only_waits() {
                    drop(call);
                    let _others = end_every_call();
                    exit_interrupted(signal, &message);
                }
                return Err(Interrupted::error(signal, message));
            }
            if let Some(status) = exited {
                break status;
            }
            if started.elapsed() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{}", self.no_answer(&shown, deadline));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The pipes close as gcloud exits; a process it left behind must not hold us up.
        let collect =
            |rx: Receiver<Vec<u8>>| rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        let (stdout, stderr) = (collect(stdout), collect(stderr));
        let stderr = String::from_utf8_lossy(&stderr);
        // gcloud can exit 0 with an `ERROR:` line and `[]`: an empty list that is not the truth.
        let reported_error = stderr.lines().any(|line| line.starts_with("ERROR:"));
        if status.success() && !reported_error && !stderr.contains("Some requests did not succeed")
        {
            return String::from_utf8(stdout)
                .with_context(|| format!("{shown} wrote output that is not UTF-8"));
        }
        if cause(&report(&stderr)) == Cause::NoAnswer {
            bail!(
                "{} (gcloud said: {})",
                self.no_answer(&shown, self.timeout),
                reason(&stderr)
            );
        }
        if cause(&report(&stderr)) == Cause::NotLoggedIn {
            return Err(NotLoggedIn {
                shown,
                said: first_sentence(&reason(&stderr)),
            }
            .into());
        }
        bail!("{shown} failed: {}", explain(&stderr, &self.project))
    }

    /// The error of a call that got no answer in time: the command, the project, what to check.
    fn no_answer(&self, shown: &str, waited: Duration) -> String {
        let project = &self.project;
        format!(
            "{shown} got no answer from the Compute API within {} s for project {project}, and was stopped: \
             check the network connection (and the VPN or proxy, if one is in the way), that \
             `gcloud compute images list --project={project} --limit=1` answers, and \
             https://status.cloud.google.com",
            waited.as_secs()
        )
    }

    fn json<T: DeserializeOwned>(&self, what: &str, args: &[&str]) -> anyhow::Result<T> {
        let text = self.run(what, args, self.timeout)?;
        serde_json::from_str(&text)
            .with_context(|| format!("reading the JSON of gcloud {}", args.join(" ")))
    }

    /// The deadline of a delete, which waits until Google has finished it.
    fn delete_timeout(&self) -> Duration {
        self.timeout.saturating_mul(DELETE_TIMEOUT_FACTOR)
    }
}

/// The cloud of the binary: each connection is gcloud bound to the project.
pub struct GcloudCloud;

impl Cloud for GcloudCloud {
    fn connect<'s>(&self, sh: &'s Shell, project: &str) -> anyhow::Result<Box<dyn Compute + 's>> {
        Ok(Box::new(Gcloud::new(sh, project)?))
    }
}

impl Compute for Gcloud<'_> {
    fn project(&self) -> &str {
        &self.project
    }

    /// Deprecated images included, which gcloud hides unless asked: one call.
    fn list_images_for(&self, what: &str) -> anyhow::Result<Vec<Image>> {
        self.json(
            what,
            &[
                "compute",
                "images",
                "list",
                "--no-standard-images",
                "--show-deprecated",
            ],
        )
    }

    /// The current image of a family in this project (the project that publishes it): what
    /// a build started now would boot from.
    fn image_from_family(&self, family: &str) -> anyhow::Result<Image> {
        self.json(
            &format!("looking up the current image of family {family}"),
            &["compute", "images", "describe-from-family", family],
        )
    }

    /// Adds labels to an image (`gcloud compute images add-labels`), keeping those it has:
    /// how a build labels an image whose template does not.
    fn add_image_labels(&self, image: &str, labels: &[(String, String)]) -> anyhow::Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        let flag = labels_flag(labels);
        self.run(
            &format!("labelling image {image}"),
            &["compute", "images", "add-labels", image, &flag],
            self.timeout,
        )
        .map(drop)
    }

    /// Deprecates an image (`gcloud compute images deprecate --state=DEPRECATED`), naming the
    /// image that replaces it and recording `at` (RFC 3339) as the moment: GCE moves nothing
    /// on by itself, so the date is what a later prune counts the grace from.
    fn deprecate_image(
        &self,
        image: &str,
        replacement: Option<&str>,
        at: &str,
    ) -> anyhow::Result<()> {
        let replacement = replacement.map(|r| format!("--replacement={r}"));
        let at = format!("--deprecate-on={at}");
        let mut args = vec![
            "compute",
            "images",
            "deprecate",
            image,
            "--state=DEPRECATED",
        ];
        args.extend(replacement.as_deref());
        args.push(&at);
        self.run(&format!("deprecating image {image}"), &args, self.timeout)
            .map(drop)
    }

    /// Makes a deprecated image ACTIVE again (`gcloud compute images deprecate --state=ACTIVE`),
    /// clearing its deprecation: what a rollback does to the image it restores.
    fn reactivate_image(&self, image: &str) -> anyhow::Result<()> {
        self.run(
            &format!("making image {image} active again"),
            &["compute", "images", "deprecate", image, "--state=ACTIVE"],
            self.timeout,
        )
        .map(drop)
    }

    /// The account gcloud acts as (`gcloud config get account`), `None` when none is set.
    fn account(&self) -> anyhow::Result<Option<String>> {
        let value: serde_json::Value =
            self.json("reading the account", &["config", "get", "account"])?;
        Ok(value.as_str().filter(|a| !a.is_empty()).map(str::to_string))
    }

    /// One cheap read of the project: that it exists and the account may see it.
    fn check_project(&self) -> anyhow::Result<()> {
        self.run(
            "reading the project",
            &["compute", "project-info", "describe"],
            self.timeout,
        )
        .map(drop)
    }

    /// Deletes images in one call. If gcloud fails part-way, the images are listed again to
    /// say which are gone and which remain.
    fn delete_images(&self, names: &[String]) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut args = vec!["compute", "images", "delete"];
        args.extend(names.iter().map(String::as_str));
        args.push("--quiet");
        let what = format!("deleting {} image(s)", names.len());
        let Err(err) = self.run(&what, &args, self.delete_timeout()) else {
            return Ok(());
        };
        let remaining = match self.list_images() {
            Ok(images) => images,
            Err(list_err) => {
                return Err(err.context(format!(
                    "deleting images failed, and listing them again failed too ({list_err:#}): \
                     run `cargo xtask slurm-image images` to see which of {} are gone",
                    names.join(", ")
                )))
            }
        };
        let (remain, gone): (Vec<&String>, Vec<&String>) = names
            .iter()
            .partition(|name| remaining.iter().any(|image| &image.name == *name));
        Err(err.context(format!(
            "deleting images failed part-way: deleted {}; still there: {}",
            list_or_none(&gone),
            list_or_none(&remain)
        )))
    }

    /// Every VM of the project in every zone: one aggregated call.
    fn list_instances(&self) -> anyhow::Result<Vec<Instance>> {
        let raw: Vec<RawInstance> =
            self.json("listing the VMs", &["compute", "instances", "list"])?;
        Ok(raw
            .into_iter()
            .map(|r| Instance {
                name: r.name,
                zone: last_segment(&r.zone).to_string(),
                status: r.status,
                creation_timestamp: r.creation_timestamp,
                description: r.description.unwrap_or_default(),
                labels: r.labels,
            })
            .collect())
    }

    /// Deletes VMs of one zone in one call.
    fn delete_instances(&self, zone: &str, names: &[String]) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let zone_flag = format!("--zone={zone}");
        let mut args = vec!["compute", "instances", "delete"];
        args.extend(names.iter().map(String::as_str));
        args.extend([zone_flag.as_str(), "--quiet"]);
        let what = format!("deleting {} VM(s) in {zone}", names.len());
        self.run(&what, &args, self.delete_timeout()).map(drop)
    }

    /// One image of the project, by name.
    fn describe_image(&self, name: &str) -> anyhow::Result<Image> {
        self.json(
            &format!("reading image {name}"),
            &["compute", "images", "describe", name],
        )
    }

    /// Boots a VM from `vm.image` of this project with `startup_script` as its startup script:
    /// no external address, its labels, and a fuse that has GCE delete it after `vm.fuse_s`
    /// seconds even if this tool is killed. Waits until GCE has created it.
    fn create_instance(&self, vm: &Vm, startup_script: &Path) -> anyhow::Result<()> {
        let args = create_instance_args(vm, &self.project, startup_script);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(
            &format!("creating the verification VM {} in {}", vm.name, vm.zone),
            &args,
            self.delete_timeout(),
        )
        .map(drop)
    }

    /// The VM's serial console (port 1) from byte `start` on. Read every few seconds during a
    /// verification, which says its own progress, so the call itself says nothing.
    fn serial_output(&self, zone: &str, name: &str, start: u64) -> anyhow::Result<SerialOutput> {
        let zone_flag = format!("--zone={zone}");
        let start_flag = format!("--start={start}");
        let args = [
            "compute",
            "instances",
            "get-serial-port-output",
            name,
            &zone_flag,
            &start_flag,
        ];
        let text = self.run_saying(None, &args, self.timeout)?;
        serde_json::from_str(&text)
            .with_context(|| format!("reading the JSON of gcloud {}", args.join(" ")))
    }
}

/// The command that retries [`Compute::add_image_labels`], for a person to run.
pub fn add_labels_command(project: &str, image: &str, labels: &[(String, String)]) -> String {
    format!(
        "gcloud compute images add-labels {image} --project={project} {}",
        labels_flag(labels)
    )
}

/// `--labels=k=v,k=v`: label keys and values hold no `,` or `=`, so nothing needs quoting.
fn labels_flag(labels: &[(String, String)]) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("--labels={}", pairs.join(","))
}

/// The gcloud processes running now (calls made side by side, as doctor's and images' are),
/// so that a tool ending on a signal takes every one of them along.
static CALLS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A gcloud process in [`CALLS`], taken out when the call ends.
struct Call(u32);

impl Drop for Call {
    fn drop(&mut self) {
        let mut calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
        calls.retain(|&pid| pid != self.0);
    }
}

/// Kills every gcloud process still running, for a tool about to end; the lock it returns,
/// held until then, keeps another from starting.
fn end_every_call() -> MutexGuard<'static, Vec<u32>> {
    let calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
    for &pid in calls.iter() {
        // SAFETY: kill(2) and waitpid(2) on a child of ours. A call leaves the list just after
        // its wait, so a pid there names a running gcloud, or for that instant one just
        // reaped (then waitpid fails, harmlessly). Reaped here so that it is gone, not dying,
        // when the tool ends.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
            libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
        }
    }
    calls
}

/// The arguments of `gcloud compute instances create` for a verification VM.
fn create_instance_args(vm: &Vm, project: &str, startup_script: &Path) -> Vec<String> {
    vec![
        "compute".into(),
        "instances".into(),
        "create".into(),
        vm.name.clone(),
        format!("--zone={}", vm.zone),
        format!("--image={}", vm.image),
        format!("--image-project={project}"),
        format!("--machine-type={}", vm.machine_type),
        "--no-address".into(),
        "--subnet=default".into(),
        // The checks need no Google API: the VM gets no account to act as.
        "--no-service-account".into(),
        "--no-scopes".into(),
        format!(
            "--metadata-from-file=startup-script={}",
            startup_script.display()
        ),
        labels_flag(&vm.labels),
        format!("--max-run-duration={}s", vm.fuse_s),
        "--instance-termination-action=DELETE".into(),
    ]
}

/// Reads a pipe to its end on a thread of its own, so that neither pipe can fill up and stall
/// gcloud while the other is read.
fn read_to_end(pipe: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = tx.send(bytes);
    });
    rx
}

/// How gcloud reports a failure on stderr: a summary (`ERROR: (gcloud.compute.images.list)
/// Could not fetch resource:`, `WARNING: Some requests did not succeed.`, `ERROR: gcloud
/// crashed (ReadTimeout): ...`, with any lines that continue it), then the API's error
/// messages, one ` - ` item each.
#[derive(Debug, Default, PartialEq)]
struct Report {
    summary: String,
    messages: Vec<String>,
}

fn report(stderr: &str) -> Report {
    let mut report = Report::default();
    for line in stderr.lines() {
        if let Some(message) = line.strip_prefix(" - ") {
            report.messages.push(message.trim().to_string());
        } else if line.trim().is_empty() || line.starts_with("Deleted [") {
            // Blank lines, and the progress of a delete that failed part-way.
        } else if let (Some(last), true) = (report.messages.last_mut(), line.starts_with("   ")) {
            // A long API message continues on indented lines.
            last.push(' ');
            last.push_str(line.trim());
        } else {
            if !report.summary.is_empty() {
                report.summary.push(' ');
            }
            report.summary.push_str(line.trim());
        }
    }
    report
}

/// What a failure means for the user.
#[derive(Debug, PartialEq)]
enum Cause {
    NotLoggedIn,
    NoAccess,
    /// gcloud's own HTTP timeout ran out: it crashes with the exception's name.
    NoAnswer,
    /// No connection to the API at all.
    Unreachable,
    Other,
}

/// Classifies a report by its structure, never by a number or word anywhere in it: resource
/// names carry timestamps (`...-1717403000`) and free words, and an API message repeats them.
fn cause(report: &Report) -> Cause {
    let summary = report.summary.to_ascii_lowercase();
    // gcloud's own sentences about the account; an API message is never taken for one.
    let not_logged_in = [
        "gcloud auth login",
        "do not currently have an active account",
        "does not have any valid credentials",
        "reauthentication failed",
        "problem refreshing your current auth tokens",
    ];
    // The Compute API answers 403 with "Required '<permission>' permission for '<resource>'",
    // which gcloud lists as it is; other commands print the status as `HTTPError 403:` or
    // `code=403`.
    let permission_message = |m: &String| {
        m.strip_prefix("Required '")
            .is_some_and(|rest| rest.contains("' permission for '"))
    };
    let status_403 = |text: &str| {
        text.contains("HTTPError 403:")
            || text.match_indices("code=403").any(|(at, _)| {
                !text[at + "code=403".len()..].starts_with(|c: char| c.is_ascii_digit())
            })
    };
    let crashed = |exceptions: &[&str]| {
        exceptions
            .iter()
            .any(|e| summary.starts_with(&format!("error: gcloud crashed ({e})")))
    };
    if not_logged_in.iter().any(|s| summary.contains(s)) {
        Cause::NotLoggedIn
    } else if report.messages.iter().any(permission_message) || status_403(&report.summary) {
        Cause::NoAccess
    } else if crashed(&["readtimeout", "connecttimeout", "timeout"]) {
        Cause::NoAnswer
    } else if crashed(&["connectionerror"]) {
        Cause::Unreachable
    } else {
        Cause::Other
    }
}

/// gcloud's reason in one line, without its `ERROR: (gcloud.<command>)` prefix and without the
/// advice to run `gcloud feedback` that follows a crash.
fn reason(stderr: &str) -> String {
    let report = report(stderr);
    let summary = report
        .summary
        .split(" If you would like to report this issue")
        .next()
        .unwrap_or_default();
    let summary = match summary.split_once(") ") {
        Some((head, rest)) if head.starts_with("ERROR: (gcloud") => rest,
        _ => summary
            .trim_start_matches("ERROR: ")
            .trim_start_matches("WARNING: "),
    };
    std::iter::once(summary.to_string())
        .chain(report.messages.iter().map(|m| format!("- {m}")))
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// gcloud's reason up to its advice: the "Please run: $ gcloud auth login ..." paragraph after
/// it repeats the fix the tool gives once.
fn first_sentence(reason: &str) -> String {
    reason
        .split(" Please run:")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// gcloud's own reason for a failure, with what to do about the common ones.
pub fn explain(stderr: &str, project: &str) -> String {
    let reason = reason(stderr);
    match cause(&report(stderr)) {
        Cause::NotLoggedIn => format!(
            "gcloud is not logged in: run `gcloud auth login` (gcloud said: {})",
            first_sentence(&reason)
        ),
        Cause::NoAccess => format!(
            "no access to GCP project {project}: ask for access or fix gcp.project in slurm-image.toml (gcloud said: {reason})"
        ),
        Cause::NoAnswer => format!(
            "the Compute API did not answer in time: check the network connection and \
             https://status.cloud.google.com (gcloud said: {reason})"
        ),
        Cause::Unreachable => format!(
            "cannot reach the Compute API: check the network connection (and the VPN or proxy, if \
             one is in the way) (gcloud said: {reason})"
        ),
        Cause::Other if reason.is_empty() => "gcloud said nothing about why".to_string(),
        Cause::Other => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_project_and_json() {
        let sh = Shell::new().unwrap();
        let gcloud = Gcloud {
            sh: &sh,
            project: "determined-ai".into(),
            timeout: Duration::from_secs(60),
        };
        assert_eq!(
            gcloud
                .command(&["compute", "images", "list", "--no-standard-images", "--show-deprecated"])
                .to_string(),
            "gcloud compute images list --no-standard-images --show-deprecated --project=determined-ai --format=json"
        );
    }

    #[test]
    fn a_verification_vm_has_no_address_no_account_and_a_fuse() {
        let settings = crate::model::verification::Settings {
            timeout_s: 1200,
            machine_type: "e2-medium".into(),
        };
        let vm = Vm::new(
            "det-environments-pbs-ci-1",
            "0a1b2c3d",
            "us-central1-c",
            &settings,
        );
        assert_eq!(
            create_instance_args(&vm, "determined-ai", Path::new("/t/s.sh")).join(" "),
            "compute instances create verify-det-environments-pbs-ci-1-0a1b2c3d --zone=us-central1-c \
             --image=det-environments-pbs-ci-1 --image-project=determined-ai --machine-type=e2-medium \
             --no-address --subnet=default --no-service-account --no-scopes \
             --metadata-from-file=startup-script=/t/s.sh \
             --labels=slurm-image=verification,verifies=det-environments-pbs-ci-1 \
             --max-run-duration=1800s --instance-termination-action=DELETE"
        );
    }

    #[test]
    fn zones_are_named_by_the_end_of_their_url() {
        assert_eq!(
            last_segment("https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-c"),
            "us-central1-c"
        );
        assert_eq!(last_segment("us-west1-b"), "us-west1-b");
    }

    #[test]
    fn failures_are_explained() {
        let e = explain(
            "ERROR: (gcloud.compute.images.list) You do not currently have an active account selected.\nPlease run:\n\n  \
             $ gcloud auth login\n\nto obtain new credentials.\n\nIf you have already logged in with a different account, \
             run:\n\n  $ gcloud config set account ACCOUNT\n\nto select an already authenticated account to use.\n",
            "p",
        );
        assert!(
            e.starts_with("gcloud is not logged in: run `gcloud auth login`"),
            "{e}"
        );
        assert!(
            e.contains("You do not currently have an active account"),
            "{e}"
        );
        // gcloud's own paragraph of advice is not repeated: the fix is said once.
        assert_eq!(e.matches("gcloud auth login").count(), 1, "{e}");
        assert!(!e.contains("gcloud config set account"), "{e}");
        let e = explain(
            "ERROR: (gcloud.compute.images.list) Could not fetch resource:\n - Required 'compute.images.list' permission for 'projects/p'\n",
            "p",
        );
        assert!(e.starts_with("no access to GCP project p"), "{e}");
        assert!(
            e.contains("Required 'compute.images.list' permission"),
            "{e}"
        );
        let e = explain(
            "Deleted [x].\nERROR: (gcloud.compute.images.delete) Could not fetch resource:\n - The image is in use\n",
            "p",
        );
        assert_eq!(e, "Could not fetch resource: - The image is in use");
        let e = explain(
            "WARNING: Some requests did not succeed.\n - Required 'compute.images.list' permission for 'projects/p'\n",
            "p",
        );
        assert!(e.starts_with("no access to GCP project p"), "{e}");
        assert!(
            e.contains("Some requests did not succeed. - Required"),
            "{e}"
        );
    }

    #[test]
    fn failures_are_classified_by_their_structure_not_by_a_number_in_a_name() {
        // A 400 about an image whose timestamp holds "403", and words a name may carry.
        let in_use = "Deleted [x].\nERROR: (gcloud.compute.images.delete) Could not fetch resource:\n - The image resource \
            'projects/p/global/images/det-environments-slurm-ci-1717403000' is already being used by \
            'permission-forbidden-credentials-1'\n";
        assert_eq!(cause(&report(in_use)), Cause::Other);
        let e = explain(in_use, "p");
        assert!(
            e.starts_with("Could not fetch resource: - The image resource")
                && e.contains("is already being used"),
            "{e}"
        );
        let summary_with_name = "ERROR: (gcloud.compute.images.delete) HTTPError 400: The image \
            'det-environments-slurm-ci-1717403000' code=4030 is in use\n";
        assert_eq!(cause(&report(summary_with_name)), Cause::Other);
        for forbidden in [
            "ERROR: (gcloud.compute.images.delete) Could not fetch resource:\n - Required 'compute.images.delete' permission for 'projects/p/global/images/x'\n",
            "WARNING: Some requests did not succeed.\n - Required 'compute.instances.list' permission for 'projects/p'\n",
            "ERROR: (gcloud.projects.describe) HTTPError 403: The caller does not have permission\n",
            "ERROR: (gcloud.compute.images.list) ResponseError: code=403, message=Forbidden\n",
        ] {
            assert_eq!(cause(&report(forbidden)), Cause::NoAccess, "{forbidden}");
        }
        let crash = |exception: &str| {
            format!(
                "ERROR: gcloud crashed ({exception}): HTTPConnectionPool(host='127.0.0.1', port=1): ...\n\n\
                 If you would like to report this issue, please run the following command:\n  gcloud feedback\n\n\
                 To check gcloud for common problems, please run the following command:\n  gcloud info --run-diagnostics\n"
            )
        };
        assert_eq!(cause(&report(&crash("ReadTimeout"))), Cause::NoAnswer);
        assert_eq!(
            cause(&report(&crash("ConnectionError"))),
            Cause::Unreachable
        );
        let e = explain(&crash("ConnectionError"), "p");
        assert!(
            e.starts_with("cannot reach the Compute API") && !e.contains("gcloud feedback"),
            "{e}"
        );
    }
}
