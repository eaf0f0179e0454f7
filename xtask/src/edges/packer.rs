//! packer: the only module that runs it.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::RawFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use xshell::{cmd, Cmd, Shell};

use crate::output::{self, Stream};
use crate::term::{signal_name, InterruptGuard};

use crate::model::artifactory_folder::CREDENTIAL_VARS;
use crate::model::provenance;
use crate::model::template::Template;
use crate::model::Version;

/// Parses `Packer v1.6.6` (later versions add lines after it) or a bare `1.8.6`.
pub fn parse_version(output: &str) -> Option<Version> {
    let first = output.lines().next()?.trim();
    let text = first
        .strip_prefix("Packer ")
        .unwrap_or(first)
        .trim_start_matches('v');
    let core = text.split(['-', '+', ' ']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

/// A version as packer writes it: `1.8.6`.
pub fn version_text(v: Version) -> String {
    format!("{}.{}.{}", v.0, v.1, v.2)
}

/// How to get a packer recent enough, on the systems the team uses.
pub const INSTALL_HINT: &str = "install packer >= 1.7 from HashiCorp \
     (https://developer.hashicorp.com/packer/install: their apt repository on Debian/Ubuntu, \
     `brew install hashicorp/tap/packer` on macOS); Debian's own package is 1.6.6";

/// The version of the packer on PATH.
pub fn installed_version(sh: &Shell) -> anyhow::Result<Version> {
    let output = without_credentials(cmd!(sh, "packer version"))
        .quiet()
        .ignore_stderr()
        .read()
        .map_err(|err| anyhow::anyhow!("cannot run packer ({err}): {INSTALL_HINT}"))?;
    parse_version(&output).with_context(|| {
        format!(
            "`packer version` printed {:?}, which is not a version",
            output.trim()
        )
    })
}

/// The packer on PATH, checked against the template's minimum.
pub fn check_version(sh: &Shell, template: &Template) -> anyhow::Result<Version> {
    let found = installed_version(sh)?;
    let needed = template.minimum_packer()?;
    if found < needed {
        bail!(
            "packer {} is installed but the template needs packer >= {}: {INSTALL_HINT}",
            version_text(found),
            version_text(needed)
        );
    }
    Ok(found)
}

/// The template's plugins that packer does not have yet, by their `source`. Packer before 1.8
/// cannot list its plugins, so there every plugin counts as missing and `packer init`, which
/// skips what is installed, decides.
pub fn missing_plugins(
    sh: &Shell,
    template: &Template,
    version: Version,
) -> anyhow::Result<Vec<String>> {
    if template.plugin_sources.is_empty() {
        return Ok(Vec::new());
    }
    if version < (1, 8, 0) {
        return Ok(template.plugin_sources.iter().cloned().collect());
    }
    let installed = without_credentials(cmd!(sh, "packer plugins installed"))
        .quiet()
        .ignore_stderr()
        .read()
        .context("listing packer's plugins (`packer plugins installed`)")?;
    Ok(template
        .plugin_sources
        .iter()
        .filter(|source| !installed.lines().any(|line| line.contains(source.as_str())))
        .cloned()
        .collect())
}

/// The labels that record the packer on PATH and the plugins it has installed
/// ([`provenance::tool_labels`]); without `version` (packer did not run), none. A plugin
/// listing that fails leaves the plugins out: the labels are a record, not a condition.
pub fn tool_labels(sh: &Shell, version: Option<Version>) -> Vec<(String, String)> {
    let Some(version) = version else {
        return Vec::new();
    };
    // `packer plugins installed` came with 1.8.
    let plugins = if version >= (1, 8, 0) {
        without_credentials(cmd!(sh, "packer plugins installed"))
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default()
    } else {
        String::new()
    };
    provenance::tool_labels(&version_text(version), &plugins)
}

/// `packer init .`: fetches the plugins the template requires.
pub fn init<'a>(sh: &'a Shell) -> Cmd<'a> {
    without_credentials(cmd!(sh, "packer init ."))
}

/// Packer and its plugins never need the Artifactory credentials, and a plugin or a
/// provisioner could log or upload its environment, so they are removed from it.
fn without_credentials(mut cmd: Cmd<'_>) -> Cmd<'_> {
    for name in CREDENTIAL_VARS {
        cmd = cmd.env_remove(name);
    }
    cmd
}

/// `packer fmt [-check] .`
pub fn fmt<'a>(sh: &'a Shell, check: bool) -> Cmd<'a> {
    let check = check.then_some("-check");
    without_credentials(cmd!(sh, "packer fmt {check...} ."))
}

/// What `packer fmt` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Formatting {
    /// Formatted (or, with `-check`, already in packer's layout).
    Done,
    /// With `-check`: the files that need formatting.
    Needed(Vec<String>),
}

/// Runs `packer fmt [-check] .` in the current folder, its output passed through.
pub fn run_fmt(sh: &Shell, check: bool) -> anyhow::Result<Formatting> {
    let output = fmt(sh, check)
        .ignore_status()
        .output()
        .context("running packer fmt")?;
    let listed = String::from_utf8_lossy(&output.stdout);
    out!("{listed}");
    err!("{}", String::from_utf8_lossy(&output.stderr));
    match output.status.code() {
        Some(0) => Ok(Formatting::Done),
        // `packer fmt -check` exits 3 and lists the files it would change.
        Some(3) if check => Ok(Formatting::Needed(
            listed.split_whitespace().map(str::to_string).collect(),
        )),
        code => bail!("`packer fmt` failed (exit {code:?})"),
    }
}

/// `packer validate [-syntax-only] -var-file=<file> .`
pub fn validate<'a>(sh: &'a Shell, var_file: &Path, syntax_only: bool) -> Cmd<'a> {
    let var_file = format!("-var-file={}", var_file.display());
    let syntax_only = syntax_only.then_some("-syntax-only");
    without_credentials(cmd!(sh, "packer validate {syntax_only...} {var_file} ."))
}

/// What packer does with its VM when a build fails (`packer build -on-error=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Deletes it: packer's own default.
    Cleanup,
    /// Keeps it, stopped where the build failed, for someone to look into.
    Abort,
}

impl OnError {
    fn flag(self) -> &'static str {
        match self {
            OnError::Cleanup => "-on-error=cleanup",
            OnError::Abort => "-on-error=abort",
        }
    }
}

/// `packer build -var-file=<file> .`, with packer's detailed log in `log_file`; `--debug`
/// pauses before each step and logs everything to the terminal, as the Makefile did. Without
/// `on_error` packer decides, as `make build` left it to.
pub fn build<'a>(
    sh: &'a Shell,
    var_file: &Path,
    log_file: &Path,
    debug: bool,
    on_error: Option<OnError>,
) -> Cmd<'a> {
    let var_file = format!("-var-file={}", var_file.display());
    let debug_flag = debug.then_some("-debug");
    let on_error = on_error.map(OnError::flag);
    let mut cmd = without_credentials(cmd!(
        sh,
        "packer build {debug_flag...} {on_error...} {var_file} ."
    ));
    for (name, value) in build_env(log_file, debug) {
        cmd = match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    cmd
}

/// The environment `packer build` runs with: a value, or `None` for removed.
fn build_env(log_file: &Path, debug: bool) -> Vec<(&'static str, Option<String>)> {
    if debug {
        vec![("PACKER_LOG", Some("10".into())), ("PACKER_LOG_PATH", None)]
    } else {
        vec![
            ("PACKER_LOG", Some("1".into())),
            ("PACKER_LOG_PATH", Some(log_file.display().to_string())),
        ]
    }
}

/// A build command as it really runs, its environment first, with paths under `root` shown
/// relative to it: `PACKER_LOG=1 PACKER_LOG_PATH=target/... packer build ...`.
pub fn shown_build(cmd: &Cmd<'_>, log_file: &Path, debug: bool, root: &Path) -> String {
    let root = format!("{}/", root.display());
    let mut line = String::new();
    for (name, value) in build_env(log_file, debug) {
        if let Some(value) = value {
            line.push_str(&format!("{name}={} ", value.replace(&root, "")));
        }
    }
    line.push_str(&cmd.to_string().replace(&root, ""));
    line
}

/// The variables packer warned were set but not declared (`A "zone" variable was set but
/// was not found...`), joined for a message; `None` when there were none.
pub fn undefined_variables(output: &str) -> Option<String> {
    let names: Vec<&str> = output
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("A \"")?;
            let (name, tail) = rest.split_once('"')?;
            tail.trim_start()
                .starts_with("variable was set but")
                .then_some(name)
        })
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// The source image packer started from: the googlecompute plugin says `Using image: NAME`
/// once it has resolved the family (in its output, and with `ui: ` in its log). The last such
/// line counts; `None` when there is none.
pub fn source_image_used(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .find_map(|line| line.split_once("Using image: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_string)
}

/// The VM a failed build kept (`-on-error=abort`), when packer's output or log names it: the
/// googlecompute plugin names its VMs `packer-<uuid>`. The last one named counts.
pub fn vm_kept(log: &str) -> Option<String> {
    log.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|word| is_packer_vm_name(word))
        .map(str::to_string)
}

/// `packer-` and a UUID (8-4-4-4-12 lowercase hex digits), as the plugin names a build's VM.
fn is_packer_vm_name(word: &str) -> bool {
    let Some(uuid) = word.strip_prefix("packer-") else {
        return false;
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
}

/// How a packer run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed(Option<i32>),
    /// The user interrupted the run; packer was left to cancel and delete its VM.
    Interrupted {
        signal: i32,
        code: Option<i32>,
    },
}

/// Runs a long packer command with its output streaming to the terminal. Packer runs in a
/// process group of its own, so that a signal reaches it only through the tool, exactly once
/// however it came (Ctrl-C at the terminal, which signals the tool's group, or `kill` of the
/// tool alone, as a CI runner sends it); see [`cancel_signal`]. The tool then waits for packer
/// to delete its VM instead of dying and leaving an orphan, and answers every further signal.
pub fn run_to_end(
    cmd: Cmd<'_>,
    shown: &str,
    interactive: bool,
    lock: Option<RawFd>,
    started: impl FnOnce(u32),
    output: Output<'_>,
) -> anyhow::Result<Outcome> {
    let mut command = Command::from(cmd);
    if let Some(fd) = lock {
        // The build lock stays held while packer lives, even if this tool is killed: packer
        // keeps the descriptor open across exec, and the lock belongs to the open file.
        // SAFETY: fcntl(2) is async-signal-safe, as code between fork and exec must be.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    // `-debug` waits for Enter before each step, so it needs the terminal's stdin.
    command.stdin(if interactive {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    // A process in a background group that reads the terminal is stopped (SIGTTIN), so
    // `-debug` at a terminal stays in the tool's group, the terminal's foreground one.
    let shares_terminal = interactive;
    if !shares_terminal {
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    output.attach(&mut command);
    let guard = InterruptGuard::new()?;
    output.say(&format!("$ {shown}"));
    let mut child = command
        .spawn()
        .with_context(|| format!("starting `{shown}`"))?;
    started(child.id());
    let relay = output.relay(&mut child);
    let (mut forwarded, mut answered) = (false, 0);
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for packer")? {
            break status;
        }
        let count = guard.count();
        if let (true, Some(signal)) = (count > answered, guard.received()) {
            if !forwarded {
                forwarded = true;
                if let Some(cancel) = cancel_signal(signal, shares_terminal) {
                    let pid = child.id() as libc::pid_t;
                    // Its own group whole, as a terminal signals it (packer, its plugins, the
                    // programs they run); in the tool's group, packer alone.
                    let target = if shares_terminal { pid } else { -pid };
                    // SAFETY: kill(2) on a child we have not yet waited for, or its group.
                    unsafe { libc::kill(target, cancel) };
                }
            }
            if answered == 0 {
                // On stderr behind the build's prefix, as packer's own lines are.
                output.say(&format!(
                    "{} received: waiting for packer to cancel the build and delete its VM",
                    signal_name(signal)
                ));
            }
            for _ in answered.max(1)..count {
                output.say(
                    "still waiting for packer to delete its VM; `kill -9` would leave it behind \
                     (`cargo xtask slurm-image orphans` finds such VMs)",
                );
            }
            answered = count;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    relay.finish();
    Ok(match (guard.received(), status.success()) {
        (Some(signal), _) => {
            output.say(&format!(
                "{} received: packer finished its cleanup",
                signal_name(signal)
            ));
            Outcome::Interrupted {
                signal,
                code: status.code(),
            }
        }
        (None, true) => Outcome::Succeeded,
        (None, false) => Outcome::Failed(status.code()),
    })
}

/// The signal that asks packer to cancel after the tool received `signal`, sent once per run;
/// `None` when packer already has it. Packer cancels on SIGINT and SIGTERM alike; a closed
/// terminal's SIGHUP would kill it before it deletes its VM, so it gets SIGTERM instead. In
/// the tool's own group (`--debug` at a terminal), a Ctrl-C came from the terminal, which
/// signalled packer too; there a SIGINT sent to the tool alone is not passed on, a price of
/// stepping through a build by hand.
pub fn cancel_signal(signal: i32, shares_terminal: bool) -> Option<i32> {
    match signal {
        libc::SIGINT if shares_terminal => None,
        libc::SIGINT => Some(libc::SIGINT),
        _ => Some(libc::SIGTERM),
    }
}

/// Where a packer run's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output<'a> {
    /// As packer writes it: straight to a terminal (colours, prompts and all), else line by
    /// line through the tool.
    Inherit,
    /// Line by line, each whole line behind this prefix (`[pbs] `): two builds side by side
    /// stay readable, and no line ever holds bytes of both.
    Prefixed(&'a str),
}

impl Output<'_> {
    /// A line of the tool's own about this run, on stderr.
    pub fn say(&self, text: &str) {
        write_line(Stream::Stderr, self.prefix(), text.as_bytes());
    }

    /// A line of the tool's own result on stdout, prefixed as packer's lines are.
    pub fn print(&self, text: &str) {
        write_line(Stream::Stdout, self.prefix(), text.as_bytes());
    }

    fn prefix(&self) -> &str {
        match self {
            Output::Inherit => "",
            Output::Prefixed(prefix) => prefix,
        }
    }

    /// Pipes packer's output through the tool unless it goes straight to a terminal: a pipe
    /// the reader closes (`build | head`) would kill packer with SIGPIPE and leave its VM
    /// behind, where the tool's writer only stops writing and packer runs on.
    fn attach(&self, command: &mut Command) {
        let through_the_tool = match self {
            Output::Prefixed(_) => true,
            Output::Inherit => output::children_through_the_tool(),
        };
        if through_the_tool {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
    }

    /// Starts copying the child's piped output, stdout to stdout and stderr to stderr.
    fn relay(&self, child: &mut Child) -> Relay {
        let (done, finished) = mpsc::channel();
        let mut streams = 0;
        // Only what `attach` piped is there to take.
        let prefix = self.prefix();
        if let Some(out) = child.stdout.take() {
            streams += 1;
            relay_lines(out, prefix, false, done.clone());
        }
        if let Some(err) = child.stderr.take() {
            streams += 1;
            relay_lines(err, prefix, true, done);
        }
        Relay { finished, streams }
    }
}

/// The threads copying a child's output; [`Relay::finish`] waits for them.
struct Relay {
    finished: mpsc::Receiver<()>,
    streams: usize,
}

impl Relay {
    /// Waits until the child's last lines are out. A grandchild that keeps a pipe open (a
    /// plugin still shutting down) is not waited for beyond a few seconds.
    fn finish(self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..self.streams {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.finished.recv_timeout(left).is_err() {
                break;
            }
        }
    }
}

/// Copies `from` to the tool's stdout (or stderr) one whole line at a time behind `prefix`;
/// signals `done` at the end of the stream.
fn relay_lines(
    from: impl Read + Send + 'static,
    prefix: &str,
    to_stderr: bool,
    done: mpsc::Sender<()>,
) {
    let prefix = prefix.to_string();
    crate::session::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            // When no one reads the tool's output any more, the lines are dropped and the pipe
            // is still drained, so that packer never blocks on it (see `output`).
            let stream = if to_stderr {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            write_line(stream, &prefix, text);
        }
        let _ = done.send(());
    });
}

/// Writes `prefix`, `text` and a newline with one write, under the stream's lock, so that a
/// line of one build never takes in bytes of another's.
fn write_line(stream: Stream, prefix: &str, text: &[u8]) {
    output::write_bytes(stream, &prefixed_line(prefix, text));
}

/// `prefix`, `text` and a newline.
fn prefixed_line(prefix: &str, text: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(prefix.len() + text.len() + 1);
    line.extend_from_slice(prefix.as_bytes());
    line.extend_from_slice(text);
    line.push(b'\n');
    line
}

// The unit tests' one copy of the integration tests' `require_tool`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_image_packer_used_is_read_from_its_log() {
        let log = "2026/11/30 09:00:01 ui: ==> googlecompute.determined-hpc-image: Checking image does not exist...\n\
                   2026/11/30 09:00:02 ui: ==> googlecompute.determined-hpc-image: Using image: slurm-gcp-6-3-ubuntu-2004-lts-v20240102\n\
                   2026/11/30 09:00:03 ui: ==> googlecompute.determined-hpc-image: Creating instance...\n";
        assert_eq!(
            source_image_used(log).as_deref(),
            Some("slurm-gcp-6-3-ubuntu-2004-lts-v20240102")
        );
        assert_eq!(
            source_image_used("==> googlecompute.x: Creating instance...\n"),
            None
        );
        assert_eq!(source_image_used(""), None);
    }

    #[test]
    fn the_vm_an_aborted_build_kept_is_read_from_packers_output() {
        let log = "==> googlecompute.determined-hpc-image: Creating instance...\n\
                   2026/11/30 09:00:04 [INFO] instance name: packer-6583c0a5-1c2d-4e5f-8a9b-0c1d2e3f4a5b\n\
                   ==> googlecompute.determined-hpc-image: Step \"StepCreateInstance\" failed, aborting...\n";
        assert_eq!(
            vm_kept(log).as_deref(),
            Some("packer-6583c0a5-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
        );
        // A plugin's binary or a word that only starts like a VM name is not one.
        assert_eq!(
            vm_kept("packer-plugin-googlecompute_v1.1.4 packer-6583c0a5 packer-build.log"),
            None
        );
        assert_eq!(vm_kept(""), None);
    }

    #[test]
    fn reads_packer_versions() {
        assert_eq!(parse_version("Packer v1.6.6\n"), Some((1, 6, 6)));
        assert_eq!(
            parse_version("Packer v1.8.6\n\nYour version of Packer is out of date!"),
            Some((1, 8, 6))
        );
        assert_eq!(parse_version("1.11.2"), Some((1, 11, 2)));
        assert_eq!(parse_version("Packer v1.9.0-dev"), Some((1, 9, 0)));
        assert_eq!(parse_version("packer: command not found"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn undefined_variables_are_read_from_packers_warnings() {
        // As packer 1.6.6 prints them.
        let output = "Warning: Undefined variable\n\nA \"zone\" variable was set but was not found in known variables. To declare\n\
                      variable \"zone\", place this block in one of your .pkr files, such as\nvariables.pkr.hcl\n\n\
                      Warning: Undefined variable\n\nA \"other\" variable was set but was not found in known variables.\n";
        assert_eq!(undefined_variables(output).as_deref(), Some("zone, other"));
        assert_eq!(undefined_variables("The configuration is valid.\n"), None);
    }

    #[test]
    fn commands_are_built_as_the_makefile_ran_them() {
        let sh = Shell::new().unwrap();
        assert_eq!(fmt(&sh, true).to_string(), "packer fmt -check .");
        assert_eq!(fmt(&sh, false).to_string(), "packer fmt .");
        assert_eq!(init(&sh).to_string(), "packer init .");
        let var_file = Path::new("build/slurm.pkrvars.hcl");
        let log = Path::new("/repo/target/slurm-image/slurm-packer.log");
        assert_eq!(
            validate(&sh, var_file, false).to_string(),
            "packer validate -var-file=build/slurm.pkrvars.hcl ."
        );
        assert_eq!(
            validate(&sh, var_file, true).to_string(),
            "packer validate -syntax-only -var-file=build/slurm.pkrvars.hcl ."
        );
        assert_eq!(
            build(&sh, var_file, log, false, None).to_string(),
            "packer build -var-file=build/slurm.pkrvars.hcl ."
        );
        assert_eq!(
            build(&sh, var_file, log, true, None).to_string(),
            "packer build -debug -var-file=build/slurm.pkrvars.hcl ."
        );
        assert_eq!(
            build(&sh, var_file, log, false, Some(OnError::Abort)).to_string(),
            "packer build -on-error=abort -var-file=build/slurm.pkrvars.hcl ."
        );
        assert_eq!(
            build(&sh, var_file, log, true, Some(OnError::Cleanup)).to_string(),
            "packer build -debug -on-error=cleanup -var-file=build/slurm.pkrvars.hcl ."
        );
        let root = Path::new("/repo");
        assert_eq!(
            shown_build(&build(&sh, var_file, log, false, None), log, false, root),
            "PACKER_LOG=1 PACKER_LOG_PATH=target/slurm-image/slurm-packer.log packer build -var-file=build/slurm.pkrvars.hcl ."
        );
        assert_eq!(
            shown_build(&build(&sh, var_file, log, true, None), log, true, root),
            "PACKER_LOG=10 packer build -debug -var-file=build/slurm.pkrvars.hcl ."
        );
    }

    #[test]
    fn packer_is_asked_to_cancel_by_the_signal_that_it_cancels_on() {
        // In its own group: whatever the tool got, packer gets a cancel from the tool.
        assert_eq!(cancel_signal(libc::SIGINT, false), Some(libc::SIGINT));
        assert_eq!(cancel_signal(libc::SIGTERM, false), Some(libc::SIGTERM));
        assert_eq!(cancel_signal(libc::SIGHUP, false), Some(libc::SIGTERM));
        // `--debug` in the terminal's group: the terminal's Ctrl-C reached packer already.
        assert_eq!(cancel_signal(libc::SIGINT, true), None);
        assert_eq!(cancel_signal(libc::SIGTERM, true), Some(libc::SIGTERM));
    }

    #[test]
    fn a_prefixed_line_is_one_whole_line() {
        let mut out = prefixed_line("[pbs] ", b"==> googlecompute: Creating instance...");
        out.extend(prefixed_line("[pbs] ", b""));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[pbs] ==> googlecompute: Creating instance...\n[pbs] \n"
        );
    }
}
