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
        let output = packer::fmt(sh, self.check).ignore_status().output()?;
        let listed = String::from_utf8_lossy(&output.stdout);
        print!("{listed}");
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        match output.status.code() {
            Some(0) => Ok(()),
            // `packer fmt -check` exits 3 and lists the files it would change.
            Some(3) if self.check => bail!(
                "{} needs formatting ({}): run `cargo xtask slurm-image fmt`",
                host.show(&host.packer_dir),
                listed.split_whitespace().collect::<Vec<_>>().join(", ")
            ),
            code => bail!("`packer fmt` failed (exit {code:?})"),
        }
    }
}
