//! `rollback`: pins again the image images.conf pinned before, and revokes the one it replaces.

use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, WorkloadManagerArg, GCLOUD_ENVIRONMENT};
use crate::edges::compute;
use crate::edges::git;
use crate::edges::packer::Output;
use crate::host::HostTree;
use crate::model::image::REVOKED;
use crate::model::rollback;
use crate::model::time::{rfc3339_utc, utc_date};
use crate::model::WorkloadManager;
use crate::steps::build::record;
use crate::steps::host_files::{load_config, read_images_conf};
use crate::steps::survey::now;

/// How far back images.conf's history is read: years of pins.
const HISTORY: usize = 200;

/// Go back to the image pinned before the current one, and revoke the current one.
///
/// Pins the image images.conf pinned before (from git history; one that a rollback revoked is
/// passed), if it still exists, boots and did not fail verification, or the image --to names.
/// The image it replaces gets a `revoked` label and is deprecated with the restored image as
/// replacement: no build reuses it, and `pin` and `verify --pin` refuse it unless told. A
/// restored image that prune had deprecated is made ACTIVE again. Commit images.conf after.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("rollback", "pin the SLURM image pinned before the current one, and revoke the current one"),
        ("rollback --wm pbs --to det-environments-pbs-ci-1717016272", "go back to that PBS image"),
    ],
    environment: &[GCLOUD_ENVIRONMENT],
    config: &["gcp.project"],
}.render())]
pub struct Rollback {
    /// The workload manager whose pin to take back.
    #[arg(long, value_enum, ignore_case = true, default_value_t = WorkloadManagerArg::Slurm)]
    pub wm: WorkloadManagerArg,
    /// The image to go back to, instead of the one pinned before.
    #[arg(long, value_name = "IMAGE")]
    pub to: Option<String>,
}

impl Rollback {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let config = load_config(host)?;
        let wm = WorkloadManager::from(self.wm);
        let Some(current) = read_images_conf(host)?.pinned(wm).map(str::to_string) else {
            bail!(
                "{} pins no {wm} image: there is nothing to roll back; pin one with `cargo xtask slurm-image pin IMAGE`",
                host.show(&host.images_conf)
            );
        };
        let history = match git::images_conf_history(sh, &host.root, HISTORY)? {
            Some(history) => history,
            None if self.to.is_some() => Vec::new(),
            None => bail!(
                "{} is not the root of a git checkout, so images.conf's history cannot say what was pinned before: \
                 name the image to go back to with `cargo xtask slurm-image rollback --wm {wm} --to IMAGE`",
                host.root.display()
            ),
        };
        let gcloud = compute::connect(sh, &config.gcp.project)?;
        let images = gcloud.list_images_for("looking up the images to roll back between")?;
        let decided = rollback::rollback(wm, &current, &history, &images, self.to.as_deref())?;
        let (restored, revoked) = (&decided.restored, &decided.revoked);
        outln!("rolling back {wm}: {restored} replaces {revoked}, which is revoked");
        let now = now();
        if decided.revoked_exists {
            // The label first: once it is there no build reuses the image, whatever fails next.
            gcloud
                .add_image_labels(revoked, &[(REVOKED.to_string(), utc_date(now))])
                .with_context(|| format!("marking {revoked} revoked; images.conf is unchanged"))?;
            gcloud
                .deprecate_image(revoked, Some(restored), &rfc3339_utc(now))
                .with_context(|| {
                    format!(
                        "deprecating {revoked}, which is marked revoked; images.conf is unchanged"
                    )
                })?;
        } else {
            outln!("note: {revoked} is no longer in the project: there is nothing to revoke");
        }
        if decided.reactivate {
            gcloud.reactivate_image(restored).with_context(|| {
                format!("making {restored} active again; {revoked} is revoked and images.conf is unchanged")
            })?;
            outln!("{restored} was deprecated: it is ACTIVE again");
        }
        record(host, wm, restored, Output::Inherit)?;
        outln!(
            "pinned {restored} for {wm}; {revoked} is revoked: no build reuses it, and `pin` and `verify --pin` \
             refuse it without --allow-revoked. Commit {} to roll the clusters back",
            host.show(&host.images_conf)
        );
        Ok(())
    }
}
