//! The user's terminal: questions (`prompt`), signals (`interrupts`), exit codes (`exit`), and
//! a download's progress (`progress`). What the tool writes goes through `crate::output`.

pub mod exit;
mod interrupts;
mod progress;
mod prompt;

pub use interrupts::*;
pub use progress::*;
pub use prompt::*;
