//! gcloud: the only module that runs it; every call reads `--format=json` with serde.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use xshell::{cmd, Cmd, Shell};

use crate::model::list_or_none;

const INSTALL_HINT: &str =
    "install the Google Cloud CLI: https://cloud.google.com/sdk/docs/install";

/// An image of the project, as `gcloud compute images list` describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub name: String,
    #[serde(default)]
    pub family: Option<String>,
    pub creation_timestamp: String,
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A VM of the project, as `gcloud compute instances list` describes it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    /// The zone's name (the API gives its URL).
    pub zone: String,
    pub status: String,
    pub creation_timestamp: String,
    pub description: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInstance {
    name: String,
    zone: String,
    status: String,
    creation_timestamp: String,
    #[serde(default)]
    description: Option<String>,
}

/// gcloud bound to one project.
pub struct Gcloud<'a> {
    sh: &'a Shell,
    project: String,
}

impl<'a> Gcloud<'a> {
    /// Fails at once, with how to install it, when there is no gcloud on PATH.
    pub fn new(sh: &'a Shell, project: &str) -> anyhow::Result<Gcloud<'a>> {
        let path = sh.var_os("PATH").unwrap_or_default();
        if !std::env::split_paths(&path).any(|dir| dir.join("gcloud").is_file()) {
            bail!("gcloud is not on PATH: {INSTALL_HINT}");
        }
        Ok(Gcloud {
            sh,
            project: project.to_string(),
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    /// One `gcloud <args> --project=P --format=json`. Prompts are off: nothing may wait for
    /// an answer, and gcloud must not offer to enable an API (it would retry a 403 instead of
    /// reporting it).
    fn command(&self, args: &[&str]) -> Cmd<'a> {
        let project = &self.project;
        cmd!(
            self.sh,
            "gcloud {args...} --project={project} --format=json"
        )
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_CORE_SHOULD_PROMPT_TO_ENABLE_API", "false")
        .quiet()
        .ignore_status()
    }

    /// Runs gcloud; its stdout when it succeeds, else its reason. A list whose requests failed
    /// (no access to the project, an API error) still exits 0 with `[]` and only warns
    /// "Some requests did not succeed": that is a failure too, since an incomplete list would
    /// make prune count the newest images wrongly.
    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self
            .command(args)
            .output()
            .with_context(|| format!("running gcloud {}: {INSTALL_HINT}", args.join(" ")))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() && !stderr.contains("Some requests did not succeed") {
            return String::from_utf8(output.stdout).with_context(|| {
                format!("gcloud {} wrote output that is not UTF-8", args.join(" "))
            });
        }
        bail!(
            "gcloud {} failed: {}",
            args.join(" "),
            explain(&stderr, &self.project)
        )
    }

    fn json<T: DeserializeOwned>(&self, args: &[&str]) -> anyhow::Result<T> {
        let text = self.run(args)?;
        serde_json::from_str(&text)
            .with_context(|| format!("reading the JSON of gcloud {}", args.join(" ")))
    }

    /// Every image of the project: one call, without the public image projects.
    pub fn list_images(&self) -> anyhow::Result<Vec<Image>> {
        self.json(&["compute", "images", "list", "--no-standard-images"])
    }

    /// The current image of a family in this project (the project that publishes it): what
    /// a build started now would boot from.
    pub fn image_from_family(&self, family: &str) -> anyhow::Result<Image> {
        self.json(&["compute", "images", "describe-from-family", family])
    }

    /// The images that carry this input fingerprint, and the image named `pinned`: one call.
    /// gcloud applies the filter itself when the server does not.
    pub fn images_for_reuse(
        &self,
        fingerprint: &str,
        pinned: Option<&str>,
    ) -> anyhow::Result<Vec<Image>> {
        let filter = match pinned {
            Some(name) => format!("--filter=labels.input-fingerprint={fingerprint} OR name={name}"),
            None => format!("--filter=labels.input-fingerprint={fingerprint}"),
        };
        self.json(&["compute", "images", "list", "--no-standard-images", &filter])
    }

    /// The account gcloud acts as (`gcloud config get account`), `None` when none is set.
    pub fn account(&self) -> anyhow::Result<Option<String>> {
        let value: serde_json::Value = self.json(&["config", "get", "account"])?;
        Ok(value.as_str().filter(|a| !a.is_empty()).map(str::to_string))
    }

    /// One cheap read of the project: that it exists and the account may see it.
    pub fn check_project(&self) -> anyhow::Result<()> {
        self.run(&["compute", "project-info", "describe"]).map(drop)
    }

    /// Deletes images in one call. If gcloud fails part-way, the images are listed again to
    /// say which are gone and which remain.
    pub fn delete_images(&self, names: &[String]) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let mut args = vec!["compute", "images", "delete"];
        args.extend(names.iter().map(String::as_str));
        args.push("--quiet");
        let Err(err) = self.run(&args) else {
            return Ok(());
        };
        let remaining = match self.list_images() {
            Ok(images) => images,
            Err(list_err) => {
                return Err(err.context(format!(
                    "deleting images failed, and listing them again failed too ({list_err:#}): \
                     run `cargo xtask slurm-image images` to see which of {} are gone",
                    names.join(", ")
                )))
            }
        };
        let (remain, gone): (Vec<&String>, Vec<&String>) = names
            .iter()
            .partition(|name| remaining.iter().any(|image| &image.name == *name));
        Err(err.context(format!(
            "deleting images failed part-way: deleted {}; still there: {}",
            list_or_none(&gone),
            list_or_none(&remain)
        )))
    }

    /// Every VM of the project in every zone: one aggregated call.
    pub fn list_instances(&self) -> anyhow::Result<Vec<Instance>> {
        let raw: Vec<RawInstance> = self.json(&["compute", "instances", "list"])?;
        Ok(raw
            .into_iter()
            .map(|r| Instance {
                name: r.name,
                zone: last_segment(&r.zone).to_string(),
                status: r.status,
                creation_timestamp: r.creation_timestamp,
                description: r.description.unwrap_or_default(),
            })
            .collect())
    }

    /// Deletes VMs of one zone in one call.
    pub fn delete_instances(&self, zone: &str, names: &[String]) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let zone_flag = format!("--zone={zone}");
        let mut args = vec!["compute", "instances", "delete"];
        args.extend(names.iter().map(String::as_str));
        args.extend([zone_flag.as_str(), "--quiet"]);
        self.run(&args).map(drop)
    }
}

/// `.../zones/us-central1-c` -> `us-central1-c`.
fn last_segment(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

/// gcloud's own reason for a failure, with what to do about the common ones.
pub fn explain(stderr: &str, project: &str) -> String {
    // The `Deleted [...]` lines of a part-way failure are progress, not the reason.
    let reason = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Deleted ["))
        .collect::<Vec<_>>()
        .join(" ");
    let reason = match reason.split_once(") ") {
        Some((head, rest)) if head.starts_with("ERROR: (gcloud") => rest.to_string(),
        _ => reason
            .trim_start_matches("ERROR: ")
            .trim_start_matches("WARNING: ")
            .to_string(),
    };
    let lower = reason.to_ascii_lowercase();
    if lower.contains("gcloud auth login")
        || lower.contains("active account")
        || lower.contains("credentials")
        || lower.contains("reauthentication")
    {
        format!("gcloud is not logged in: run `gcloud auth login` (gcloud said: {reason})")
    } else if lower.contains("403")
        || lower.contains("permission")
        || lower.contains("forbidden")
        || lower.contains("access_denied")
    {
        format!(
            "no access to GCP project {project}: ask for access or fix gcp.project in slurm-image.toml (gcloud said: {reason})"
        )
    } else if reason.is_empty() {
        "gcloud said nothing about why".to_string()
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_carry_project_and_json() {
        let sh = Shell::new().unwrap();
        let gcloud = Gcloud {
            sh: &sh,
            project: "determined-ai".into(),
        };
        assert_eq!(
            gcloud
                .command(&["compute", "images", "list", "--no-standard-images"])
                .to_string(),
            "gcloud compute images list --no-standard-images --project=determined-ai --format=json"
        );
    }

    #[test]
    fn zones_are_named_by_the_end_of_their_url() {
        assert_eq!(
            last_segment("https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-c"),
            "us-central1-c"
        );
        assert_eq!(last_segment("us-west1-b"), "us-west1-b");
    }

    #[test]
    fn failures_are_explained() {
        let e = explain(
            "ERROR: (gcloud.compute.images.list) You do not currently have an active account selected.\nPlease run:\n\n  $ gcloud auth login\n",
            "p",
        );
        assert!(
            e.starts_with("gcloud is not logged in: run `gcloud auth login`"),
            "{e}"
        );
        assert!(
            e.contains("You do not currently have an active account"),
            "{e}"
        );
        let e = explain(
            "ERROR: (gcloud.compute.images.list) Could not fetch resource:\n - Required 'compute.images.list' permission for 'projects/p'\n",
            "p",
        );
        assert!(e.starts_with("no access to GCP project p"), "{e}");
        assert!(
            e.contains("Required 'compute.images.list' permission"),
            "{e}"
        );
        let e = explain(
            "Deleted [x].\nERROR: (gcloud.compute.images.delete) Could not fetch resource:\n - The image is in use\n",
            "p",
        );
        assert_eq!(e, "Could not fetch resource: - The image is in use");
        let e = explain(
            "WARNING: Some requests did not succeed.\n - Required 'compute.images.list' permission for 'projects/p'\n",
            "p",
        );
        assert!(e.starts_with("no access to GCP project p"), "{e}");
        assert!(
            e.contains("Some requests did not succeed. - Required"),
            "{e}"
        );
    }

    #[test]
    fn images_and_instances_parse_from_gcloud_json() {
        let images: Vec<Image> = serde_json::from_str(
            r#"[{"name": "a", "creationTimestamp": "2024-05-30T05:39:28.123-07:00", "status": "READY",
                 "selfLink": "x", "family": "f", "labels": {"branch": "main"}, "description": "d"},
                {"name": "b", "creationTimestamp": "2024-05-30T05:39:28.123-07:00", "status": "PENDING"}]"#,
        )
        .unwrap();
        assert_eq!(images[0].labels["branch"], "main");
        assert_eq!(images[0].family.as_deref(), Some("f"));
        assert!(images[1].labels.is_empty() && images[1].description.is_none());
    }
}
