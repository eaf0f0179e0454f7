//! Questions to the person at the terminal: whether anyone can answer one, and asking it.

use std::io::BufRead;

use anyhow::Context;

/// Whether a person can answer a prompt: stdin and stderr are both a terminal.
pub fn is_interactive() -> bool {
    crate::session::is_terminal(crate::session::Stdio::Stdin)
        && crate::session::is_terminal(crate::session::Stdio::Stderr)
}

/// Asks a yes/no question on the terminal; only `y` or `yes` is a yes.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    err!("{question} [y/N] ");
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
