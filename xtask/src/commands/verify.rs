//! `verify`: boot a pinned or named image on a short-lived VM, run the checks on it and report.

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::flags::FormatFlags;
use crate::commands::{HelpFooter, WorkloadManagerArg, GCLOUD_ENVIRONMENT};
use crate::edges::compute;
use crate::edges::packer::Output;
use crate::host::HostTree;
use crate::model::records::{self, Outcome, Record};
use crate::model::verification::{bill_of_materials, Verified};
use crate::model::WorkloadManager;
use crate::output;
use crate::steps::build::record;
use crate::steps::host_files::{load_config, read_images_conf, read_template};
use crate::steps::verify::{expected_of, verify, workload_manager_of, Failed, Gate};
use crate::term::exit::Failure;

/// Verify an image on demand: boot it on a short-lived VM, run the checks script, report.
///
/// The same step a build runs before its pin, without the pin unless asked: the VM is deleted
/// in every case and the image labelled verified or failed with its bill of materials.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("verify", "verify the SLURM image images.conf pins"),
        ("verify --wm pbs", "the same for PBS"),
        ("verify det-environments-slurm-ci-1717047568 --pin", "verify this image and pin it if it passes"),
    ],
    environment: &[GCLOUD_ENVIRONMENT],
    config: &["gcp.project", "[image]", "[verify]"],
}.render())]
pub struct Verify {
    /// The image to verify [default: the one images.conf pins for --wm].
    pub image: Option<String>,
    /// The workload manager whose pinned image to verify, when no image is named.
    #[arg(long, value_enum, ignore_case = true, default_value_t = WorkloadManagerArg::Slurm, conflicts_with = "image")]
    pub wm: WorkloadManagerArg,
    /// Pin the image in images.conf for its workload manager if it passes; an image a rollback
    /// revoked only with --allow-revoked.
    #[arg(long, requires = "image")]
    pub pin: bool,
    /// With --pin: pin it even though a rollback revoked it.
    #[arg(long, requires = "pin")]
    pub allow_revoked: bool,
    /// Kept for scripts that use it: `cargo xtask slurm-image pin IMAGE --unverified` replaces it.
    #[arg(long, requires = "image", conflicts_with = "pin", hide = true)]
    pub pin_unverified: bool,
    #[command(flatten)]
    pub output: FormatFlags,
}

impl Verify {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        self.output.start();
        let config = load_config(host)?;
        let template = read_template(host)?;
        let wm = WorkloadManager::from(self.wm);
        let image = match &self.image {
            Some(image) => image.clone(),
            None => match read_images_conf(host)?.pinned(wm) {
                Some(image) => image.to_string(),
                None => bail!(
                    "{} pins no {} image: name the image to verify",
                    host.show(&host.images_conf),
                    wm
                ),
            },
        };
        let gcloud = compute::connect(sh, &config.gcp.project)?;
        let described = gcloud.describe_image(&image)?;
        if self.pin && described.is_revoked() && !self.allow_revoked {
            // Refused before a VM is spent on it.
            bail!(
                "{image} was revoked by a rollback: no build reuses it and `verify --pin` does not pin it again \
                 unless asked; to verify and pin it all the same, add --allow-revoked"
            );
        }
        if self.pin_unverified {
            let wm = workload_manager_of(&image, &described.labels)?;
            outln!(
                "pinning {image} without verifying it (its labels say: {})",
                described.verification()
            );
            let change = record(host, wm, &image, Output::Inherit)?;
            output::record(&Record::Result(Outcome {
                workload_managers: vec![records::Image {
                    workload_manager: wm,
                    image: image.clone(),
                    how: "existing",
                    verification: (&Verified::Skipped("--pin-unverified".to_string())).into(),
                    pinned: true,
                    images_conf: Some(records::change_word(&change)),
                }],
                ..Outcome::done("verify")
            }));
            return Ok(());
        }
        let setup = match Gate::read(host, &config, &template, false)? {
            Gate::Verify(setup) => setup,
            Gate::Skip(why) => bail!("cannot verify {image}: {why}"),
        };
        let expected = expected_of(
            &setup,
            &image,
            &described.labels,
            described.description.as_deref(),
        )?;
        // Its labels were read just above: the labelling adds to them without reading again.
        let outcome = verify(
            host,
            gcloud.as_ref(),
            &setup,
            &image,
            &expected,
            Some(described.labels.clone()),
            Output::Inherit,
        )?;
        // Each check was said as it arrived: the end says only the outcome.
        if !outcome.report.passed() {
            return Err(Failure::Verification.mark(Failed::new(&image, &outcome).into()));
        }
        let bom = bill_of_materials(&outcome.labels)
            .into_iter()
            .map(|(what, version)| format!("{what} {version}"))
            .collect::<Vec<_>>();
        outln!("{image} passed every check; it holds: {}", bom.join(", "));
        let change = match self.pin {
            true => Some(record(host, expected.wm, &image, Output::Inherit)?),
            false => None,
        };
        output::record(&Record::Result(Outcome {
            workload_managers: vec![records::Image {
                workload_manager: expected.wm,
                image: image.clone(),
                how: "existing",
                verification: (&Verified::Passed(outcome.report.checks.clone())).into(),
                pinned: change.is_some(),
                images_conf: change.as_ref().map(records::change_word),
            }],
            ..Outcome::done("verify")
        }));
        Ok(())
    }
}
