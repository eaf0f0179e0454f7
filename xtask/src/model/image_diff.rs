//! What differs between two images: their bills of materials and the inputs they were made
//! from, as their labels record them, one line each.

use crate::model::image::Image;
use crate::model::provenance::{self, from_label_value};
use crate::model::verification::BOM_PREFIX;

/// The labels of the tools that made an image: packer's version and its plugins'.
pub const PACKER: &str = "packer";
pub const PLUGIN_PREFIX: &str = "packer-plugin-";

/// One thing two images are compared on, and each one's value (`None`: not recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compared {
    pub what: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

impl Compared {
    pub fn differs(&self) -> bool {
        self.a != self.b
    }
}

/// The things `images diff` compares, in its order: the launcher, the workload manager, the
/// NVIDIA driver, the kernel, the other programs of the bill of materials, the task images,
/// the source image, the input fingerprint, and the tools that made them.
pub fn compare(a: &Image, b: &Image) -> Vec<Compared> {
    let bom = |image: &Image, what: &str| {
        image
            .labels
            .get(&format!("{BOM_PREFIX}{what}"))
            .map(|v| shown(what, v))
    };
    let label = |image: &Image, key: &str| image.labels.get(key).map(|v| from_label_value(v));
    // The launcher the image holds, else the one it was built with.
    let launcher = |image: &Image| {
        bom(image, "launcher").or_else(|| {
            crate::model::prune_plan::launcher_of(
                &image.labels,
                image.description.as_deref().unwrap_or(""),
            )
        })
    };
    let mut compared = vec![Compared {
        what: "launcher".to_string(),
        a: launcher(a),
        b: launcher(b),
    }];
    let mut wms: Vec<&str> = [a.wm(), b.wm()]
        .into_iter()
        .flatten()
        .map(|wm| wm.key())
        .collect();
    wms.dedup();
    for what in wms
        .into_iter()
        .chain(["nvidia", "kernel", "podman", "apptainer", "enroot"])
        .chain(["cpu-task-image", "cuda-task-image"])
    {
        compared.push(Compared {
            what: what.to_string(),
            a: bom(a, what),
            b: bom(b, what),
        });
    }
    // Source images are names: their label values are the names themselves.
    let raw = |image: &Image, key: &str| image.labels.get(key).cloned();
    compared.push(Compared {
        what: "source image".to_string(),
        a: raw(a, provenance::SOURCE_IMAGE),
        b: raw(b, provenance::SOURCE_IMAGE),
    });
    compared.push(Compared {
        what: "fingerprint".to_string(),
        a: raw(a, provenance::FINGERPRINT),
        b: raw(b, provenance::FINGERPRINT),
    });
    compared.push(Compared {
        what: "packer".to_string(),
        a: label(a, PACKER),
        b: label(b, PACKER),
    });
    let plugins: std::collections::BTreeSet<&String> = a
        .labels
        .keys()
        .chain(b.labels.keys())
        .filter(|k| k.starts_with(PLUGIN_PREFIX))
        .collect();
    for key in plugins {
        compared.push(Compared {
            what: format!("plugin {}", &key[PLUGIN_PREFIX.len()..]),
            a: label(a, key),
            b: label(b, key),
        });
    }
    compared
}

/// A bill of materials' value as the user reads it: versions get their dots back; task images
/// stay as they are, since their `_` may have been a `/` or a `:`.
fn shown(what: &str, value: &str) -> String {
    if what.ends_with("-image") {
        value.to_string()
    } else {
        from_label_value(value)
    }
}

/// The comparison as `images diff` prints it: one line each, what differs as `A -> B`, then
/// the count.
pub fn render(a: &Image, b: &Image) -> Vec<String> {
    let compared = compare(a, b);
    let width = compared.iter().map(|c| c.what.len()).max().unwrap_or(0);
    let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "not recorded".to_string());
    let mut lines = vec![format!("{} -> {}:", a.name, b.name)];
    for c in &compared {
        let what = &c.what;
        if c.differs() {
            lines.push(format!(
                "  {what:<width$}  {} -> {}",
                value(&c.a),
                value(&c.b)
            ));
        } else {
            lines.push(format!("  {what:<width$}  same: {}", value(&c.a)));
        }
    }
    let differ = compared.iter().filter(|c| c.differs()).count();
    lines.push(format!("{differ} of {} differ", compared.len()));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::image::ImageStatus;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn image(name: &str, pairs: &[(&str, &str)]) -> Image {
        Image {
            name: name.to_string(),
            family: None,
            creation_timestamp: String::new(),
            created: None,
            status: ImageStatus::Ready,
            labels: labels(pairs),
            description: None,
            deprecation: None,
        }
    }

    #[test]
    fn two_images_differ_line_by_line() {
        let a = image(
            "det-environments-slurm-ci-1",
            &[
                ("bom-launcher", "3_3_0-0"),
                ("bom-slurm", "23_11_4"),
                ("bom-kernel", "5_15"),
                (
                    "bom-cuda-task-image",
                    "determinedai-pytorch-ngc-dev-e960eae",
                ),
                ("source-image", "slurm-gcp-6-3-ubuntu-2004-lts-v20240101"),
                ("input-fingerprint", "aa"),
                ("packer", "1_8_6"),
            ],
        );
        let b = image(
            "det-environments-slurm-ci-2",
            &[
                ("bom-launcher", "3_3_1-2"),
                ("bom-slurm", "23_11_6"),
                ("bom-kernel", "5_15"),
                (
                    "bom-cuda-task-image",
                    "determinedai-pytorch-ngc-dev-e960eae",
                ),
                ("source-image", "slurm-gcp-6-3-ubuntu-2004-lts-v20240101"),
                ("input-fingerprint", "bb"),
                ("packer", "1_9_4"),
                ("packer-plugin-googlecompute", "1_1_4"),
            ],
        );
        let lines = render(&a, &b);
        let line = |what: &str| {
            lines
                .iter()
                .find(|l| l.trim_start().starts_with(what))
                .unwrap_or_else(|| panic!("{what}: {lines:#?}"))
                .split_whitespace()
                .skip(what.split(' ').count())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            lines[0],
            "det-environments-slurm-ci-1 -> det-environments-slurm-ci-2:"
        );
        assert_eq!(line("launcher"), "3.3.0-0 -> 3.3.1-2");
        assert_eq!(line("slurm"), "23.11.4 -> 23.11.6");
        assert_eq!(line("kernel"), "same: 5.15");
        assert_eq!(line("nvidia"), "same: not recorded");
        assert_eq!(
            line("cuda-task-image"),
            "same: determinedai-pytorch-ngc-dev-e960eae"
        );
        assert_eq!(
            line("source image"),
            "same: slurm-gcp-6-3-ubuntu-2004-lts-v20240101"
        );
        assert_eq!(line("fingerprint"), "aa -> bb");
        assert_eq!(line("packer"), "1.8.6 -> 1.9.4");
        assert_eq!(line("plugin googlecompute"), "not recorded -> 1.1.4");
        assert_eq!(lines.last().unwrap(), "5 of 13 differ");
    }

    #[test]
    fn an_image_without_a_bill_of_materials_names_its_launcher_from_its_description() {
        let mut old = image("det-environments-pbs-ci-1", &[]);
        old.description = Some("HPC pbs testing VM hpe-hpc-launcher_3.3.0-1_amd64.deb".into());
        let new = image("det-environments-pbs-ci-2", &[("bom-pbs", "22_05_11")]);
        let compared = compare(&old, &new);
        assert_eq!(compared[0].a.as_deref(), Some("3.3.0-1"));
        assert_eq!(
            (compared[1].what.as_str(), compared[1].b.as_deref()),
            ("pbs", Some("22.05.11"))
        );
    }
}
