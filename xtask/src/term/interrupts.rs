//! Signals and exit codes: Ctrl-C, SIGTERM and a closed terminal become flags a build can
//! wait on, and a stopped command exits with 128 + the signal, as a shell reports it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The signals that stop a command: Ctrl-C, `kill`, and a closed terminal or dropped SSH session.
const STOPPING: [i32; 3] = [
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGTERM,
    signal_hook::consts::SIGHUP,
];

/// The stopping signals one run of the tool has received, and the guards it holds. The
/// binary's run receives them from the process's handlers; a run inside a test receives those
/// the test delivers ([`Signals::deliver`]), so that runs side by side in one process never
/// see each other's.
pub struct Signals {
    /// The number of the last stopping signal received while a guard was held, or 0.
    last: Arc<AtomicUsize>,
    /// How many stopping signals were received while a guard was held.
    count: Arc<AtomicUsize>,
    /// While false, the stopping signals are only recorded instead of ending the process.
    default_action: Arc<AtomicBool>,
    /// Guards held now. A release runs a SLURM and a PBS build in one process on two threads,
    /// each holding its own besides the release's; the mutex keeps the count and
    /// `default_action` in step when two threads take or drop guards at once.
    holders: Mutex<usize>,
    /// How many of the guards held belong to a [`Watch`].
    watches: AtomicUsize,
    /// The process's handlers, installed by the first guard (`None` for a run whose signals
    /// are delivered). A `OnceLock` runs one initialiser and makes every other thread wait for
    /// it, so no handler is installed twice.
    handlers: Option<OnceLock<Result<(), String>>>,
}

impl Signals {
    /// The binary's: the process's Ctrl-C, SIGTERM and SIGHUP.
    pub fn of_the_process() -> Signals {
        Signals::new(Some(OnceLock::new()))
    }

    /// A run inside a test: only the signals [`Signals::deliver`] hands it.
    pub fn delivered() -> Signals {
        Signals::new(None)
    }

    fn new(handlers: Option<OnceLock<Result<(), String>>>) -> Signals {
        Signals {
            last: Arc::default(),
            count: Arc::default(),
            default_action: Arc::new(AtomicBool::new(true)),
            holders: Mutex::new(0),
            watches: AtomicUsize::new(0),
            handlers,
        }
    }

    /// Records `signal` as the process's handler records one: for a run inside a test, the
    /// `kill -<signal>` of the tool alone. A run that holds no guard would have ended, which
    /// a thread cannot be made to do: delivering then is the caller's mistake.
    pub fn deliver(&self, signal: i32) {
        let holders = self.holders.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            *holders > 0,
            "{} delivered to a run that holds no guard: it would have ended the process",
            signal_name(signal)
        );
        self.last.store(signal as usize, Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Installs the process's handlers the first time (the binary's run only).
    fn install(&self) -> Result<(), String> {
        let Some(handlers) = &self.handlers else {
            return Ok(());
        };
        handlers
            .get_or_init(|| {
                for signal in STOPPING {
                    // A signal ignored when the tool started (SIGHUP under `nohup`, SIGINT for
                    // a background job of a script) stays ignored, as the one who started it
                    // asked.
                    if is_ignored(signal) {
                        continue;
                    }
                    let (last, count) = (self.last.clone(), self.count.clone());
                    let record = move || {
                        last.store(signal as usize, Ordering::SeqCst);
                        count.fetch_add(1, Ordering::SeqCst);
                    };
                    // SAFETY: the action only stores to atomics, which is async-signal-safe.
                    // Recording comes first so that a signal is never lost, then the default
                    // action, which applies only outside a guard.
                    unsafe { signal_hook::low_level::register(signal, record) }
                        .and_then(|_| {
                            signal_hook::flag::register_conditional_default(
                                signal,
                                self.default_action.clone(),
                            )
                        })
                        .map_err(|err| {
                            format!("installing the handler of {}: {err}", signal_name(signal))
                        })?;
                }
                Ok(())
            })
            .clone()
    }

    fn holders(&self) -> std::sync::MutexGuard<'_, usize> {
        self.holders.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn received(&self) -> Option<i32> {
        match self.last.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n as i32),
        }
    }
}

/// Whether `signal` is set to be ignored (its disposition is `SIG_IGN`).
fn is_ignored(signal: i32) -> bool {
    // SAFETY: with a null new action, sigaction(2) only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The current run's signals.
fn signals() -> Arc<Signals> {
    crate::session::current().signals.clone()
}

/// While held, Ctrl-C (SIGINT), SIGTERM and SIGHUP do not end the process: they are recorded,
/// so the work under way (packer deleting its VM, a download removing its partial file) can
/// finish cleanly. When the last guard is dropped, the signals end the process again.
pub struct InterruptGuard(Arc<Signals>);

impl InterruptGuard {
    pub fn new() -> anyhow::Result<InterruptGuard> {
        let signals = signals();
        signals.install().map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut holders = signals.holders();
        *holders += 1;
        signals.default_action.store(false, Ordering::SeqCst);
        drop(holders);
        Ok(InterruptGuard(signals))
    }

    /// The last signal received since the guard was taken, if any.
    pub fn received(&self) -> Option<i32> {
        self.0.received()
    }

    /// How many signals were received since the guard was taken.
    pub fn count(&self) -> usize {
        self.0.count.load(Ordering::SeqCst)
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        let signals = &self.0;
        let mut holders = signals.holders();
        *holders -= 1;
        if *holders == 0 {
            signals.last.store(0, Ordering::SeqCst);
            signals.count.store(0, Ordering::SeqCst);
            signals.default_action.store(true, Ordering::SeqCst);
        }
    }
}

/// Whether work is under way that must not be cut off: an [`InterruptGuard`] is held that is
/// not only a wait's (packer deleting its VM, a release's builds, a download). A closed stdout
/// does not end the tool then (see `output`).
pub fn work_must_finish() -> bool {
    let signals = signals();
    let holders = signals.holders();
    *holders > signals.watches.load(Ordering::SeqCst)
}

/// A wait that a stopping signal ends: while it lives, the signals are recorded instead of
/// ending the process, and [`Watch::signal`] says whether one came since it started. A signal
/// that came before (Ctrl-C as packer finished, which is honoured after the pin) does not end
/// the waits that follow it.
pub struct Watch {
    guard: InterruptGuard,
    before: usize,
}

impl Watch {
    pub fn start() -> anyhow::Result<Watch> {
        let guard = InterruptGuard::new()?;
        let before = guard.count();
        guard.0.watches.fetch_add(1, Ordering::SeqCst);
        Ok(Watch { guard, before })
    }

    /// Whether only waits hold the signals: no build is cleaning up after itself, so a wait
    /// that a signal stopped may end the tool there, as the signal would have ended it (see
    /// [`exit_interrupted`]).
    pub fn only_waits(&self) -> bool {
        let signals = &self.guard.0;
        let holders = signals.holders();
        *holders == signals.watches.load(Ordering::SeqCst)
    }

    /// The signal that arrived since the watch started, if one did.
    pub fn signal(&self) -> Option<i32> {
        // The handler stores the signal before it counts it, so a count that has grown has
        // its signal stored.
        if self.guard.count() > self.before {
            self.guard.received()
        } else {
            None
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Before the guard goes, so that the guards never count fewer than the watches.
        self.guard.0.watches.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A signal's name for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "Ctrl-C (SIGINT)",
        signal_hook::consts::SIGTERM => "SIGTERM",
        signal_hook::consts::SIGHUP => "SIGHUP (the terminal closed)",
        _ => "a signal",
    }
}

/// Work stopped by a signal. `main` exits with 128 + the signal, as shells report a command a
/// signal ended, so a script can tell an interruption from a failure.
#[derive(Debug)]
pub struct Interrupted {
    pub signal: i32,
    message: String,
}

impl Interrupted {
    /// The error for work `signal` stopped, described by `message`.
    pub fn error(signal: i32, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Interrupted {
            signal,
            message: message.into(),
        })
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}

/// Ends the tool as `signal` would have, after saying `message` as `main` says an error: for a
/// wait whose caller goes on past a failed step (doctor's checks, a dry run's unknowns, the
/// listing after a build), which must not take the signal for one more failure.
pub fn exit_interrupted(signal: i32, message: &str) -> ! {
    errln!("error: {message}");
    crate::output::result_of_the_end(128 + signal, message);
    crate::session::end_run(128 + signal)
}

/// Whether a signal stopped the work that failed with `err`.
pub fn is_interrupted(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<Interrupted>())
}
