//! packer's manifest: which image the latest run made.
//!
//! The `manifest` post-processor appends each run to an existing file, so the build that counts
//! is the one whose `packer_run_uuid` is the file's `last_run_uuid`, not the first one.

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::model::is_gce_image_name;

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    builds: Vec<ManifestBuild>,
    last_run_uuid: Option<String>,
}

/// One build recorded in the manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ManifestBuild {
    pub name: String,
    pub builder_type: String,
    pub artifact_id: String,
    pub packer_run_uuid: String,
    #[serde(default)]
    pub custom_data: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The build of packer's latest run, whatever came before it in the file.
pub fn latest_build(json: &str) -> anyhow::Result<ManifestBuild> {
    let manifest: Manifest =
        serde_json::from_str(json).context("packer's manifest is not the JSON packer writes")?;
    let Some(last) = manifest.last_run_uuid.filter(|uuid| !uuid.is_empty()) else {
        bail!("packer's manifest has no last_run_uuid, so it does not say which run is the latest");
    };
    let mut builds = manifest
        .builds
        .into_iter()
        .filter(|b| b.packer_run_uuid == last);
    let Some(build) = builds.next() else {
        bail!("packer's manifest has no build of its last run {last}");
    };
    if builds.next().is_some() {
        bail!("packer's manifest has several builds of its last run {last}; the template should have one");
    }
    Ok(build)
}

/// The image name of the latest run, checked to be a GCE image name.
pub fn latest_image(json: &str) -> anyhow::Result<String> {
    let build = latest_build(json)?;
    if !is_gce_image_name(&build.artifact_id) {
        bail!(
            "the latest build in packer's manifest made {:?} ({} builder), which is not a GCE image name",
            build.artifact_id,
            build.builder_type
        );
    }
    Ok(build.artifact_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs appended to one file, as the real packer 1.6.6 writes them.
    const TWO_RUNS: &str = r#"{
  "builds": [
    {"name": "x", "builder_type": "googlecompute", "build_time": 1795501385, "files": null,
     "artifact_id": "det-environments-pbs-ci-1795501385", "packer_run_uuid": "5974d1c4-decb-09ff-5cf1-dbc2640c1790",
     "custom_data": {"wm": "pbs"}},
    {"name": "x", "builder_type": "googlecompute", "build_time": 1795501999, "files": null,
     "artifact_id": "det-environments-slurm-ci-1795501999", "packer_run_uuid": "16b0fd84-392b-2fb0-b921-72a61b8a1478",
     "custom_data": {"wm": "slurm"}}
  ],
  "last_run_uuid": "16b0fd84-392b-2fb0-b921-72a61b8a1478"
}"#;

    #[test]
    fn takes_the_build_of_the_last_run_not_the_first() {
        assert_eq!(
            latest_image(TWO_RUNS).unwrap(),
            "det-environments-slurm-ci-1795501999"
        );
        let build = latest_build(TWO_RUNS).unwrap();
        assert_eq!(build.custom_data.unwrap()["wm"], "slurm");
    }

    #[test]
    fn the_last_run_may_come_first_in_the_file() {
        let json = TWO_RUNS.replace(
            "16b0fd84-392b-2fb0-b921-72a61b8a1478\"\n}",
            "5974d1c4-decb-09ff-5cf1-dbc2640c1790\"\n}",
        );
        assert_eq!(
            latest_image(&json).unwrap(),
            "det-environments-pbs-ci-1795501385"
        );
    }

    #[test]
    fn a_missing_last_run_uuid_is_an_error() {
        let json = r#"{"builds": [{"name": "x", "builder_type": "googlecompute", "artifact_id": "a", "packer_run_uuid": "u"}]}"#;
        let err = latest_image(json).unwrap_err().to_string();
        assert!(err.contains("no last_run_uuid"), "{err}");
    }

    #[test]
    fn an_unknown_last_run_uuid_is_an_error() {
        let json = TWO_RUNS.replace("\"last_run_uuid\": \"16b0", "\"last_run_uuid\": \"ffff");
        let err = latest_image(&json).unwrap_err().to_string();
        assert!(err.contains("no build of its last run ffff"), "{err}");
    }

    #[test]
    fn an_artifact_that_is_not_an_image_name_is_an_error() {
        let json = TWO_RUNS.replace("det-environments-slurm-ci-1795501999", "Null");
        let err = latest_image(&json).unwrap_err().to_string();
        assert!(err.contains("\"Null\""), "{err}");
        assert!(err.contains("not a GCE image name"), "{err}");
    }

    #[test]
    fn garbage_is_an_error() {
        let err = format!("{:#}", latest_image("not json").unwrap_err());
        assert!(err.contains("not the JSON packer writes"), "{err}");
    }
}
