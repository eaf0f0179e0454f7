//! `cargo xtask`: the project's own tooling, starting with the GCE images of the HPC test clusters.

// First, so that its macros (`outln!`, `errln!`, ...) are in scope in every module after it.
#[macro_use]
mod output;

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

fn main() {
    let xtask = parse();
    output::stamp_lines(
        match xtask.timestamps.or_else(timestamps_from_environment) {
            Some(Timestamps::Always) => true,
            Some(Timestamps::Never) => false,
            Some(Timestamps::Auto) | None => !std::io::IsTerminal::is_terminal(&std::io::stdout()),
        },
    );
    if let Err(err) = try_main(xtask) {
        errln!("error: {err:#}");
        std::process::exit(term::exit::exit_code(&err));
    }
}

/// SLURM_IMAGE_TIMESTAMPS, read as the flag is (clap's `env` feature would cost every user a
/// longer first build for this one variable). A value it does not know is `auto`, said once.
fn timestamps_from_environment() -> Option<Timestamps> {
    let value = std::env::var("SLURM_IMAGE_TIMESTAMPS").ok()?;
    let known = <Timestamps as clap::ValueEnum>::from_str(&value, true).ok();
    if known.is_none() {
        errln!(
            "warning: SLURM_IMAGE_TIMESTAMPS={value:?} is not auto, always or never: auto it is"
        );
    }
    known
}

/// The command line, or the end of the tool with clap's help, version or usage error. They are
/// written through `output`, not by clap, which would exit 0 after `--help | head -1` found
/// the pipe closed where every other command exits as a closed pipe ends it.
fn parse() -> Xtask {
    Xtask::try_parse().unwrap_or_else(|err| {
        let stream = if err.use_stderr() {
            output::Stream::Stderr
        } else {
            output::Stream::Stdout
        };
        output::write(stream, format_args!("{}", err.render()));
        std::process::exit(err.exit_code())
    })
}

fn try_main(xtask: Xtask) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    let host = HostTree::find(&sh.current_dir())?;
    sh.change_dir(&host.root);
    match xtask.command {
        Command::SlurmImage(cmd) => cmd.run(&sh, &host),
    }
}
