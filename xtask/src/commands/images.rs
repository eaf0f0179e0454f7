//! `images`: the images of both workload managers, and what prune would delete.

use clap::Args;
use xshell::Shell;

use crate::host::HostTree;
use crate::model::config::Config;
use crate::model::WorkloadManager;

/// List the images of both workload managers, newest first, marking pinned and prunable ones.
#[derive(Args)]
pub struct Images {}

impl Images {
    pub fn run(self, _sh: &Shell, _host: &HostTree) -> anyhow::Result<()> {
        anyhow::bail!("listing images is not built yet (issue 4)")
    }
}

/// After a build: the workload manager's images with the prune hint. A failure here only
/// warns: the image is built and pinned already.
pub fn after_build(_sh: &Shell, _host: &HostTree, _config: &Config, _wm: WorkloadManager) {}
