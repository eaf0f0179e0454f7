//! The user's terminal: whether anyone can answer a question, asking it, and Ctrl-C.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;

/// Whether a person can answer a prompt: stdin and stderr are both a terminal.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks a yes/no question on the terminal; only `y` or `yes` is a yes.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer from the terminal")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Whether to go ahead with something destructive: `--yes`, or a yes at a terminal. Without a
/// terminal and without `--yes` the answer is no, at once: nothing waits for input that cannot come.
pub fn approved(yes: bool, question: &str) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !is_interactive() {
        return Ok(false);
    }
    confirm(question)
}

struct Signals {
    /// The number of the last SIGINT or SIGTERM received while a guard was held, or 0.
    received: Arc<AtomicUsize>,
    /// While false, SIGINT and SIGTERM only set `received` instead of ending the process.
    default_action: Arc<AtomicBool>,
    /// Guards held now: two builds may run at the same time, each holding one.
    holders: AtomicUsize,
}

static SIGNALS: OnceLock<Signals> = OnceLock::new();

/// While held, Ctrl-C (SIGINT) and SIGTERM do not end the process: they are recorded, so the
/// work under way (packer deleting its VM, a download removing its partial file) can finish
/// cleanly. When dropped, the signals end the process again.
pub struct InterruptGuard(());

impl InterruptGuard {
    pub fn new() -> anyhow::Result<InterruptGuard> {
        let signals = match SIGNALS.get() {
            Some(signals) => signals,
            None => {
                let signals = Signals {
                    received: Arc::default(),
                    default_action: Arc::new(AtomicBool::new(true)),
                    holders: AtomicUsize::new(0),
                };
                for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                    // Recording comes first so that a signal is never lost, then the default
                    // action, which applies only outside a guard.
                    signal_hook::flag::register_usize(
                        signal,
                        signals.received.clone(),
                        signal as usize,
                    )
                    .context("installing the Ctrl-C handler")?;
                    signal_hook::flag::register_conditional_default(
                        signal,
                        signals.default_action.clone(),
                    )
                    .context("installing the Ctrl-C handler")?;
                }
                SIGNALS.get_or_init(|| signals)
            }
        };
        signals.holders.fetch_add(1, Ordering::SeqCst);
        signals.default_action.store(false, Ordering::SeqCst);
        Ok(InterruptGuard(()))
    }

    /// The signal received since the guard was taken, if any.
    pub fn received(&self) -> Option<i32> {
        let signals = SIGNALS.get()?;
        match signals.received.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n as i32),
        }
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if let Some(signals) = SIGNALS.get() {
            if signals.holders.fetch_sub(1, Ordering::SeqCst) == 1 {
                signals.received.store(0, Ordering::SeqCst);
                signals.default_action.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// A signal's name for messages.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        signal_hook::consts::SIGINT => "Ctrl-C (SIGINT)",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
