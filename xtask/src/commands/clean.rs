//! `clean`: removes the build folder, with the launcher packages and partial downloads in it.

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::HelpFooter;
use crate::edges::artifactory;
use crate::host::HostTree;

/// Remove tools/slurm/packer/build/ (the launcher packages and any partial download).
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[("clean", "remove build/; a later build fetches the launcher again")],
    environment: &[],
    config: &[],
}.render())]
pub struct Clean {}

impl Clean {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let shown = host.show(&host.build_dir);
        if !sh.path_exists(&host.build_dir) {
            outln!("{shown} does not exist: nothing to clean");
            return Ok(());
        }
        // Partial downloads of earlier runs are said apart: they are what grows unnoticed.
        let sweep = artifactory::remove_stale_partials(&host.build_dir)?;
        if let Some(summary) = sweep.summary() {
            outln!("{summary}");
        }
        if !sweep.in_use.is_empty() {
            let names: Vec<String> = sweep.in_use.iter().map(|p| host.show(p)).collect();
            bail!(
                "a launcher download is running in another process ({}): {shown} is left as it is; \
                 run clean again when it has finished",
                names.join(", ")
            );
        }
        sh.remove_path(&host.build_dir)?;
        outln!("removed {shown}");
        Ok(())
    }
}
