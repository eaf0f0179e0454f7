//! What an image is made from, written on it as labels: their encoding, the input fingerprint
//! that combines them, whether an existing image can stand in for a build, and why not.
//!
//! The labels are the record a person reads in the console and the tool reads back: the
//! launcher version, the source image, and a short digest each of the template, the playbook,
//! `static/`, the variables and the launcher package. Together they cover everything the
//! fingerprint covers, so whenever two fingerprints differ the labels can say which input did.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::image::Image;
use crate::model::variables::Variables;
use crate::model::{hex, WorkloadManager};

/// The label keys, as they appear in the console.
pub const WORKLOAD_MANAGER: &str = "workload-manager";
pub const FINGERPRINT: &str = "input-fingerprint";
pub const LAUNCHER: &str = "launcher";
pub const LAUNCHER_PACKAGE: &str = "launcher-package";
pub const SOURCE_IMAGE: &str = "source-image";
pub const TEMPLATE: &str = "template";
pub const PLAYBOOK: &str = "playbook";
pub const STATIC: &str = "static";
pub const VARIABLES: &str = "variables";

/// The labels that record the inputs (all but the workload manager and the fingerprint).
pub const RECORDED: [&str; 7] = [
    LAUNCHER,
    LAUNCHER_PACKAGE,
    SOURCE_IMAGE,
    TEMPLATE,
    PLAYBOOK,
    STATIC,
    VARIABLES,
];

/// GCE allows label values of at most 63 characters.
pub const MAX_LABEL_VALUE: usize = 63;

/// Hex digits of a digest shown in a label: 48 bits tell versions of a file apart for a
/// person reading the console; the fingerprint, not these, decides reuse.
const SHORT_DIGEST: usize = 12;

/// The full sha256 (hex) of each group of inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// The template folder's files that are neither the playbook nor under `static/`: the
    /// `*.pkr.hcl` files, `scripts/`, roles.
    pub template: String,
    /// The playbook the template's ansible provisioner runs.
    pub playbook: String,
    /// Everything under `static/`.
    pub static_files: String,
    /// The variables of the contract but the launcher's file name (the launcher has labels of
    /// its own).
    pub variables: String,
    /// The launcher package's bytes.
    pub launcher_package: String,
}

/// Everything one image is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub wm: WorkloadManager,
    /// `3.3.1-2`.
    pub launcher_version: String,
    /// The exact image the build starts from; `None` when the template cannot be given one.
    pub source_image: Option<String>,
    pub digests: Digests,
}

impl Provenance {
    /// 32 hex digits naming all the inputs: equal fingerprints mean a build would bake the
    /// same image. It combines the digests of the groups, so it does not depend on where the
    /// checkout is or in what order the files were listed.
    pub fn fingerprint(&self) -> String {
        let d = &self.digests;
        let mut hasher = Sha256::new();
        for (key, value) in [
            (TEMPLATE, d.template.as_str()),
            (PLAYBOOK, d.playbook.as_str()),
            (STATIC, d.static_files.as_str()),
            (VARIABLES, d.variables.as_str()),
            (LAUNCHER_PACKAGE, d.launcher_package.as_str()),
            (SOURCE_IMAGE, self.source_image.as_deref().unwrap_or("")),
        ] {
            hasher.update(key.as_bytes());
            hasher.update([0]);
            hasher.update(value.as_bytes());
            hasher.update([0]);
        }
        // 128 bits are plenty, and fit a label value.
        hex(&hasher.finalize()[..16])
    }

    /// The labels the image carries, every value a valid GCE label value.
    pub fn labels(&self) -> Vec<(String, String)> {
        let short = |digest: &str| digest.chars().take(SHORT_DIGEST).collect::<String>();
        let d = &self.digests;
        let mut labels = vec![
            (WORKLOAD_MANAGER, self.wm.key().to_string()),
            (FINGERPRINT, self.fingerprint()),
            (LAUNCHER, label_value(&self.launcher_version)),
            (LAUNCHER_PACKAGE, short(&d.launcher_package)),
        ];
        if let Some(source) = &self.source_image {
            labels.push((SOURCE_IMAGE, label_value(source)));
        }
        labels.extend([
            (TEMPLATE, short(&d.template)),
            (PLAYBOOK, short(&d.playbook)),
            (STATIC, short(&d.static_files)),
            (VARIABLES, short(&d.variables)),
        ]);
        labels
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect()
    }
}

/// Whether a label is one [`tool_labels`] makes.
pub fn is_tool_label(key: &str) -> bool {
    use crate::model::image_diff::{PACKER, PLUGIN_PREFIX};
    key == PACKER || key.starts_with(PLUGIN_PREFIX)
}

/// The labels that say which tools made an image, recorded beside its inputs but not part of
/// its fingerprint (a newer packer bakes the same playbook into the same image): `packer` and
/// one `packer-plugin-<name>` per plugin in `plugins`, the output of `packer plugins installed`
/// (a path a line, ending `packer-plugin-<name>_v<version>_x<api>_<os>_<arch>`). The newest
/// version of a plugin installed twice is the one packer loads.
pub fn tool_labels(packer: &str, plugins: &str) -> Vec<(String, String)> {
    use crate::model::image_diff::{PACKER, PLUGIN_PREFIX};
    let mut found: Vec<(String, crate::model::Version, String)> = Vec::new();
    for line in plugins.lines() {
        let file = line.trim().rsplit('/').next().unwrap_or_default();
        let Some(rest) = file.strip_prefix(PLUGIN_PREFIX) else {
            continue;
        };
        let Some((name, after)) = rest.split_once("_v") else {
            continue;
        };
        let text = after.split('_').next().unwrap_or_default();
        let mut parts = text.split('.').map(|p| p.parse::<u64>().ok());
        let version = (|| Some((parts.next()??, parts.next()??, parts.next()??)))();
        let Some(version) = version else {
            continue;
        };
        match found.iter_mut().find(|(n, _, _)| n == name) {
            Some(known) if known.1 >= version => {}
            Some(known) => *known = (name.to_string(), version, text.to_string()),
            None => found.push((name.to_string(), version, text.to_string())),
        }
    }
    let mut labels = vec![(PACKER.to_string(), label_value(packer))];
    labels.extend(
        found
            .into_iter()
            .map(|(name, _, text)| (format!("{PLUGIN_PREFIX}{name}"), label_value(&text))),
    );
    labels
}

/// The digest of a group of files, given as (path relative to the template folder with `/`
/// between parts, sha256 of the contents): sorted by path first, so the order they were found
/// in does not matter, and paths are relative, so the checkout's place does not either.
pub fn digest_of_files(files: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    for (path, digest) in sorted {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(digest.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

/// The digest of the variables that shape the image: every contract variable but
/// `launcher_deb_name`, whose change the launcher labels already tell.
pub fn digest_of_variables(contract: &Variables) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in &contract.0 {
        if *name == "launcher_deb_name" {
            continue;
        }
        hasher.update(format!("{name}={value:?}\n").as_bytes());
    }
    hex(&hasher.finalize())
}

/// `text` as a GCE label value: lowercase letters, digits, `-` and `_`, at most 63 characters.
/// Dots, which versions have and labels lack, become `_`, so [`from_label_value`] gives back
/// exactly any text of lowercase letters, digits, dots and dashes (versions, image names);
/// capitals are lowered and anything else becomes `-`. A longer value keeps its first 54
/// characters and a digest of the whole, so two long values stay apart.
pub fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            '.' => '_',
            _ => '-',
        })
        .collect();
    if mapped.len() <= MAX_LABEL_VALUE {
        return mapped;
    }
    let digest = hex(&Sha256::digest(text.as_bytes()));
    format!("{}-{}", &mapped[..54], &digest[..8])
}

/// The text a label value stands for: `3_3_1-2` is launcher `3.3.1-2`.
pub fn from_label_value(value: &str) -> String {
    value.replace('_', ".")
}

/// Whether `value` is a valid GCE label value.
#[cfg(test)]
pub fn is_label_value(value: &str) -> bool {
    value.len() <= MAX_LABEL_VALUE
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Why an image with labels `new` differs from the image with labels `old`, one input a line:
/// `launcher 3.3.0-0 -> 3.3.1-2`, `static/ changed`. Empty when the fingerprints are equal.
pub fn why_rebuild(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let get = |labels: &BTreeMap<String, String>, key: &str| labels.get(key).cloned();
    if old.get(FINGERPRINT).is_some() && old.get(FINGERPRINT) == new.get(FINGERPRINT) {
        return Vec::new();
    }
    if !RECORDED.iter().any(|key| old.contains_key(*key)) {
        return vec!["no labels (made before images recorded their inputs)".to_string()];
    }
    let shown =
        |value: Option<String>| value.map_or("unknown".to_string(), |v| from_label_value(&v));
    let mut reasons = Vec::new();
    let (old_launcher, new_launcher) = (get(old, LAUNCHER), get(new, LAUNCHER));
    if old_launcher != new_launcher {
        reasons.push(format!(
            "launcher {} -> {}",
            shown(old_launcher),
            shown(new_launcher)
        ));
    } else if get(old, LAUNCHER_PACKAGE) != get(new, LAUNCHER_PACKAGE) {
        reasons.push(format!(
            "launcher package {} changed (same version, other bytes)",
            shown(new_launcher)
        ));
    }
    let (old_source, new_source) = (get(old, SOURCE_IMAGE), get(new, SOURCE_IMAGE));
    if old_source != new_source {
        reasons.push(format!(
            "source image {} -> {}",
            shown(old_source),
            shown(new_source)
        ));
    }
    for (key, what) in [
        (TEMPLATE, "template"),
        (PLAYBOOK, "playbook"),
        (STATIC, "static/"),
        (VARIABLES, "variables"),
    ] {
        if get(old, key) != get(new, key) {
            reasons.push(format!("{what} changed"));
        }
    }
    if reasons.is_empty() {
        reasons.push("inputs differ in a way its labels do not show".to_string());
    }
    reasons
}

/// Whether a build can be skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A READY image made from exactly these inputs exists: pin it instead of building.
    Reuse { image: String },
    /// A build is needed, for these reasons about the pinned image; `same_inputs` names an
    /// image that would have been reused without `--force`.
    Build {
        reasons: Vec<String>,
        same_inputs: Option<String>,
    },
}

/// The image a build with input fingerprint `fingerprint` reuses, from the project's images:
/// a READY image of the workload manager that carries the fingerprint and that no rollback
/// revoked (a revoked image is what a rollback went back from), the pinned one first,
/// then the newest, so that reuse changes images.conf only when it must. The one rule by which
/// a build, its dry run and `images` decide reuse.
pub fn reused_image<'a>(
    listed: &'a [Image],
    fingerprint: &str,
    wm: WorkloadManager,
    pinned: Option<&str>,
) -> Option<&'a Image> {
    listed
        .iter()
        .filter(|image| {
            image.labels.get(FINGERPRINT).map(String::as_str) == Some(fingerprint)
                && image.is_ready()
                && !image.is_revoked()
                && image
                    .labels
                    .get(WORKLOAD_MANAGER)
                    .is_none_or(|value| value == wm.key())
        })
        .max_by_key(|image| {
            (
                Some(image.name.as_str()) == pinned,
                image.created.unwrap_or(0),
            )
        })
}

/// Decides between reuse and a build. `listed` holds the project's images (at least those
/// with the new fingerprint and the pinned one); `new` is the labels a build would put on its
/// image.
pub fn verdict(
    listed: &[Image],
    new: &BTreeMap<String, String>,
    wm: WorkloadManager,
    pinned: Option<&str>,
    force: bool,
) -> Verdict {
    let same_inputs = new
        .get(FINGERPRINT)
        .and_then(|fingerprint| reused_image(listed, fingerprint, wm, pinned))
        .map(|image| image.name.clone());
    if let (Some(image), false) = (&same_inputs, force) {
        return Verdict::Reuse {
            image: image.clone(),
        };
    }
    let reasons = match pinned {
        None => vec![format!("images.conf pins no {wm} image")],
        Some(pinned) => match listed.iter().find(|image| image.name == pinned) {
            None => vec!["it is not in the project".to_string()],
            Some(image) => {
                let reasons = why_rebuild(&image.labels, new);
                if !reasons.is_empty() {
                    reasons
                } else if image.is_revoked() {
                    vec!["it has these inputs but a rollback revoked it".to_string()]
                } else if !image.is_ready() {
                    vec![format!("it has these inputs but is {}", image.status)]
                } else {
                    vec!["inputs unchanged".to_string()]
                }
            }
        },
    };
    Verdict::Build {
        reasons,
        same_inputs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests() -> Digests {
        Digests {
            template: "a".repeat(64),
            playbook: "b".repeat(64),
            static_files: "c".repeat(64),
            variables: "d".repeat(64),
            launcher_package: "e".repeat(64),
        }
    }

    fn provenance() -> Provenance {
        Provenance {
            wm: WorkloadManager::Slurm,
            launcher_version: "3.3.1-2".into(),
            source_image: Some("slurm-gcp-6-3-ubuntu-2004-lts-v20240301".into()),
            digests: digests(),
        }
    }

    fn map(labels: Vec<(String, String)>) -> BTreeMap<String, String> {
        labels.into_iter().collect()
    }

    #[test]
    fn the_tools_that_made_an_image_are_read_from_packer_and_its_plugin_listing() {
        let listing = "/root/.config/packer/plugins/github.com/hashicorp/googlecompute/packer-plugin-googlecompute_v1.1.4_x5.0_linux_amd64\n\
            /root/.config/packer/plugins/github.com/hashicorp/ansible/packer-plugin-ansible_v1.1.0_x5.0_linux_amd64\n\
            /root/.config/packer/plugins/github.com/hashicorp/ansible/packer-plugin-ansible_v1.0.4_x5.0_linux_amd64\n\
            not a plugin\n";
        assert_eq!(
            tool_labels("1.8.6", listing),
            [
                ("packer".to_string(), "1_8_6".to_string()),
                (
                    "packer-plugin-googlecompute".to_string(),
                    "1_1_4".to_string()
                ),
                ("packer-plugin-ansible".to_string(), "1_1_0".to_string()),
            ]
        );
        assert_eq!(
            tool_labels("1.7.4", ""),
            [("packer".to_string(), "1_7_4".to_string())]
        );
    }

    #[test]
    fn file_order_does_not_change_a_digest_but_paths_and_contents_do() {
        let files = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(p, d)| (p.to_string(), d.to_string()))
                .collect()
        };
        let one = digest_of_files(&files(&[("main.pkr.hcl", "11"), ("scripts/a.sh", "22")]));
        let other_order =
            digest_of_files(&files(&[("scripts/a.sh", "22"), ("main.pkr.hcl", "11")]));
        assert_eq!(one, other_order);
        assert_eq!(one.len(), 64);
        let renamed = digest_of_files(&files(&[("main.pkr.hcl", "11"), ("scripts/b.sh", "22")]));
        let changed = digest_of_files(&files(&[("main.pkr.hcl", "11"), ("scripts/a.sh", "23")]));
        assert_ne!(one, renamed);
        assert_ne!(one, changed);
        // A file's name cannot run into its contents: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            digest_of_files(&files(&[("ab", "c")])),
            digest_of_files(&files(&[("a", "bc")]))
        );
    }

    #[test]
    fn the_fingerprint_is_stable_and_covers_every_input() {
        let base = provenance();
        let fingerprint = base.fingerprint();
        assert_eq!(fingerprint, provenance().fingerprint());
        assert!(
            fingerprint.len() == 32
                && fingerprint
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{fingerprint}"
        );
        let mut variants = Vec::new();
        for change in 0..7 {
            let mut p = provenance();
            match change {
                0 => p.digests.template = "0".repeat(64),
                1 => p.digests.playbook = "0".repeat(64),
                2 => p.digests.static_files = "0".repeat(64),
                3 => p.digests.variables = "0".repeat(64),
                4 => p.digests.launcher_package = "0".repeat(64),
                5 => p.source_image = Some("slurm-gcp-6-3-ubuntu-2004-lts-v20240401".into()),
                _ => p.source_image = None,
            }
            variants.push(p.fingerprint());
        }
        for (i, variant) in variants.iter().enumerate() {
            assert_ne!(*variant, fingerprint, "change {i} is not covered");
        }
    }

    #[test]
    fn labels_are_valid_gce_labels_and_read_back() {
        let labels = provenance().labels();
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "workload-manager",
                "input-fingerprint",
                "launcher",
                "launcher-package",
                "source-image",
                "template",
                "playbook",
                "static",
                "variables"
            ]
        );
        for (key, value) in &labels {
            assert!(is_label_value(key) && key.as_bytes()[0].is_ascii_lowercase());
            assert!(is_label_value(value), "{key}={value}");
        }
        let labels = map(labels);
        assert_eq!(labels[LAUNCHER], "3_3_1-2");
        assert_eq!(from_label_value(&labels[LAUNCHER]), "3.3.1-2");
        assert_eq!(
            labels[SOURCE_IMAGE],
            "slurm-gcp-6-3-ubuntu-2004-lts-v20240301"
        );
        assert_eq!(labels[TEMPLATE], "aaaaaaaaaaaa");
    }

    #[test]
    fn label_values_are_encoded_within_the_rules() {
        assert_eq!(label_value("3.10.12-100"), "3_10_12-100");
        assert_eq!(from_label_value("3_10_12-100"), "3.10.12-100");
        assert_eq!(label_value("Release 0.1/x_y"), "release-0_1-x-y");
        assert_eq!(label_value(""), "");
        let name = "a".repeat(63);
        assert_eq!(label_value(&name), name);
        let long_a = format!("{}-one", "x".repeat(70));
        let long_b = format!("{}-two", "x".repeat(70));
        for long in [&long_a, &long_b] {
            let value = label_value(long);
            assert_eq!(value.len(), 63, "{value}");
            assert!(is_label_value(&value), "{value}");
        }
        assert_ne!(label_value(&long_a), label_value(&long_b));
        for text in ["ünïcode", "UPPER.case", "tab\there", "a\"quote"] {
            assert!(is_label_value(&label_value(text)), "{text}");
        }
        assert!(!is_label_value("3.3.1-2"));
        assert!(!is_label_value(&"a".repeat(64)));
    }

    #[test]
    fn why_rebuild_names_each_changed_input() {
        let old = map(provenance().labels());
        assert!(why_rebuild(&old, &old).is_empty());

        let mut p = provenance();
        p.launcher_version = "3.3.0-0".into();
        p.digests.launcher_package = "f".repeat(64);
        p.source_image = Some("slurm-gcp-6-3-ubuntu-2004-lts-v20240101".into());
        p.digests.static_files = "0".repeat(64);
        let older = map(p.labels());
        assert_eq!(
            why_rebuild(&older, &old),
            [
                "launcher 3.3.0-0 -> 3.3.1-2",
                "source image slurm-gcp-6-3-ubuntu-2004-lts-v20240101 -> slurm-gcp-6-3-ubuntu-2004-lts-v20240301",
                "static/ changed"
            ]
        );

        let mut p = provenance();
        p.digests.launcher_package = "f".repeat(64);
        p.digests.template = "1".repeat(64);
        p.digests.playbook = "2".repeat(64);
        p.digests.variables = "3".repeat(64);
        assert_eq!(
            why_rebuild(&map(p.labels()), &old),
            [
                "launcher package 3.3.1-2 changed (same version, other bytes)",
                "template changed",
                "playbook changed",
                "variables changed"
            ]
        );

        let unlabelled = BTreeMap::new();
        assert_eq!(
            why_rebuild(&unlabelled, &old),
            ["no labels (made before images recorded their inputs)"]
        );
        let fingerprint_only: BTreeMap<String, String> =
            [(FINGERPRINT.to_string(), "ab".repeat(16))].into();
        assert_eq!(
            why_rebuild(&fingerprint_only, &old),
            ["no labels (made before images recorded their inputs)"]
        );

        let mut no_source = provenance();
        no_source.source_image = None;
        assert_eq!(
            why_rebuild(&map(no_source.labels()), &old),
            ["source image unknown -> slurm-gcp-6-3-ubuntu-2004-lts-v20240301"]
        );
    }

    fn listed(name: &str, status: &str, created: i64, labels: &BTreeMap<String, String>) -> Image {
        let json = serde_json::json!({"name": name, "status": status, "labels": labels});
        Image {
            created: Some(created),
            ..serde_json::from_value(json).unwrap()
        }
    }

    #[test]
    fn the_reused_image_is_the_pinned_one_else_the_newest_ready_one_of_its_workload_manager() {
        let new = map(provenance().labels());
        let fingerprint = new[FINGERPRINT].clone();
        let wm = WorkloadManager::Slurm;
        let mut pbs = new.clone();
        pbs.insert(WORKLOAD_MANAGER.into(), "pbs".into());
        let images = [
            listed("built", "READY", 1, &new),
            listed("forced", "READY", 2, &new),
            listed("pending", "PENDING", 3, &new),
            listed("pbs", "READY", 4, &pbs),
            listed("unlabelled", "READY", 5, &BTreeMap::new()),
        ];
        let reused =
            |pinned| reused_image(&images, &fingerprint, wm, pinned).map(|image| &image.name[..]);
        // Two images from the same inputs: one is reused, never both.
        assert_eq!(reused(Some("built")), Some("built"));
        assert_eq!(reused(Some("forced")), Some("forced"));
        assert_eq!(reused(None), Some("forced"));
        assert_eq!(reused(Some("unlabelled")), Some("forced"));
        assert_eq!(
            reused_image(&images, "another-fingerprint", wm, None).map(|image| &image.name),
            None
        );
        assert!(reused_image(&images[2..4], &fingerprint, wm, None).is_none());
    }

    #[test]
    fn no_build_reuses_an_image_a_rollback_revoked() {
        let new = map(provenance().labels());
        let mut revoked = new.clone();
        revoked.insert(crate::model::image::REVOKED.into(), "2024-06-01".into());
        let wm = WorkloadManager::Slurm;
        let images = [
            listed("older", "READY", 1, &new),
            listed("revoked", "READY", 2, &revoked),
        ];
        assert_eq!(
            verdict(&images, &new, wm, Some("revoked"), false),
            Verdict::Reuse {
                image: "older".into()
            }
        );
        assert_eq!(
            verdict(&images[1..], &new, wm, Some("revoked"), false),
            Verdict::Build {
                reasons: vec!["it has these inputs but a rollback revoked it".into()],
                same_inputs: None
            }
        );
    }

    #[test]
    fn verdicts() {
        let new = map(provenance().labels());
        let mut p = provenance();
        p.digests.static_files = "0".repeat(64);
        let old = map(p.labels());
        let wm = WorkloadManager::Slurm;

        // The same inputs, READY: reuse, preferring the pinned one, then the newest.
        let images = [
            listed("img-1", "READY", 1, &new),
            listed("img-2", "READY", 2, &new),
            listed("img-3", "PENDING", 3, &new),
        ];
        assert_eq!(
            verdict(&images, &new, wm, Some("img-1"), false),
            Verdict::Reuse {
                image: "img-1".into()
            }
        );
        assert_eq!(
            verdict(&images, &new, wm, Some("img-0"), false),
            Verdict::Reuse {
                image: "img-2".into()
            }
        );
        // --force builds anyway, and says what it could have reused.
        assert_eq!(
            verdict(&images, &new, wm, Some("img-1"), true),
            Verdict::Build {
                reasons: vec!["inputs unchanged".into()],
                same_inputs: Some("img-1".into())
            }
        );
        // Another workload manager's image is never reused.
        let mut pbs = new.clone();
        pbs.insert(WORKLOAD_MANAGER.into(), "pbs".into());
        let images = [
            listed("img-p", "READY", 1, &pbs),
            listed("old", "READY", 0, &old),
        ];
        assert_eq!(
            verdict(&images, &new, wm, Some("old"), false),
            Verdict::Build {
                reasons: vec!["static/ changed".into()],
                same_inputs: None
            }
        );
        assert_eq!(
            verdict(&images, &new, wm, Some("gone"), false),
            Verdict::Build {
                reasons: vec!["it is not in the project".into()],
                same_inputs: None
            }
        );
        assert_eq!(
            verdict(&[], &new, wm, None, false),
            Verdict::Build {
                reasons: vec!["images.conf pins no slurm image".into()],
                same_inputs: None
            }
        );
        let images = [listed("pending", "PENDING", 1, &new)];
        assert_eq!(
            verdict(&images, &new, wm, Some("pending"), false),
            Verdict::Build {
                reasons: vec!["it has these inputs but is PENDING".into()],
                same_inputs: None
            }
        );
    }
}
