//! The pure core: plain data in, plain data out, no processes, files or sockets.

pub mod config;
pub mod doctor;
pub mod images_conf;
pub mod launcher_version;
pub mod manifest;
pub mod provenance;
pub mod prune_plan;
pub mod template;
pub mod time;
pub mod variables;

use std::fmt;

/// A packer version `X.Y.Z`.
pub type Version = (u64, u64, u64);

/// The workload manager a cluster image is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum WorkloadManager {
    Slurm,
    Pbs,
}

impl WorkloadManager {
    pub const ALL: [WorkloadManager; 2] = [WorkloadManager::Slurm, WorkloadManager::Pbs];

    /// The key of its line in images.conf, and the word in its image names.
    pub fn key(self) -> &'static str {
        match self {
            WorkloadManager::Slurm => "slurm",
            WorkloadManager::Pbs => "pbs",
        }
    }
}

impl fmt::Display for WorkloadManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Whether `name` is a valid GCE image (or family) name: a lowercase letter, then up to 62
/// lowercase letters, digits or dashes, not ending in a dash.
pub fn is_gce_image_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    bytes.len() <= 63
        && first.is_ascii_lowercase()
        && rest
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && bytes.last() != Some(&b'-')
}

/// Names joined for a message, or `none`: "deleted a, b; still there: none".
pub fn list_or_none<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "none".to_string();
    }
    names
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lowercase hexadecimal, as sha256 sums are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gce_image_names() {
        assert!(is_gce_image_name("det-environments-slurm-ci-1717047568"));
        assert!(is_gce_image_name("a"));
        assert!(is_gce_image_name(&"a".repeat(63)));
        assert!(!is_gce_image_name(&"a".repeat(64)));
        assert!(!is_gce_image_name(""));
        assert!(!is_gce_image_name("Null"));
        assert!(!is_gce_image_name("1abc"));
        assert!(!is_gce_image_name("abc-"));
        assert!(!is_gce_image_name("a_b"));
        assert!(!is_gce_image_name("projects/x/global/images/y"));
    }
}
