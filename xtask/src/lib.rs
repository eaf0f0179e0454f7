//! `cargo xtask`: the project's own tooling, starting with the GCE images of the HPC test clusters.

// First, so that its macros (`outln!`, `errln!`, ...) are in scope in every module after it.
#[macro_use]
mod output;

mod commands;
mod edges;
mod host;
mod model;
mod session;
mod steps;
mod term;

use std::ffi::OsString;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use xshell::Shell;

use crate::commands::SlurmImage;
use crate::host::HostTree;
use crate::session::Session;

/// What the tests drive: the seam to the cloud, and the tool run in-process against it.
pub mod testing {
    pub use crate::edges::compute::{Cloud, Compute, Instance, SerialOutput};
    pub use crate::edges::gcloud::GcloudCloud;
    pub use crate::model::image::Image;
    pub use crate::model::verification::Vm;
    pub use crate::{run_in_process, Finished, Started};

    /// Runs `work` as a run of the tool with `env` over the process's environment and `cloud`:
    /// what it returns, and what the run wrote to stdout and stderr.
    pub fn in_session<T>(
        env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
        cloud: Box<dyn Cloud>,
        work: impl FnOnce() -> T,
    ) -> (T, String) {
        let session = std::sync::Arc::new(crate::Session::captured(env, cloud));
        let (done, stdout, stderr) = crate::captured(&session, work);
        (done, stdout + &stderr)
    }

    /// Starts `cargo xtask <args>` in this process on a thread of its own, as
    /// [`run_in_process`] runs it; the test may deliver it signals while it runs.
    pub fn start_in_process(
        args: Vec<String>,
        dir: std::path::PathBuf,
        env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
        cloud: Box<dyn Cloud>,
    ) -> Started {
        let session = std::sync::Arc::new(crate::Session::captured(env, cloud));
        let run = session.clone();
        let (ended, end) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            // The receiver may be gone: a test that failed meanwhile waits for nothing.
            let _ = ended.send(crate::run_as(&run, &args, &dir));
        });
        Started {
            session,
            thread,
            end,
        }
    }
}

/// The project's own tooling: `cargo xtask <command>`.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    disable_help_subcommand = true
)]
struct Xtask {
    #[command(subcommand)]
    command: Command,
    /// Put the time (UTC) before every line: `auto` (the default) does when stdout is not a
    /// terminal (a CI job's log, `| tee build.log`); `--timestamps` alone is `always`. Without
    /// the flag, SLURM_IMAGE_TIMESTAMPS=auto|always|never decides.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHEN",
        num_args = 0..=1,
        default_missing_value = "always"
    )]
    timestamps: Option<Timestamps>,
}

/// When lines carry the time.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Timestamps {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Bake, record and manage the GCE images the SLURM and PBS test clusters boot.
    #[command(subcommand, after_help = term::exit::help_table())]
    SlurmImage(SlurmImage),
}

/// The binary: `cargo xtask` with the process's streams and environment, through gcloud.
pub fn main() {
    let code = match parse(std::env::args_os()) {
        Ok(xtask) => run(xtask),
        Err(code) => code,
    };
    if code != 0 {
        std::process::exit(code);
    }
}

/// How an in-process run of the tool ended.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cargo xtask <args>` in this process, in `dir`, with `env` over the process's
/// environment and `cloud` for every Compute call; both streams are kept, neither is a
/// terminal. Tests run it side by side on threads of one process.
pub fn run_in_process(
    args: &[&str],
    dir: &std::path::Path,
    env: Vec<(OsString, OsString)>,
    cloud: Box<dyn edges::compute::Cloud>,
) -> Finished {
    run_as(&Arc::new(Session::captured(env, cloud)), args, dir)
}

/// Runs `cargo xtask <args>` as `session`, to its end: where the binary would exit at once
/// (a signal during a wait), the run unwinds to here with its exit status.
fn run_as(session: &Arc<Session>, args: &[&str], dir: &std::path::Path) -> Finished {
    let (code, stdout, stderr) = captured(session, || {
        let argv =
            std::iter::once(OsString::from("cargo-xtask")).chain(args.iter().map(OsString::from));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match parse(argv) {
            Ok(xtask) => run_in(xtask, dir),
            Err(code) => code,
        }));
        match run {
            Ok(code) => code,
            Err(payload) => match payload.downcast::<session::EndOfRun>() {
                Ok(end) => end.0,
                Err(payload) => std::panic::resume_unwind(payload),
            },
        }
    });
    Finished {
        code,
        stdout,
        stderr,
    }
}

/// A run of the tool on a thread of its own, which a test delivers signals to as `kill` would
/// to the binary ([`testing::start_in_process`]).
pub struct Started {
    session: Arc<Session>,
    thread: std::thread::JoinHandle<()>,
    /// How the run ended, sent as it ends.
    end: std::sync::mpsc::Receiver<Finished>,
}

impl Started {
    /// Delivers `signal` to the run, as `kill -<signal>` to the tool alone would.
    pub fn deliver(&self, signal: i32) {
        self.session.signals().deliver(signal);
    }

    /// What the run has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.session.stderr_so_far()
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits at most `within` for the run to end: how it ended, or the run still going. A
    /// panic of the run is the caller's.
    pub fn finish(self, within: std::time::Duration) -> Result<Finished, Started> {
        use std::sync::mpsc::RecvTimeoutError;
        match self.end.recv_timeout(within) {
            Ok(finished) => Ok(finished),
            Err(RecvTimeoutError::Timeout) => Err(self),
            Err(RecvTimeoutError::Disconnected) => match self.thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the run's thread ended without sending how it ended"),
            },
        }
    }
}

/// Runs `work` on this thread as `session`, a run whose output is kept: what it returns, its
/// stdout and its stderr.
fn captured<T>(session: &Arc<Session>, work: impl FnOnce() -> T) -> (T, String, String) {
    let done = {
        let _entered = session::enter(session.clone());
        work()
    };
    let (stdout, stderr) = session.take_output();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (done, text(stdout), text(stderr))
}

/// Runs the command from the process's folder; its exit status.
fn run(xtask: Xtask) -> i32 {
    match std::env::current_dir() {
        Ok(dir) => run_in(xtask, &dir),
        Err(err) => {
            errln!("error: reading the current folder: {err}");
            1
        }
    }
}

/// Runs the command from `dir` for the current session; its exit status.
fn run_in(xtask: Xtask, dir: &std::path::Path) -> i32 {
    output::stamp_lines(
        match xtask.timestamps.or_else(timestamps_from_environment) {
            Some(Timestamps::Always) => true,
            Some(Timestamps::Never) => false,
            Some(Timestamps::Auto) | None => !session::is_terminal(session::Stdio::Stdout),
        },
    );
    match try_main(xtask, dir) {
        Ok(()) => 0,
        Err(err) => {
            errln!("error: {err:#}");
            term::exit::exit_code(&err)
        }
    }
}

/// SLURM_IMAGE_TIMESTAMPS, read as the flag is (clap's `env` feature would cost every user a
/// longer first build for this one variable). A value it does not know is `auto`, said once.
fn timestamps_from_environment() -> Option<Timestamps> {
    let value = session::var("SLURM_IMAGE_TIMESTAMPS")?;
    let known = <Timestamps as clap::ValueEnum>::from_str(&value, true).ok();
    if known.is_none() {
        errln!(
            "warning: SLURM_IMAGE_TIMESTAMPS={value:?} is not auto, always or never: auto it is"
        );
    }
    known
}

/// The command line, or the exit status after clap's help, version or usage error. They are
/// written through `output`, not by clap, which would exit 0 after `--help | head -1` found
/// the pipe closed where every other command exits as a closed pipe ends it.
fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Xtask, i32> {
    Xtask::try_parse_from(args).map_err(|err| {
        let stream = if err.use_stderr() {
            output::Stream::Stderr
        } else {
            output::Stream::Stdout
        };
        output::write(stream, format_args!("{}", err.render()));
        err.exit_code()
    })
}

fn try_main(xtask: Xtask, dir: &std::path::Path) -> anyhow::Result<()> {
    let host = HostTree::find(dir)?;
    let sh: Shell = session::shell(&host.root)?;
    match xtask.command {
        Command::SlurmImage(cmd) => cmd.run(&sh, &host),
    }
}
