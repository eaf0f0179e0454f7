//! `fmt`: the template in packer's layout, as `make fmt` and `make check` did.

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::HelpFooter;
use crate::edges::packer;
use crate::host::HostTree;

/// Format the Packer template (`packer fmt`), or with `--check` fail if it needs formatting.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("fmt", "rewrite the template's files in packer's layout"),
        ("fmt --check", "change nothing; fail and name the files that need it"),
    ],
    environment: &[],
    config: &[],
}.render())]
pub struct Fmt {
    /// Change nothing; fail if a file would be reformatted.
    #[arg(long)]
    pub check: bool,
}

impl Fmt {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let _dir = sh.push_dir(&host.packer_dir);
        match packer::run_fmt(sh, self.check)? {
            packer::Formatting::Done => Ok(()),
            packer::Formatting::Needed(files) => bail!(
                "{} needs formatting ({}): run `cargo xtask slurm-image fmt`",
                host.show(&host.packer_dir),
                files.join(", ")
            ),
        }
    }
}
