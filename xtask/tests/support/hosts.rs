//! The host copies several modules start from: [`HostCopy::with_launcher`] (ready to build) with
//! images already in its project, made the way the template makes them.

use super::{HostCopy, LAUNCHER};

/// The slurm image [`super::SEED`] pins.
pub const SLURM_PINNED: &str = "det-environments-slurm-ci-1717047568";
/// The PBS image [`super::SEED`] pins.
pub const PBS_PINNED: &str = "det-environments-pbs-ci-1717016272";
/// The launcher package of images made before [`LAUNCHER`], such as [`SLURM_PINNED`] in
/// [`HostCopy::with_unlabelled_pin`].
pub const OLD_LAUNCHER: &str = "hpe-hpc-launcher_3.3.0-0_amd64.deb";

/// An image to put in a host copy's project: its name `det-environments-<wm>-ci-<created>` (the
/// workload manager and creation time are read from it) and its labels.
pub type Image<'a> = (&'a str, &'a [(&'a str, &'a str)]);

impl HostCopy {
    /// Adds the READY image `name` (`det-environments-<wm>-ci-<created>`) to the copy's project,
    /// with `labels` and the description the template gives it, `HPC <wm> testing VM <launcher>`.
    pub fn add_ci_image(&self, name: &str, launcher: &str, labels: &[(&str, &str)]) {
        let (wm, created) = name
            .strip_prefix("det-environments-")
            .and_then(|rest| rest.split_once("-ci-"))
            .unwrap_or_else(|| panic!("{name} is not named det-environments-<wm>-ci-<created>"));
        let created: i64 = created
            .parse()
            .unwrap_or_else(|_| panic!("{name} does not end with its creation time"));
        self.api().add_image(
            name,
            created,
            "READY",
            labels,
            &format!("HPC {wm} testing VM {launcher}"),
        );
    }

    /// [`HostCopy::with_launcher`] with `images` in its project, made with [`LAUNCHER`] (see
    /// [`HostCopy::add_ci_image`]).
    pub fn with_images(images: &[Image]) -> HostCopy {
        let host = HostCopy::with_launcher();
        for (name, labels) in images {
            host.add_ci_image(name, LAUNCHER, labels);
        }
        host
    }

    /// [`HostCopy::with_launcher`] whose pinned slurm image, [`SLURM_PINNED`], is in its project,
    /// made before images recorded their inputs: no labels, launcher [`OLD_LAUNCHER`].
    pub fn with_unlabelled_pin() -> HostCopy {
        let host = HostCopy::with_launcher();
        host.add_ci_image(SLURM_PINNED, OLD_LAUNCHER, &[]);
        host
    }
}
