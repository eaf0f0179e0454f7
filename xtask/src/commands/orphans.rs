use clap::Args;
use xshell::Shell;

use crate::host::HostTree;

/// (issue 4)
#[derive(Args)]
pub struct Orphans {}

impl Orphans {
    pub fn run(self, _sh: &Shell, _host: &HostTree) -> anyhow::Result<()> {
        anyhow::bail!("not built yet (issue 4)")
    }
}
