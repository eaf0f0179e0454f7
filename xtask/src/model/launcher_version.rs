//! Launcher packages and their versions: `hpe-hpc-launcher_X.Y.Z-REV_amd64.deb`, nothing else.

use std::cmp::Ordering;
use std::fmt;

const PREFIX: &str = "hpe-hpc-launcher_";
const SUFFIX: &str = "_amd64.deb";

/// A released launcher version `X.Y.Z-REV`: four numbers of any length, ordered as numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LauncherVersion {
    /// Decimal digits without leading zeros ("0" for zero), so that comparing lengths and then
    /// text orders them as numbers however long they are.
    numbers: [String; 4],
}

impl LauncherVersion {
    /// Parses `X.Y.Z-REV`; anything else (a pre-release suffix, a missing part) is `None`.
    pub fn parse(text: &str) -> Option<LauncherVersion> {
        let (xyz, rev) = text.split_once('-')?;
        let mut parts = xyz.split('.');
        let numbers = [parts.next()?, parts.next()?, parts.next()?, rev];
        if parts.next().is_some() {
            return None;
        }
        let numbers = numbers.map(|n| {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let trimmed = n.trim_start_matches('0');
            Some(if trimmed.is_empty() {
                "0".to_string()
            } else {
                trimmed.to_string()
            })
        });
        let [Some(x), Some(y), Some(z), Some(r)] = numbers else {
            return None;
        };
        Some(LauncherVersion {
            numbers: [x, y, z, r],
        })
    }
}

impl Ord for LauncherVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.numbers
            .iter()
            .zip(&other.numbers)
            .map(|(a, b)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for LauncherVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for LauncherVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [x, y, z, r] = &self.numbers;
        write!(f, "{x}.{y}.{z}-{r}")
    }
}

/// A launcher release package, known by its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LauncherPackage {
    pub file_name: String,
    pub version: LauncherVersion,
}

impl LauncherPackage {
    /// Accepts exactly `hpe-hpc-launcher_X.Y.Z-REV_amd64.deb`. Because only digits, dots and
    /// one dash may sit between the fixed parts, a name with `/`, `\` or `..` never passes: a
    /// listing from a server can never make the tool write outside `build/`.
    pub fn from_file_name(name: &str) -> Option<LauncherPackage> {
        let version = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
        Some(LauncherPackage {
            file_name: name.to_string(),
            version: LauncherVersion::parse(version)?,
        })
    }
}

/// The release packages among `names` (anything else is ignored), newest first.
pub fn releases<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<LauncherPackage> {
    let mut found: Vec<LauncherPackage> = names
        .into_iter()
        .filter_map(LauncherPackage::from_file_name)
        .collect();
    found.sort_by(|a, b| {
        b.version
            .cmp(&a.version)
            .then_with(|| a.file_name.cmp(&b.file_name))
    });
    found.dedup_by(|a, b| a.file_name == b.file_name);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> LauncherVersion {
        LauncherVersion::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn orders_by_numbers_not_text() {
        assert!(v("3.10.1-12") > v("3.9.0-0"));
        assert!(v("3.3.1-10") > v("3.3.1-9"));
        assert!(v("10.0.0-0") > v("9.99.99-99"));
        assert!(v("1.2.3-4") == v("01.02.03-004"));
        assert!(
            v("123456789012345678901234567890.0.0-0") > v("99999999999999999999999999999.9.9-9")
        );
    }

    #[test]
    fn displays_as_written_without_leading_zeros() {
        assert_eq!(v("3.10.1-12").to_string(), "3.10.1-12");
        assert_eq!(v("03.0.1-0").to_string(), "3.0.1-0");
    }

    #[test]
    fn refuses_anything_but_four_numbers() {
        for bad in [
            "3.3.1",
            "3.3.1-",
            "3.3-1",
            "3.3.1.1-2",
            "3.3.1-2rc1",
            "3.3.1-2-3",
            "a.b.c-d",
            "",
            "3..1-2",
            "+3.3.1-2",
        ] {
            assert!(
                LauncherVersion::parse(bad).is_none(),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn file_names_are_exact() {
        let p = LauncherPackage::from_file_name("hpe-hpc-launcher_3.3.1-2_amd64.deb").unwrap();
        assert_eq!(p.version, v("3.3.1-2"));
        for bad in [
            "hpe-hpc-launcher_3.3.1-2_amd64.deb.sha256",
            "hpe-hpc-launcher_3.3.1-2_arm64.deb",
            "hpe-hpc-launcher-3.3.1-2_amd64.deb",
            "hpe-hpc-launcher_3.3.1-2.dev.5_amd64.deb",
            "hpe-hpc-launcher_3.3.1-SNAPSHOT_amd64.deb",
            "../hpe-hpc-launcher_3.3.1-2_amd64.deb",
            "hpe-hpc-launcher_3.3.1-2_amd64.deb/",
            "x/hpe-hpc-launcher_3.3.1-2_amd64.deb",
            "hpe-hpc-launcher_../../3.3.1-2_amd64.deb",
            "hpe-hpc-launcher_3.3.1-2\\_amd64.deb",
            "other-package_3.3.1-2_amd64.deb",
        ] {
            assert!(
                LauncherPackage::from_file_name(bad).is_none(),
                "{bad} should be ignored"
            );
        }
    }

    #[test]
    fn releases_are_filtered_and_newest_first() {
        let names = [
            "hpe-hpc-launcher_3.9.0-0_amd64.deb",
            "readme.txt",
            "hpe-hpc-launcher_3.10.1-12_amd64.deb",
            "hpe-hpc-launcher_3.10.1-12_amd64.deb",
            "hpe-hpc-launcher_3.11.0-1.dev_amd64.deb",
            "hpe-hpc-launcher_3.10.1-2_amd64.deb",
        ];
        let found: Vec<String> = releases(names).into_iter().map(|p| p.file_name).collect();
        assert_eq!(
            found,
            [
                "hpe-hpc-launcher_3.10.1-12_amd64.deb",
                "hpe-hpc-launcher_3.10.1-2_amd64.deb",
                "hpe-hpc-launcher_3.9.0-0_amd64.deb"
            ]
        );
    }
}
