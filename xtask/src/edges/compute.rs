//! The cloud as the tool sees it: the Compute Engine calls it makes, and nothing about how.
//!
//! [`Compute`] is the seam between the steps and the cloud. In a run of the tool it is
//! `gcloud` ([`super::gcloud::Gcloud`]); the tests put an in-process fake behind it, so that a
//! build, a prune or a verification is tested in milliseconds, and keep the real gcloud for
//! the contract tier, which makes each of these calls once through it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use xshell::Shell;

use crate::model::image::Image;
use crate::model::verification::Vm;

/// The Compute Engine calls of one project.
pub trait Compute {
    /// The project every call is about.
    fn project(&self) -> &str;

    /// Every image of the project, deprecated ones included, without the public image
    /// projects; `what` says what the list is for, in the line that announces the wait.
    fn list_images_for(&self, what: &str) -> anyhow::Result<Vec<Image>>;

    /// [`Compute::list_images_for`], announced as a plain listing.
    fn list_images(&self) -> anyhow::Result<Vec<Image>> {
        self.list_images_for("listing the images")
    }

    /// The current image of a family of this project: what a build started now boots from.
    fn image_from_family(&self, family: &str) -> anyhow::Result<Image>;

    /// One image of the project, by name.
    fn describe_image(&self, name: &str) -> anyhow::Result<Image>;

    /// Adds labels to an image, keeping those it has.
    fn add_image_labels(&self, image: &str, labels: &[(String, String)]) -> anyhow::Result<()>;

    /// Deprecates an image, naming its replacement and recording `at` (RFC 3339) as the
    /// moment: the date a later prune counts its grace from.
    fn deprecate_image(
        &self,
        image: &str,
        replacement: Option<&str>,
        at: &str,
    ) -> anyhow::Result<()>;

    /// Makes a deprecated image ACTIVE again, clearing its deprecation.
    fn reactivate_image(&self, image: &str) -> anyhow::Result<()>;

    /// Deletes images; a failure says which of them are gone and which remain.
    fn delete_images(&self, names: &[String]) -> anyhow::Result<()>;

    /// Every VM of the project, in every zone.
    fn list_instances(&self) -> anyhow::Result<Vec<Instance>>;

    /// Deletes VMs of one zone.
    fn delete_instances(&self, zone: &str, names: &[String]) -> anyhow::Result<()>;

    /// Boots `vm` with `startup_script` as its startup script, with no external address and
    /// a fuse that has GCE delete it after `vm.fuse_s` seconds; returns once GCE created it.
    fn create_instance(&self, vm: &Vm, startup_script: &Path) -> anyhow::Result<()>;

    /// The VM's serial console from byte `start` on. Read every few seconds during a
    /// verification, which says its own progress, so the call says nothing.
    fn serial_output(&self, zone: &str, name: &str, start: u64) -> anyhow::Result<SerialOutput>;

    /// The account the calls act as, `None` when none is set.
    fn account(&self) -> anyhow::Result<Option<String>>;

    /// One cheap read of the project: that it exists and the account may see it.
    fn check_project(&self) -> anyhow::Result<()>;
}

/// How a run of the tool reaches the cloud: each command connects once per project and
/// thread. The binary connects through gcloud; a test hands its fake to the run.
pub trait Cloud: Send + Sync {
    fn connect<'s>(&self, sh: &'s Shell, project: &str) -> anyhow::Result<Box<dyn Compute + 's>>;
}

/// The cloud of this run of the tool, for `project`.
pub fn connect<'s>(sh: &'s Shell, project: &str) -> anyhow::Result<Box<dyn Compute + 's>> {
    crate::session::current().cloud().connect(sh, project)
}

/// A VM of the project, as the Compute API describes it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    /// The zone's name (the API gives its URL).
    pub zone: String,
    pub status: String,
    pub creation_timestamp: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
}

/// A piece of a VM's serial console: the text from the asked-for byte on, where it starts and
/// where the next read starts.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SerialOutput {
    #[serde(default)]
    pub contents: String,
    /// Where `contents` starts: beyond the byte asked for when GCE had dropped the output
    /// between (it keeps only the console's last 1 MiB).
    #[serde(default, deserialize_with = "number_or_text")]
    pub start: u64,
    #[serde(default, deserialize_with = "number_or_text")]
    pub next: u64,
}

/// The API writes 64-bit integers as JSON strings; gcloud passes them on as they are.
fn number_or_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    match Either::deserialize(deserializer)? {
        Either::Number(n) => Ok(n),
        Either::Text(t) => t.parse().map_err(serde::de::Error::custom),
    }
}

/// `.../zones/us-central1-c` -> `us-central1-c`.
pub fn last_segment(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}
