//! `cargo xtask`: the project's own tooling, starting with the GCE images of the HPC test clusters.

mod commands;
mod edges;
mod host;
mod model;
mod steps;
mod term;

use clap::{Parser, Subcommand};
use xshell::Shell;

use crate::commands::SlurmImage;
use crate::host::HostTree;

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
}

#[derive(Subcommand)]
enum Command {
    /// Bake, record and manage the GCE images the SLURM and PBS test clusters boot.
    #[command(subcommand)]
    SlurmImage(SlurmImage),
}

fn main() {
    if let Err(err) = try_main() {
        // Not `eprintln!`: after SIGHUP the terminal is gone, and the exit code still matters.
        term::say(format_args!("error: {err:#}"));
        std::process::exit(term::exit_code(&err));
    }
}

fn try_main() -> anyhow::Result<()> {
    let xtask = Xtask::parse();
    let sh = Shell::new()?;
    let host = HostTree::find(&sh.current_dir())?;
    sh.change_dir(&host.root);
    match xtask.command {
        Command::SlurmImage(cmd) => cmd.run(&sh, &host),
    }
}
