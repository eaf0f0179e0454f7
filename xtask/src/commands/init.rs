//! `init`: install the Packer plugins the template requires, as `make init` did.

use clap::Args;
use xshell::Shell;

use crate::commands::HelpFooter;
use crate::edges::packer;
use crate::host::HostTree;
use crate::steps::host_files::read_template;

/// Install the Packer plugins the template requires (`packer init`).
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[("init", "install the googlecompute and ansible plugins (packer 1.7.0 or later)")],
    environment: &[],
    config: &[],
}.render())]
pub struct Init {}

impl Init {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        packer::check_version(sh, &read_template(host)?)?;
        let _dir = sh.push_dir(&host.packer_dir);
        let init = packer::init(sh);
        // Echoed here, not by xshell, whose echo panics when stderr is gone.
        errln!("$ {init}");
        crate::output::run_child(init.quiet())
    }
}
