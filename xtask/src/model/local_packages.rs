//! The `.deb` files in build/: the launcher packages the tool reads by name, and those it
//! cannot, each with the name it expects and whether it may be the package the user meant.

use std::time::SystemTime;

use crate::model::launcher_version::{releases, LauncherPackage, LauncherVersion};

/// The form of a launcher release's file name, for messages.
pub const RELEASE_NAME: &str = "hpe-hpc-launcher_X.Y.Z-REV_amd64.deb";

/// One file in build/, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDirFile {
    pub name: String,
    pub modified: SystemTime,
}

/// A `.deb` in build/ whose name is not a launcher release's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadablePackage {
    pub file_name: String,
    /// The release name it would have, as far as its own name tells ([`expected_name`]).
    pub expected: String,
    /// It is the only `.deb`, or none was modified after it: a build cannot tell that it is
    /// not the package the user put there to build with.
    pub may_be_meant: bool,
}

/// What build/ holds that matters to a build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPackages {
    /// The release packages, newest first.
    pub releases: Vec<LauncherPackage>,
    /// The other `.deb` files, by name.
    pub unreadable: Vec<UnreadablePackage>,
}

impl LocalPackages {
    /// Sorts build/'s files out. Only `.deb` files count: build/ also holds a download's
    /// `.part` file and, left by `make build`, packer's manifest.
    pub fn of(files: &[BuildDirFile]) -> LocalPackages {
        let debs: Vec<&BuildDirFile> = files
            .iter()
            .filter(|file| file.name.to_ascii_lowercase().ends_with(".deb"))
            .collect();
        let releases = releases(debs.iter().map(|file| file.name.as_str()));
        let mut unreadable: Vec<UnreadablePackage> = debs
            .iter()
            .filter(|file| LauncherPackage::from_file_name(&file.name).is_none())
            .map(|file| UnreadablePackage {
                file_name: file.name.clone(),
                expected: expected_name(&file.name),
                // A tie counts as newest: guessing against the user costs an hour of VM time.
                may_be_meant: debs.iter().all(|other| other.modified <= file.modified),
            })
            .collect();
        unreadable.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        LocalPackages {
            releases,
            unreadable,
        }
    }
}

/// The release name a `.deb` would have, filled in with the version its name holds:
/// `hpe-hpc-launcher-3.3.1-2.deb` -> `hpe-hpc-launcher_3.3.1-2_amd64.deb`,
/// `hpe-hpc-launcher-3.3.1.deb` -> `hpe-hpc-launcher_3.3.1-REV_amd64.deb`, else the form.
pub fn expected_name(file_name: &str) -> String {
    let stem = file_name
        .get(..file_name.len().saturating_sub(".deb".len()))
        .unwrap_or(file_name);
    // The first run of digits, dots and dashes that starts with a digit, such as `3.3.1-2`.
    let mut best: Option<String> = None;
    for (start, c) in stem.char_indices() {
        let after_boundary = start == 0 || !stem[..start].ends_with(|p: char| p.is_ascii_digit());
        if !c.is_ascii_digit() || !after_boundary {
            continue;
        }
        let run: String = stem[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
            .collect();
        // A version that goes on in letters (`3.4.0-1.dev`) is a pre-release: no release name
        // holds it, and one made up would claim another version.
        if stem[start + run.len()..].starts_with(|c: char| c.is_ascii_alphabetic()) {
            return RELEASE_NAME.to_string();
        }
        let run = run.trim_end_matches(['.', '-']);
        if LauncherVersion::parse(run).is_some() {
            return format!("hpe-hpc-launcher_{run}_amd64.deb");
        }
        let xyz = run.split('-').next().unwrap_or_default();
        if best.is_none() && LauncherVersion::parse(&format!("{xyz}-0")).is_some() {
            best = Some(xyz.to_string());
        }
    }
    match best {
        Some(xyz) => format!("hpe-hpc-launcher_{xyz}-REV_amd64.deb"),
        None => RELEASE_NAME.to_string(),
    }
}

/// How to give a package the name the tool reads, for `package` as the user wrote it (a path
/// in build/, or `--launcher`'s). `dpkg-deb` reads the version from the package itself.
pub fn rename_advice(package: &str, expected: &str) -> String {
    let version = if expected.contains("REV") || expected == RELEASE_NAME {
        format!(" (`dpkg-deb -f {package} Version` prints its X.Y.Z-REV)")
    } else {
        String::new()
    };
    format!("rename it to {expected}{version}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    impl LocalPackages {
        fn maybe_meant(&self) -> Option<&UnreadablePackage> {
            self.unreadable.iter().find(|package| package.may_be_meant)
        }
    }

    fn at(name: &str, seconds: u64) -> BuildDirFile {
        BuildDirFile {
            name: name.into(),
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
        }
    }

    #[test]
    fn the_name_expected_keeps_what_the_file_name_tells() {
        for (name, expected) in [
            (
                "hpe-hpc-launcher-3.3.1.deb",
                "hpe-hpc-launcher_3.3.1-REV_amd64.deb",
            ),
            (
                "hpe-hpc-launcher-3.3.1-2.deb",
                "hpe-hpc-launcher_3.3.1-2_amd64.deb",
            ),
            ("launcher-v2.deb", RELEASE_NAME),
            ("hpe-hpc-launcher_3.4.0-1.dev_amd64.deb", RELEASE_NAME),
            ("hpe-hpc-launcher-3.4.0rc1.deb", RELEASE_NAME),
            ("slurm.deb", RELEASE_NAME),
            ("x.DEB", RELEASE_NAME),
        ] {
            assert_eq!(expected_name(name), expected, "{name}");
        }
        assert_eq!(
            rename_advice("build/l.deb", "hpe-hpc-launcher_3.3.1-REV_amd64.deb"),
            "rename it to hpe-hpc-launcher_3.3.1-REV_amd64.deb (`dpkg-deb -f build/l.deb Version` prints its \
             X.Y.Z-REV)"
        );
        assert_eq!(
            rename_advice("l.deb", "hpe-hpc-launcher_3.3.1-2_amd64.deb"),
            "rename it to hpe-hpc-launcher_3.3.1-2_amd64.deb"
        );
    }

    #[test]
    fn only_debs_count_and_a_release_name_is_read() {
        let found = LocalPackages::of(&[
            at("hpe-hpc-launcher_3.3.1-2_amd64.deb", 10),
            at("manifest.json", 20),
            at(".hpe-hpc-launcher_3.10.1-12_amd64.deb.part", 30),
        ]);
        assert_eq!(found.releases.len(), 1);
        assert_eq!(found.unreadable, []);
        assert_eq!(found.maybe_meant(), None);
    }

    #[test]
    fn the_only_deb_or_the_newest_may_be_the_one_meant() {
        let alone = LocalPackages::of(&[at("hpe-hpc-launcher-3.3.1.deb", 5)]);
        assert_eq!(
            alone.maybe_meant(),
            Some(&UnreadablePackage {
                file_name: "hpe-hpc-launcher-3.3.1.deb".into(),
                expected: "hpe-hpc-launcher_3.3.1-REV_amd64.deb".into(),
                may_be_meant: true,
            })
        );

        // Copied in after the release package: it may be the one meant.
        let newer = LocalPackages::of(&[
            at("hpe-hpc-launcher_3.2.0-1_amd64.deb", 10),
            at("hpe-hpc-launcher-3.3.1.deb", 20),
        ]);
        assert_eq!(newer.releases.len(), 1);
        assert!(newer.maybe_meant().is_some());

        // Older than a release package: only named.
        let older = LocalPackages::of(&[
            at("hpe-hpc-launcher_3.2.0-1_amd64.deb", 30),
            at("hpe-hpc-launcher-3.3.1.deb", 20),
            at("other.deb", 10),
        ]);
        assert_eq!(older.unreadable.len(), 2);
        assert_eq!(older.maybe_meant(), None);

        // Two unreadable ones: the newer may be meant, the older is only named; a tie stops.
        let two = LocalPackages::of(&[at("b.deb", 10), at("a.deb", 20)]);
        let meant: Vec<bool> = two.unreadable.iter().map(|p| p.may_be_meant).collect();
        assert_eq!(meant, [true, false]);
        let tie = LocalPackages::of(&[
            at("hpe-hpc-launcher_3.2.0-1_amd64.deb", 10),
            at("a.deb", 10),
        ]);
        assert!(tie.maybe_meant().is_some());
    }
}
