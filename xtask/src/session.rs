//! One run of the tool: where what it says goes, the environment its programs see, and the
//! cloud it talks to.
//!
//! The binary is one run, on the process's stdout and stderr, with the process's environment,
//! through gcloud. A test runs the tool in-process: that run captures both streams, has an
//! environment of its own (the stand-ins' PATH, the settings under test) and a fake cloud, and
//! runs beside other tests' runs in the same process. So nothing a run decides lives in a
//! process-wide place: it is the current thread's session, and each thread a run starts works
//! for the same run ([`spawn`], [`spawn_scoped`]).

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use xshell::Shell;

use crate::edges::compute::Cloud;
use crate::edges::gcloud::GcloudCloud;
use crate::output;
use crate::term::Signals;

/// One run of the tool.
pub struct Session {
    streams: Streams,
    /// Variables set for this run, over the process's environment.
    env: Vec<(OsString, OsString)>,
    cloud: Box<dyn Cloud>,
    /// What was said once in this run (see [`first_time`]).
    said: Mutex<Vec<&'static str>>,
    /// What the writer keeps about the streams (closed, records, timestamps).
    pub(crate) output: output::State,
    /// The stopping signals the run received, and the guards it holds.
    pub(crate) signals: Arc<Signals>,
}

enum Streams {
    /// The process's own stdin, stdout and stderr.
    Process,
    /// Kept for the caller, never a terminal.
    Captured {
        stdout: Mutex<Vec<u8>>,
        stderr: Mutex<Vec<u8>>,
    },
}

/// The standard streams, for asking whether one is a terminal.
#[derive(Debug, Clone, Copy)]
pub enum Stdio {
    Stdin,
    Stdout,
    Stderr,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Session>>> = const { RefCell::new(None) };
}

/// The binary's run: every thread that no in-process run has entered works for it.
static PROCESS: LazyLock<Arc<Session>> = LazyLock::new(|| {
    Arc::new(Session {
        streams: Streams::Process,
        env: Vec::new(),
        cloud: Box::new(GcloudCloud),
        said: Mutex::default(),
        output: output::State::default(),
        signals: Arc::new(Signals::of_the_process()),
    })
});

impl Session {
    /// A run whose output is kept (see [`Session::take_output`]), with `env` over the
    /// process's environment and `cloud` for every connection.
    pub fn captured(env: Vec<(OsString, OsString)>, cloud: Box<dyn Cloud>) -> Session {
        Session {
            streams: Streams::Captured {
                stdout: Mutex::default(),
                stderr: Mutex::default(),
            },
            env,
            cloud,
            said: Mutex::default(),
            output: output::State::default(),
            signals: Arc::new(Signals::delivered()),
        }
    }

    /// The run's signals: a test delivers them to a run inside it.
    pub fn signals(&self) -> Arc<Signals> {
        self.signals.clone()
    }

    /// What a captured run has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        match &self.streams {
            Streams::Process => String::new(),
            Streams::Captured { stderr, .. } => {
                String::from_utf8_lossy(&stderr.lock().unwrap_or_else(|e| e.into_inner()))
                    .into_owned()
            }
        }
    }

    pub fn cloud(&self) -> &dyn Cloud {
        self.cloud.as_ref()
    }

    /// Whether `stream` is a terminal: never for a captured run.
    pub fn is_terminal(&self, stream: Stdio) -> bool {
        match (&self.streams, stream) {
            (Streams::Captured { .. }, _) => false,
            (Streams::Process, Stdio::Stdin) => io::stdin().is_terminal(),
            (Streams::Process, Stdio::Stdout) => io::stdout().is_terminal(),
            (Streams::Process, Stdio::Stderr) => io::stderr().is_terminal(),
        }
    }

    /// Runs `put` on stdout (`true`) or stderr under that stream's lock.
    pub(crate) fn write_to(
        &self,
        stdout: bool,
        put: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        match &self.streams {
            Streams::Process if stdout => put(&mut io::stdout().lock()),
            Streams::Process => put(&mut io::stderr().lock()),
            Streams::Captured {
                stdout: out,
                stderr,
            } => {
                let kept = if stdout { out } else { stderr };
                put(&mut *kept.lock().unwrap_or_else(|e| e.into_inner()))
            }
        }
    }

    /// A variable of this run's environment.
    pub fn var(&self, name: &str) -> Option<String> {
        match self.env.iter().rev().find(|(key, _)| key == name) {
            Some((_, value)) => value.to_str().map(str::to_string),
            None => std::env::var(name).ok(),
        }
    }

    /// What a captured run wrote: stdout, then stderr.
    pub fn take_output(&self) -> (Vec<u8>, Vec<u8>) {
        match &self.streams {
            Streams::Process => (Vec::new(), Vec::new()),
            Streams::Captured { stdout, stderr } => {
                let take = |m: &Mutex<Vec<u8>>| {
                    std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()))
                };
                (take(stdout), take(stderr))
            }
        }
    }
}

/// How a run inside a test ends where the binary would exit at once: an unwind that
/// [`crate::run_in_process`] catches, with the exit status.
pub struct EndOfRun(pub i32);

/// Ends the current run with `code`: the binary exits; a run inside a test unwinds to its end.
/// (On a thread the run started, the unwind ends that thread, and its caller sees a panic: no
/// test delivers a signal to a run there.)
pub fn end_run(code: i32) -> ! {
    match current().streams {
        Streams::Process => std::process::exit(code),
        Streams::Captured { .. } => std::panic::resume_unwind(Box::new(EndOfRun(code))),
    }
}

/// The current thread's run.
pub fn current() -> Arc<Session> {
    CURRENT
        .with(|current| current.borrow().clone())
        .unwrap_or_else(|| PROCESS.clone())
}

/// Whether this is the first time the current run asks about `what`: for what a command says
/// once though it reads a file twice.
pub fn first_time(what: &'static str) -> bool {
    let session = current();
    let mut said = session.said.lock().unwrap_or_else(|e| e.into_inner());
    if said.contains(&what) {
        return false;
    }
    said.push(what);
    true
}

/// A variable of the current run's environment.
pub fn var(name: &str) -> Option<String> {
    current().var(name)
}

/// Whether the current run's `stream` is a terminal.
pub fn is_terminal(stream: Stdio) -> bool {
    current().is_terminal(stream)
}

/// A shell for the current run in `dir`: its environment, and a folder of its own, since one
/// shell's state is not shared across threads.
pub fn shell(dir: &Path) -> anyhow::Result<Shell> {
    let sh = Shell::new()?;
    for (key, value) in &current().env {
        sh.set_var(key, value);
    }
    sh.change_dir(dir);
    Ok(sh)
}

/// While it lives, the current thread works for `session`.
pub struct Entered(Option<Arc<Session>>);

/// Makes `session` the current thread's run until the guard is dropped.
pub fn enter(session: Arc<Session>) -> Entered {
    Entered(CURRENT.with(|current| current.replace(Some(session))))
}

impl Drop for Entered {
    fn drop(&mut self) {
        let before = self.0.take();
        CURRENT.with(|current| *current.borrow_mut() = before);
    }
}

/// `std::thread::spawn` for the current run.
pub fn spawn<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let session = current();
    std::thread::spawn(move || {
        let _entered = enter(session);
        work()
    })
}

/// `Scope::spawn` for the current run.
pub fn spawn_scoped<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    work: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    let session = current();
    scope.spawn(move || {
        let _entered = enter(session);
        work()
    })
}
