//! The user's terminal: questions (`prompt`), signals and exit codes (`interrupts`), and a
//! download's progress (`progress`). What the tool writes goes through `crate::output`.

mod interrupts;
mod progress;
mod prompt;

pub use interrupts::*;
pub use progress::*;
pub use prompt::*;
