use clap::Args;
use xshell::Shell;

use crate::commands::HelpFooter;
use crate::host::HostTree;

/// Remove tools/slurm/packer/build/ (launcher packages, variables files, manifests, logs).
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[("clean", "remove build/; a later build fetches the launcher again")],
    environment: &[],
    config: &[],
}.render())]
pub struct Clean {}

impl Clean {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        if sh.path_exists(&host.build_dir) {
            sh.remove_path(&host.build_dir)?;
            println!("removed {}", host.show(&host.build_dir));
        } else {
            println!(
                "{} does not exist: nothing to clean",
                host.show(&host.build_dir)
            );
        }
        Ok(())
    }
}
