//! The pure core: plain data in, plain data out, no processes, files or sockets.

pub mod artifactory_folder;
pub mod build_lock;
pub mod build_plan;
pub mod config;
pub mod consumers;
pub mod doctor;
pub mod image;
pub mod image_diff;
pub mod images_conf;
pub mod launcher_choice;
pub mod launcher_version;
pub mod local_packages;
pub mod manifest;
pub mod orphans;
pub mod packer_inputs;
pub mod provenance;
pub mod prune_plan;
pub mod records;
pub mod release;
pub mod release_plan;
pub mod rollback;
pub mod template;
pub mod time;
pub mod variables;
pub mod verification;

use std::fmt;

/// A packer version `X.Y.Z`.
pub type Version = (u64, u64, u64);

/// The workload manager a cluster image is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// Whether `image` is a container image reference `[REGISTRY[:PORT]/]PATH[:TAG]` in the
/// registry's grammar (the distribution project's `reference` without a digest): the template
/// passes it into a shell command on the build VM, so nothing else may get through.
pub fn is_image_reference(image: &str) -> bool {
    let (name, tag) = match image.rfind(':') {
        // A colon after the last slash starts the tag; one before it is a registry's port.
        Some(colon) if !image[colon..].contains('/') => {
            (&image[..colon], Some(&image[colon + 1..]))
        }
        _ => (image, None),
    };
    let tag_ok = tag.is_none_or(|tag| {
        let mut chars = tag.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            && tag.len() <= 128
    });
    let mut parts: Vec<&str> = name.split('/').collect();
    // A first part with a dot or a port, or `localhost`, is a registry host.
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (domain, port) = host.split_once(':').unwrap_or((host, "0"));
        let domain_ok = domain.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
        if !domain_ok || port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    let path_ok = parts.iter().all(|part| {
        // Lowercase letters and digits, joined by one `.` or `_`, two `_`, or dashes.
        !part.is_empty()
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && !part.contains("..")
            && !part.contains("___")
            && !part.contains("._")
            && !part.contains("_.")
    });
    tag_ok && path_ok && name.len() <= 255
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

/// A whole-number setting read from the environment variable `name`: `None` (unset) gives
/// `default`; anything but a whole number in `range` is an error naming the variable, the range
/// and `unit`, so that a setting never overflows or stalls the tool.
pub fn whole_number_setting(
    name: &str,
    value: Option<&str>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
) -> anyhow::Result<u64> {
    let Some(text) = value else {
        return Ok(default);
    };
    let (min, max) = (range.start(), range.end());
    let wanted = format!("a whole number of {unit} from {min} to {max}, or unset it");
    match text.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        Ok(_) => anyhow::bail!("{name}={text:?} is out of range: use {wanted}"),
        // A number too large for u64 is out of range too, not malformed.
        Err(_) if !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()) => {
            anyhow::bail!("{name}={text:?} is out of range: use {wanted}")
        }
        Err(_) => anyhow::bail!("{name}={text:?} is not a whole number: use {wanted}"),
    }
}

/// Lowercase hexadecimal, as sha256 sums are written.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_follow_the_registry_grammar() {
        for good in [
            "determinedai/pytorch-ngc-dev:e960eae",
            "determinedai/pytorch-tensorflow-cpu-dev:0736b6d",
            "ubuntu",
            "registry.example.com:5000/team/img:v1.2_3",
            "localhost/img",
            "a__b/c-d:latest",
        ] {
            assert!(is_image_reference(good), "{good}");
        }
        for bad in [
            "determinedai/pytorch-ngc-dev:$(touch /tmp/x)",
            "determinedai/pytorch-ngc-dev:e960eae\"; rm -rf /",
            "determinedai/pytorch-ngc-dev:e960eae\nother",
            "determinedai/pytorch ngc",
            "Determinedai/img",
            "img:",
            "img:-tag",
            "/img",
            "a//b",
            "a..b/c",
        ] {
            assert!(!is_image_reference(bad), "{bad:?}");
        }
    }

    #[test]
    fn whole_number_settings_are_checked_against_their_range() {
        let read = |value| whole_number_setting("X_S", value, 30, 1..=3600, "seconds");
        assert_eq!(read(None).unwrap(), 30);
        assert_eq!(read(Some(" 5 ")).unwrap(), 5);
        assert_eq!(read(Some("3600")).unwrap(), 3600);
        for (value, wanted) in [
            ("0", "out of range"),
            ("3601", "out of range"),
            ("18446744073709552", "out of range"),
            ("99999999999999999999999", "out of range"),
            ("-1", "not a whole number"),
            ("1.5", "not a whole number"),
            ("", "not a whole number"),
        ] {
            let err = read(Some(value)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("X_S={value:?} is {wanted}"))
                    && err.ends_with("use a whole number of seconds from 1 to 3600, or unset it"),
                "{err}"
            );
        }
    }

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
