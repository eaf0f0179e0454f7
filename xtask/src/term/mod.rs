//! The user's terminal: questions (`prompt`), signals and exit codes (`interrupts`), a
//! download's progress (`progress`), and the one line on stderr that never fails.

use std::io::Write;

mod interrupts;
mod progress;
mod prompt;

pub use interrupts::*;
pub use progress::*;
pub use prompt::*;

/// A line on stderr that may fail silently: after SIGHUP the terminal is gone, and `eprintln!`
/// would panic where the tool still has cleaning up to do.
pub fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
