//! An image of the project as the Compute API describes it, parsed once from gcloud's JSON: what
//! reuse, prune, `images` and verification read of it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::model::time::parse_rfc3339;
use crate::model::verification;
use crate::model::WorkloadManager;

/// The label a rollback puts on the image it takes back: no build reuses it, and a pin of it
/// is refused unless asked for.
pub const REVOKED: &str = "revoked";

/// An image of a project.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "ImageJson")]
pub struct Image {
    pub name: String,
    pub family: Option<String>,
    /// `creationTimestamp` as the API wrote it, for a person to read.
    pub creation_timestamp: String,
    /// Seconds since the Unix epoch; `None` when `creation_timestamp` cannot be read.
    pub created: Option<i64>,
    pub status: ImageStatus,
    pub labels: BTreeMap<String, String>,
    pub description: Option<String>,
    /// `None` for an image nobody deprecated (the API then has no `deprecated` field, or an
    /// ACTIVE one).
    pub deprecation: Option<Deprecation>,
}

/// The image's own state in GCE: only a READY image boots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageStatus {
    Ready,
    Pending,
    Failed,
    Deleting,
    /// A status this tool does not know, as the API wrote it.
    Other(String),
}

impl ImageStatus {
    fn from_api(text: &str) -> ImageStatus {
        match text {
            "READY" => ImageStatus::Ready,
            "PENDING" => ImageStatus::Pending,
            "FAILED" => ImageStatus::Failed,
            "DELETING" => ImageStatus::Deleting,
            other => ImageStatus::Other(other.to_string()),
        }
    }
}

impl fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageStatus::Ready => "READY",
            ImageStatus::Pending => "PENDING",
            ImageStatus::Failed => "FAILED",
            ImageStatus::Deleting => "DELETING",
            ImageStatus::Other(text) => text,
        })
    }
}

/// How an image's last verification went, as its `verification` label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verification {
    /// It booted and failed the checks (or timed out).
    Failed,
    /// Never verified: built with `--no-verify`, before verification existed, or never booted.
    Unverified,
    /// It booted and passed every check.
    Verified,
}

impl Verification {
    pub fn of(labels: &BTreeMap<String, String>) -> Verification {
        match labels.get(verification::STATUS).map(String::as_str) {
            Some(verification::VERIFIED) => Verification::Verified,
            Some(verification::FAILED) => Verification::Failed,
            _ => Verification::Unverified,
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verification::Verified => "verified",
            Verification::Failed => "FAILED",
            Verification::Unverified => "never verified",
        })
    }
}

/// GCE's deprecation states past ACTIVE. A DEPRECATED image still boots for anyone who names
/// it, with a warning; OBSOLETE and DELETED ones do not. Nothing moves an image between them
/// by itself: the dates are only a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeprecationState {
    Deprecated,
    Obsolete,
    Deleted,
}

impl DeprecationState {
    fn from_api(text: &str) -> Option<DeprecationState> {
        match text {
            "DEPRECATED" => Some(DeprecationState::Deprecated),
            "OBSOLETE" => Some(DeprecationState::Obsolete),
            "DELETED" => Some(DeprecationState::Deleted),
            _ => None,
        }
    }
}

impl fmt::Display for DeprecationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeprecationState::Deprecated => "DEPRECATED",
            DeprecationState::Obsolete => "OBSOLETE",
            DeprecationState::Deleted => "DELETED",
        })
    }
}

/// An image's deprecation: its state, the image that replaces it, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    pub state: DeprecationState,
    /// The name of the replacing image (the API gives its URL).
    pub replacement: Option<String>,
    /// When it was deprecated (seconds since the epoch), as recorded on the image; `None` when
    /// whoever deprecated it recorded no time.
    pub since: Option<i64>,
}

impl Image {
    /// The workload manager of one of this tool's images, by its name.
    pub fn wm(&self) -> Option<WorkloadManager> {
        wm_of_image(&self.name)
    }

    pub fn verification(&self) -> Verification {
        Verification::of(&self.labels)
    }

    pub fn is_ready(&self) -> bool {
        self.status == ImageStatus::Ready
    }

    /// Whether a rollback took it back.
    pub fn is_revoked(&self) -> bool {
        self.labels.contains_key(REVOKED)
    }
}

/// The workload manager of an image this tool built: `det-environments-<wm>-ci-*`. Images of
/// other names in the project are not ours to list or prune.
pub fn wm_of_image(name: &str) -> Option<WorkloadManager> {
    WorkloadManager::ALL.into_iter().find(|wm| {
        name.strip_prefix("det-environments-")
            .and_then(|rest| rest.strip_prefix(wm.key()))
            .is_some_and(|rest| rest.starts_with("-ci-"))
    })
}

/// An image as gcloud's `--format=json` writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageJson {
    name: String,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    creation_timestamp: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    deprecated: Option<DeprecationJson>,
}

/// The API's `DeprecationStatus`.
#[derive(Deserialize)]
struct DeprecationJson {
    #[serde(default)]
    state: String,
    #[serde(default)]
    replacement: Option<String>,
    #[serde(default)]
    deprecated: Option<String>,
}

impl From<ImageJson> for Image {
    fn from(json: ImageJson) -> Image {
        let deprecation = json.deprecated.and_then(|d| {
            Some(Deprecation {
                state: DeprecationState::from_api(&d.state)?,
                replacement: d
                    .replacement
                    .filter(|r| !r.is_empty())
                    .map(|url| last_segment(&url).to_string()),
                since: d.deprecated.as_deref().and_then(parse_rfc3339),
            })
        });
        Image {
            created: parse_rfc3339(&json.creation_timestamp),
            name: json.name,
            family: json.family,
            creation_timestamp: json.creation_timestamp,
            status: ImageStatus::from_api(&json.status),
            labels: json.labels,
            description: json.description,
            deprecation,
        }
    }
}

/// `.../global/images/NAME` -> `NAME`.
fn last_segment(url: &str) -> &str {
    url.trim_end_matches('/').rsplit('/').next().unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_parse_from_gcloud_json() {
        let images: Vec<Image> = serde_json::from_str(
            r#"[{"name": "det-environments-slurm-ci-1", "creationTimestamp": "2024-05-30T05:39:28.123-07:00",
                 "status": "READY", "selfLink": "x", "family": "f",
                 "labels": {"branch": "main", "verification": "verified"}, "description": "d"},
                {"name": "b", "creationTimestamp": "yesterday", "status": "PENDING"},
                {"name": "c", "creationTimestamp": "2024-05-30T05:39:28.123-07:00", "status": "STRANGE",
                 "labels": {"verification": "failed"},
                 "deprecated": {"state": "DEPRECATED", "deprecated": "2024-06-01T00:00:00Z",
                   "replacement": "https://compute.googleapis.com/compute/v1/projects/p/global/images/det-environments-slurm-ci-2"}},
                {"name": "d", "creationTimestamp": "", "status": "READY", "deprecated": {"state": "ACTIVE"}}]"#,
        )
        .unwrap();
        let [a, b, c, d] = &images[..] else {
            panic!("{images:?}")
        };
        assert_eq!(a.labels["branch"], "main");
        assert_eq!(a.family.as_deref(), Some("f"));
        assert_eq!(a.created, Some(1_717_072_768));
        assert!(a.is_ready() && a.verification() == Verification::Verified);
        assert_eq!(a.wm(), Some(WorkloadManager::Slurm));
        assert_eq!(a.deprecation, None);
        assert!(b.labels.is_empty() && b.description.is_none());
        assert_eq!((b.created, &b.status), (None, &ImageStatus::Pending));
        assert_eq!(b.verification(), Verification::Unverified);
        assert_eq!(c.status.to_string(), "STRANGE");
        assert_eq!(c.verification(), Verification::Failed);
        assert_eq!(
            c.deprecation,
            Some(Deprecation {
                state: DeprecationState::Deprecated,
                replacement: Some("det-environments-slurm-ci-2".into()),
                since: Some(1_717_200_000),
            })
        );
        // ACTIVE is no deprecation at all.
        assert_eq!(d.deprecation, None);
    }

    #[test]
    fn states_read_as_the_api_and_the_user_write_them() {
        for text in ["READY", "PENDING", "FAILED", "DELETING", "CREATING"] {
            assert_eq!(ImageStatus::from_api(text).to_string(), text);
        }
        assert_eq!(Verification::Verified.to_string(), "verified");
        assert_eq!(Verification::Failed.to_string(), "FAILED");
        assert_eq!(Verification::Unverified.to_string(), "never verified");
        assert_eq!(DeprecationState::Obsolete.to_string(), "OBSOLETE");
    }

    #[test]
    fn our_images_are_known_by_name_whatever_their_family() {
        use WorkloadManager::{Pbs, Slurm};
        assert_eq!(
            wm_of_image("det-environments-slurm-ci-1717047568"),
            Some(Slurm)
        );
        assert_eq!(wm_of_image("det-environments-pbs-ci-1717016272"), Some(Pbs));
        assert_eq!(wm_of_image("det-environments-slurm-1717047568"), None);
        assert_eq!(wm_of_image("det-environments-slurmx-ci-1"), None);
        assert_eq!(wm_of_image("my-det-environments-slurm-ci-1"), None);
        assert_eq!(wm_of_image("ubuntu-2004-lts"), None);
    }
}
