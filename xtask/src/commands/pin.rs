//! `pin`: pins an existing image in images.conf, verified or, when told, unverified.

use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, GCLOUD_ENVIRONMENT};
use crate::edges::compute;
use crate::edges::packer::Output;
use crate::host::HostTree;
use crate::model::rollback::{pinnable, PinnedAs};
use crate::steps::build::record;
use crate::steps::host_files::load_config;
use crate::steps::verify::workload_manager_of;

/// Pin an existing image for its workload manager, without booting it.
///
/// The image must be READY and one of this tool's (its name says the workload manager). A
/// verified image is pinned as it is; any other only with --unverified, and the pin says so.
/// An image a rollback revoked is refused unless --allow-revoked.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("pin det-environments-slurm-ci-1717047568", "pin this verified image"),
        ("pin det-environments-slurm-ci-1717047568 --unverified", "pin it although it was never verified or failed"),
    ],
    environment: &[GCLOUD_ENVIRONMENT],
    config: &["gcp.project"],
}.render())]
pub struct Pin {
    /// The image to pin.
    pub image: String,
    /// Pin it even though it was never verified or failed verification.
    #[arg(long)]
    pub unverified: bool,
    /// Pin it even though a rollback revoked it.
    #[arg(long)]
    pub allow_revoked: bool,
}

impl Pin {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let config = load_config(host)?;
        let image = compute::connect(sh, &config.gcp.project)?.describe_image(&self.image)?;
        let wm = workload_manager_of(&image.name, &image.labels)?;
        let how = pinnable(&image, wm, self.unverified, self.allow_revoked)?;
        match how {
            PinnedAs::Verified => outln!("pinning {} for {wm}: it is verified", image.name),
            PinnedAs::Unverified(verification) => outln!(
                "pinning {} for {wm} unverified, as asked (its labels say: {verification})",
                image.name
            ),
        }
        record(host, wm, &image.name, Output::Inherit)?;
        Ok(())
    }
}
