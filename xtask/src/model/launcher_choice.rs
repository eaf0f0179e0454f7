//! Which launcher package a build, a release or `launcher --fetch` uses: one decision from what
//! was asked, what build/ holds and what Artifactory said, shared by every command and dry run.

use std::path::PathBuf;

use crate::model::artifactory_folder::URL_VAR;
use crate::model::launcher_version::LauncherPackage;
use crate::model::local_packages::{expected_name, rename_advice, UnreadablePackage, RELEASE_NAME};

/// What the user asked for, and for which command.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    /// `--launcher PATH`.
    pub path: Option<PathBuf>,
    /// `--offline`: never contact Artifactory.
    pub offline: bool,
    /// `--yes`: replace an older package in build/ without asking.
    pub yes: bool,
    pub purpose: Purpose,
}

/// Why the launcher is chosen: each wants something different from the newest release.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Purpose {
    /// `build`: the newest release when it can be had, else the package in build/.
    #[default]
    Build,
    /// `release`: a release exists to test the newest release, so only a flag chooses another.
    Release,
    /// `launcher --fetch`: the newest release into build/, or nothing.
    Fetch,
}

/// What looking up the newest release found. `S` is where the newest can be fetched from (the
/// client that found it), carried to the decision that fetches; the model never looks inside.
#[derive(Debug)]
pub enum Lookup<S> {
    Found {
        newest: LauncherPackage,
        from: S,
    },
    /// The folder holds no release.
    NoRelease {
        folder: String,
    },
    /// Artifactory did not answer (off the VPN, most likely, or silent past the lookup's bound).
    Unreachable {
        why: String,
        /// It answered, too late: reachable, so the VPN is not the cause.
        slow: bool,
    },
    /// It answered, but not with a listing (refused credentials, a wrong folder).
    Failed {
        why: String,
    },
}

impl<S> Lookup<S> {
    /// The same finding without the client, for a second decision (what a build would do,
    /// shown by `launcher` and doctor).
    pub fn as_data(&self) -> Lookup<()> {
        match self {
            Lookup::Found { newest, .. } => Lookup::Found {
                newest: newest.clone(),
                from: (),
            },
            Lookup::NoRelease { folder } => Lookup::NoRelease {
                folder: folder.clone(),
            },
            Lookup::Unreachable { why, slow } => Lookup::Unreachable {
                why: why.clone(),
                slow: *slow,
            },
            Lookup::Failed { why } => Lookup::Failed { why: why.clone() },
        }
    }

    /// The newest release in words, the same in every command: `the newest release: 3.10.1-12`,
    /// or unknown and why.
    pub fn newest_line(&self) -> String {
        match self {
            Lookup::Found { newest, .. } => format!("the newest release: {}", newest.version),
            Lookup::NoRelease { folder } => format!(
                "the newest release: none, no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {folder}"
            ),
            Lookup::Unreachable { why, slow: false } => {
                format!("the newest release: unknown, Artifactory is unreachable: {why}")
            }
            Lookup::Unreachable { why, slow: true } => {
                format!("the newest release: unknown, Artifactory answered too slowly: {why}")
            }
            Lookup::Failed { why } => format!("the newest release: unknown: {why}"),
        }
    }
}

/// Where things are and who can answer, as the decision needs them.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    /// The release packages in build/, newest first.
    pub local: &'a [LauncherPackage],
    /// The other `.deb` files in build/, whose names the tool cannot read.
    pub unreadable: &'a [UnreadablePackage],
    /// build/ as the user types it, for messages.
    pub build_dir: &'a str,
    /// Whether a terminal can answer a question.
    pub interactive: bool,
}

/// What is done for the launcher package: decided by [`decide`], carried out by the caller.
#[derive(Debug, PartialEq)]
pub enum Decision<S> {
    /// The package in build/, as it is.
    Use { package: LauncherPackage, why: Kept },
    /// `--launcher PATH`, copied into build/.
    Copy {
        package: LauncherPackage,
        path: PathBuf,
    },
    /// The newest release, downloaded (verified) into build/; then the older packages it
    /// replaces are removed.
    Fetch {
        newest: LauncherPackage,
        replacing: Vec<LauncherPackage>,
        from: S,
    },
    /// A newer release exists: the user at the terminal says whether to replace `local` with it.
    Ask {
        local: LauncherPackage,
        newest: LauncherPackage,
        from: S,
    },
    /// Nothing can be used: `why` says so and names the fix.
    Refuse { why: String },
}

/// Why the package in build/ is the one used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// `--offline`: releases were not looked up.
    Offline,
    /// Artifactory could not be reached.
    Unreachable { why: String, slow: bool },
    /// The folder holds no release.
    NoRelease { folder: String },
    /// It is the newest release.
    Newest,
    /// It is newer than the newest release.
    Newer { newest: LauncherPackage },
    /// A newer release exists, but no terminal can be asked and `--yes` was not given.
    Unasked { newest: LauncherPackage },
}

/// The launcher a plan names: known, or unknown with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    Known(LauncherPackage),
    Unknown { why: String },
}

impl Launcher {
    pub fn known(&self) -> Option<&LauncherPackage> {
        match self {
            Launcher::Known(package) => Some(package),
            Launcher::Unknown { .. } => None,
        }
    }

    /// The package's file name, or `<unknown: why>`.
    pub fn file_name(&self) -> String {
        match self {
            Launcher::Known(package) => package.file_name.clone(),
            Launcher::Unknown { why } => format!("<unknown: {why}>"),
        }
    }
}

/// Decides the launcher package. `look_up` finds the newest release; it is called only when the
/// decision depends on it (not for `--launcher`, `--offline` or a build/ that holds several).
pub fn decide<S>(
    wanted: &Wanted,
    situation: &Situation<'_>,
    look_up: impl FnOnce() -> Lookup<S>,
) -> Decision<S> {
    let build_dir = situation.build_dir;
    if let Some(path) = &wanted.path {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return match LauncherPackage::from_file_name(&name) {
            Some(package) => Decision::Copy {
                package,
                path: path.clone(),
            },
            // The same words as for such a file in build/: one rule, one fix.
            None => Decision::Refuse {
                why: {
                    let shown = path.display().to_string();
                    format!(
                        "--launcher {shown}: the tool reads a launcher package's version from its name, \
                         {RELEASE_NAME} (the image description records it): {}",
                        rename_advice(&shown, &expected_name(&name))
                    )
                },
            },
        };
    }
    if let Some(why) = unreadable_stop(wanted, situation) {
        return Decision::Refuse { why };
    }
    let several = situation.local.len() > 1;
    // A build or an offline release would have to guess which package is meant; a release or a
    // fetch of the newest need not.
    if several && (wanted.purpose == Purpose::Build || wanted.offline) {
        return Decision::Refuse {
            why: several_in_build(situation),
        };
    }
    let local = situation.local.first().cloned();
    if wanted.offline {
        return match local {
            Some(package) => Decision::Use {
                package,
                why: Kept::Offline,
            },
            None => Decision::Refuse {
                why: format!(
                    "no launcher package in {build_dir} and --offline: put one hpe-hpc-launcher_X.Y.Z-REV_amd64.deb there, \
                     or pass --launcher PATH, or drop --offline to fetch the newest release"
                ),
            },
        };
    }
    let purpose = wanted.purpose;
    let instead = format!(
        "or release with another package: --offline (the one in {build_dir}) or --launcher PATH"
    );
    let why = match look_up() {
        Lookup::Found { newest, from } => return found(wanted, situation, newest, from),
        // A release takes nothing in the newest one's place without a flag saying so.
        Lookup::Unreachable { why, slow } if purpose == Purpose::Release => format!(
            "{why}: a release tests the newest launcher release, and {}; {instead}",
            reach_advice(slow)
        ),
        Lookup::Unreachable { why, slow } => match (local, purpose) {
            (Some(package), Purpose::Build) => {
                return Decision::Use {
                    package,
                    why: Kept::Unreachable { why, slow },
                }
            }
            (Some(_), _) => format!(
                "nothing fetched: {}",
                unchecked(&why, slow, &builds_use(situation))
            ),
            (None, _) => off_vpn_help(&why, slow, build_dir, purpose),
        },
        Lookup::NoRelease { folder } => match (local, purpose) {
            (Some(package), Purpose::Build) => {
                return Decision::Use {
                    package,
                    why: Kept::NoRelease { folder },
                }
            }
            (None, Purpose::Build) => format!(
                "no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {folder} and none in {build_dir}: \
                 check artifactory.url in the config or {URL_VAR}, or pass --launcher PATH"
            ),
            (_, Purpose::Release) => format!(
                "no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {folder}: a release tests the newest \
                 one; check artifactory.url in the config or {URL_VAR}, {instead}"
            ),
            (_, _) => format!(
                "no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {folder}: check artifactory.url in \
                 the config or {URL_VAR}"
            ),
        },
        Lookup::Failed { why } if purpose == Purpose::Build => format!(
            "looking up the newest launcher release (--offline builds with the package in build/ without \
             looking): {why}"
        ),
        Lookup::Failed { why } => format!("looking up the newest launcher release: {why}"),
    };
    Decision::Refuse { why }
}

/// The decision once the newest release is known.
fn found<S>(
    wanted: &Wanted,
    situation: &Situation<'_>,
    newest: LauncherPackage,
    from: S,
) -> Decision<S> {
    let local = situation.local;
    if let Some(same) = local.iter().find(|p| p.version == newest.version) {
        return Decision::Use {
            package: same.clone(),
            why: Kept::Newest,
        };
    }
    let older: Vec<LauncherPackage> = local
        .iter()
        .filter(|p| p.version < newest.version)
        .cloned()
        .collect();
    match (local.first(), wanted.purpose) {
        (None, _) => Decision::Fetch {
            newest,
            replacing: Vec::new(),
            from,
        },
        // A release tests the newest release; it was asked to start, and replaces older ones.
        (Some(_), Purpose::Release) => Decision::Fetch {
            newest,
            replacing: older,
            from,
        },
        (Some(newer), _) if newer.version > newest.version => Decision::Use {
            package: newer.clone(),
            why: Kept::Newer { newest },
        },
        (Some(_), _) if wanted.yes => Decision::Fetch {
            newest,
            replacing: older,
            from,
        },
        (Some(local), _) if situation.interactive => Decision::Ask {
            local: local.clone(),
            newest,
            from,
        },
        (Some(local), Purpose::Build) => Decision::Use {
            package: local.clone(),
            why: Kept::Unasked { newest },
        },
        (Some(_), _) => Decision::Refuse {
            why: format!(
                "{} holds the older {}: rerun with --yes to replace it with {} (no terminal to ask on)",
                situation.build_dir,
                names(&older),
                newest.file_name
            ),
        },
    }
}

impl<S> Decision<S> {
    /// The launcher the plan names: for a question not yet answered, the package in build/.
    pub fn launcher(&self) -> Launcher {
        match self {
            Decision::Use { package, .. } | Decision::Copy { package, .. } => {
                Launcher::Known(package.clone())
            }
            Decision::Fetch { newest, .. } => Launcher::Known(newest.clone()),
            Decision::Ask { local, .. } => Launcher::Known(local.clone()),
            Decision::Refuse { why } => Launcher::Unknown { why: why.clone() },
        }
    }

    /// Whether the package is in build/ only once the decision is carried out.
    pub fn changes_build_dir(&self) -> bool {
        matches!(self, Decision::Copy { .. } | Decision::Fetch { .. })
    }

    /// The line that says what was decided, before it is carried out; `None` for a refusal,
    /// which is an error of its own.
    pub fn line(&self, build_dir: &str) -> Option<String> {
        Some(match self {
            Decision::Use { package, why } => kept_line(package, why, build_dir),
            Decision::Copy { package, .. } => {
                format!(
                    "launcher: {} (given with --launcher, copied into {build_dir})",
                    package.file_name
                )
            }
            Decision::Fetch {
                newest, replacing, ..
            } if replacing.is_empty() => format!(
                "launcher: the newest release {} is not in {build_dir}: fetching it",
                newest.file_name
            ),
            Decision::Fetch {
                newest, replacing, ..
            } => format!(
                "launcher: the newest release {} is not in {build_dir}: fetching it, replacing {}",
                newest.file_name,
                names(replacing)
            ),
            Decision::Ask { local, newest, .. } => format!(
                "launcher: {} (in {build_dir}); the newer release {} exists",
                local.file_name, newest.file_name
            ),
            Decision::Refuse { .. } => return None,
        })
    }
}

impl Decision<()> {
    /// What a build does, in a few words, for `launcher` and doctor.
    pub fn what_builds_do(&self) -> String {
        match self {
            Decision::Use { package, why } => {
                let name = &package.file_name;
                match why {
                    Kept::Newest => format!("builds use {name}, the newest release"),
                    Kept::Newer { .. } => format!("builds use {name}, newer than the newest release"),
                    Kept::Unasked { newest } => format!(
                        "builds keep the older {name} when no terminal can be asked; `build --yes` or \
                         `launcher --fetch --yes` takes {}",
                        newest.file_name
                    ),
                    Kept::Offline | Kept::Unreachable { .. } | Kept::NoRelease { .. } => {
                        format!("builds use the local {name}")
                    }
                }
            }
            Decision::Copy { package, .. } => format!("builds copy {}", package.file_name),
            Decision::Fetch { newest, .. } => format!("builds fetch {} first", newest.file_name),
            Decision::Ask { local, newest, .. } => format!(
                "builds ask whether to replace the older {} with {}",
                local.file_name, newest.file_name
            ),
            Decision::Refuse { why } => format!("builds stop: {why}"),
        }
    }
}

fn kept_line(package: &LauncherPackage, why: &Kept, build_dir: &str) -> String {
    let name = &package.file_name;
    match why {
        Kept::Offline => {
            format!("launcher: {name} (in {build_dir}; --offline: releases not looked up)")
        }
        Kept::Unreachable { why, slow: false } => format!(
            "warning: {why}; building with the local {name} (the company VPN reaches the releases)"
        ),
        Kept::Unreachable { why, slow: true } => format!(
            "warning: {why}; building with the local {name} (Artifactory is reachable but answered too slowly)"
        ),
        Kept::NoRelease { folder } => {
            format!("warning: no launcher release in {folder}; building with the local {name}")
        }
        Kept::Newest => format!("launcher: {name} (in {build_dir}; the newest release)"),
        Kept::Newer { newest } => format!(
            "launcher: {name} (in {build_dir}; newer than the newest release, {})",
            newest.version
        ),
        Kept::Unasked { newest } => format!(
            "launcher: {name} (in {build_dir}); the newer release {} exists: no terminal to ask on, so the local \
             one is kept; to take the newer one, rerun with --yes or run `cargo xtask slurm-image launcher --fetch --yes`",
            newest.file_name
        ),
    }
}

/// Why a build stops at a `.deb` in build/ whose name it cannot read, when that may be the
/// package the user meant (see [`UnreadablePackage::may_be_meant`]); `None` when nothing needs
/// guessing: `--launcher` names the package, and a fetch only adds the newest release.
pub fn unreadable_stop(wanted: &Wanted, situation: &Situation<'_>) -> Option<String> {
    if wanted.path.is_some() || wanted.purpose == Purpose::Fetch {
        return None;
    }
    let meant = situation.unreadable.iter().find(|p| p.may_be_meant)?;
    let build_dir = situation.build_dir;
    let path = format!("{build_dir}/{}", meant.file_name);
    let why = if situation.local.is_empty() && situation.unreadable.len() == 1 {
        "it is the only package there".to_string()
    } else {
        "no package there is newer, so it may be the one meant".to_string()
    };
    let otherwise = match situation.local.first() {
        Some(release) => format!(
            "if it is not a launcher package, remove it (builds then use {})",
            release.file_name
        ),
        None => format!("if it is not a launcher package, remove it from {build_dir}"),
    };
    Some(format!(
        "{path} is not named as a launcher package ({RELEASE_NAME}) and {why}: {}; or pass the package \
         to build with as --launcher PATH; {otherwise}",
        rename_advice(&path, &meant.expected)
    ))
}

/// A `.deb` in build/ that a build leaves alone, in words: for the warnings of `build`,
/// `release` and `launcher`, and doctor.
pub fn unreadable_line(package: &UnreadablePackage, build_dir: &str) -> String {
    let path = format!("{build_dir}/{}", package.file_name);
    format!(
        "{path} is not named as a launcher package ({RELEASE_NAME}), so builds leave it alone: if it is \
         one, {}; if not, remove it",
        rename_advice(&path, &package.expected)
    )
}

/// What a build without `--launcher` does with the packages in build/, in words, whatever the
/// releases: for `launcher` and doctor, which say it when the releases cannot be checked.
pub fn builds_use(situation: &Situation<'_>) -> String {
    let build_dir = situation.build_dir;
    if let Some(why) = unreadable_stop(&Wanted::default(), situation) {
        return format!("builds stop: {why}");
    }
    match situation.local {
        [] => format!(
            "builds stop: {build_dir} holds no launcher package (put one there, or pass --launcher PATH)"
        ),
        [one] => format!(
            "builds use the {} in {build_dir} (`build --offline` does not look for releases)",
            one.file_name
        ),
        several => format!(
            "{build_dir} holds {} packages, so builds stop until only one is left, or are given one with \
             --launcher PATH",
            several.len()
        ),
    }
}

/// What an Artifactory that gave no answer in time means for the user, in one clause: off the
/// VPN when it could not be reached, a slow server when it was reached and answered too late.
pub fn reach_advice(slow: bool) -> &'static str {
    if slow {
        "Artifactory is reachable but answered too slowly (so the VPN is not the cause); retry later"
    } else {
        "the launcher releases on Artifactory are reachable only on the company VPN; connect to it and retry"
    }
}

/// The newest release could not be checked, and what builds do meanwhile.
pub fn unchecked(why: &str, slow: bool, builds_use: &str) -> String {
    format!(
        "{why}: the newest release could not be checked ({}); {builds_use}",
        reach_advice(slow)
    )
}

/// What to do when Artifactory cannot be reached and build/ holds nothing: the VPN, or a
/// package from elsewhere.
pub fn off_vpn_help(why: &str, slow: bool, build_dir: &str, purpose: Purpose) -> String {
    let elsewhere = if purpose == Purpose::Build {
        format!(
            "or build without it: put a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {build_dir}, \
             or pass --launcher PATH"
        )
    } else {
        format!("or copy a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) into {build_dir} by hand")
    };
    format!("{why}: {}, {elsewhere}", reach_advice(slow))
}

fn several_in_build(situation: &Situation<'_>) -> String {
    format!(
        "{} launcher packages in {} ({}): remove all but the one to build with, or choose one with --launcher PATH",
        situation.local.len(),
        situation.build_dir,
        names(situation.local)
    )
}

/// The packages' file names, for a message.
pub fn names(packages: &[LauncherPackage]) -> String {
    packages
        .iter()
        .map(|p| p.file_name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILD: &str = "tools/slurm/packer/build";

    fn p(version: &str) -> LauncherPackage {
        LauncherPackage::from_file_name(&format!("hpe-hpc-launcher_{version}_amd64.deb")).unwrap()
    }

    fn wanted(purpose: Purpose, yes: bool) -> Wanted {
        Wanted {
            purpose,
            yes,
            ..Wanted::default()
        }
    }

    /// The decision with the newest release `newest` (the client stands in as `"client"`).
    fn with(
        wanted: &Wanted,
        local: &[LauncherPackage],
        interactive: bool,
        lookup: Lookup<&'static str>,
    ) -> Decision<&'static str> {
        let situation = Situation {
            local,
            unreadable: &[],
            build_dir: BUILD,
            interactive,
        };
        decide(wanted, &situation, || lookup)
    }

    fn found(newest: &LauncherPackage) -> Lookup<&'static str> {
        Lookup::Found {
            newest: newest.clone(),
            from: "client",
        }
    }

    fn unreachable() -> Lookup<&'static str> {
        Lookup::Unreachable {
            why: "cannot reach https://arti.example/f/ (connection failed)".into(),
            slow: false,
        }
    }

    fn no_release() -> Lookup<&'static str> {
        Lookup::NoRelease {
            folder: "https://arti.example/f/".into(),
        }
    }

    fn refusal<S>(decision: Decision<S>) -> String {
        match decision {
            Decision::Refuse { why } => why,
            _ => panic!("not a refusal"),
        }
    }

    #[test]
    fn a_path_several_packages_or_offline_decide_without_a_lookup() {
        let not_looked_up = || -> Lookup<()> { panic!("the newest release was looked up") };
        let (old, new) = (p("3.9.0-0"), p("3.10.1-12"));
        let both = [new.clone(), old.clone()];
        let situation = |local| Situation {
            local,
            unreadable: &[],
            build_dir: BUILD,
            interactive: true,
        };
        let given = Wanted {
            path: Some(PathBuf::from("/dl/hpe-hpc-launcher_3.9.0-7_amd64.deb")),
            ..Wanted::default()
        };
        assert_eq!(
            decide(&given, &situation(&both), not_looked_up),
            Decision::Copy {
                package: p("3.9.0-7"),
                path: PathBuf::from("/dl/hpe-hpc-launcher_3.9.0-7_amd64.deb")
            }
        );
        let renamed = Wanted {
            path: Some(PathBuf::from("/dl/launcher.deb")),
            ..Wanted::default()
        };
        assert_eq!(
            refusal(decide(&renamed, &situation(&[]), not_looked_up)),
            "--launcher /dl/launcher.deb: the tool reads a launcher package's version from its name, \
             hpe-hpc-launcher_X.Y.Z-REV_amd64.deb (the image description records it): rename it to \
             hpe-hpc-launcher_X.Y.Z-REV_amd64.deb (`dpkg-deb -f /dl/launcher.deb Version` prints its X.Y.Z-REV)"
        );
        for offline in [false, true] {
            let build = Wanted {
                offline,
                ..wanted(Purpose::Build, true)
            };
            assert_eq!(
                refusal(decide(&build, &situation(&both), not_looked_up)),
                "2 launcher packages in tools/slurm/packer/build (hpe-hpc-launcher_3.10.1-12_amd64.deb, \
                 hpe-hpc-launcher_3.9.0-0_amd64.deb): remove all but the one to build with, or choose one with \
                 --launcher PATH"
            );
        }
        for purpose in [Purpose::Build, Purpose::Release] {
            let offline = Wanted {
                offline: true,
                ..wanted(purpose, false)
            };
            assert_eq!(
                decide(
                    &offline,
                    &situation(std::slice::from_ref(&old)),
                    not_looked_up
                ),
                Decision::Use {
                    package: old.clone(),
                    why: Kept::Offline
                }
            );
            assert!(refusal(decide(&offline, &situation(&[]), not_looked_up))
                .contains("no launcher package in tools/slurm/packer/build and --offline"));
        }
    }

    #[test]
    fn a_build_follows_the_versions_then_the_flags() {
        let (old, new) = (p("3.9.0-0"), p("3.10.1-12"));
        let build = wanted(Purpose::Build, false);
        let fetch = |replacing: Vec<LauncherPackage>| Decision::Fetch {
            newest: new.clone(),
            replacing,
            from: "client",
        };
        assert_eq!(with(&build, &[], false, found(&new)), fetch(vec![]));
        assert_eq!(
            with(&build, std::slice::from_ref(&new), false, found(&new)),
            Decision::Use {
                package: new.clone(),
                why: Kept::Newest
            }
        );
        let newer = p("4.0.0-0");
        assert_eq!(
            with(&build, std::slice::from_ref(&newer), true, found(&new)),
            Decision::Use {
                package: newer,
                why: Kept::Newer {
                    newest: new.clone()
                }
            }
        );
        // An older one: --yes replaces it; else a terminal is asked, or it is kept unasked.
        let local = std::slice::from_ref(&old);
        for interactive in [false, true] {
            assert_eq!(
                with(
                    &wanted(Purpose::Build, true),
                    local,
                    interactive,
                    found(&new)
                ),
                fetch(vec![old.clone()])
            );
        }
        assert_eq!(
            with(&build, local, true, found(&new)),
            Decision::Ask {
                local: old.clone(),
                newest: new.clone(),
                from: "client"
            }
        );
        assert_eq!(
            with(&build, local, false, found(&new)),
            Decision::Use {
                package: old.clone(),
                why: Kept::Unasked {
                    newest: new.clone()
                }
            }
        );
    }

    #[test]
    fn without_the_newest_a_build_uses_its_own_and_a_release_refuses() {
        let old = p("3.9.0-0");
        let build = wanted(Purpose::Build, false);
        let release = wanted(Purpose::Release, true);
        let local = std::slice::from_ref(&old);
        assert_eq!(
            with(&build, local, false, unreachable()),
            Decision::Use {
                package: old.clone(),
                why: Kept::Unreachable {
                    why: "cannot reach https://arti.example/f/ (connection failed)".into(),
                    slow: false,
                }
            }
        );
        assert_eq!(
            with(&build, local, false, no_release()),
            Decision::Use {
                package: old.clone(),
                why: Kept::NoRelease {
                    folder: "https://arti.example/f/".into()
                }
            }
        );
        let off_vpn = refusal(with(&build, &[], false, unreachable()));
        assert!(
            off_vpn.starts_with("cannot reach https://arti.example/f/ (connection failed): ")
                && off_vpn.contains("VPN")
                && off_vpn.ends_with("or pass --launcher PATH"),
            "{off_vpn}"
        );
        assert!(refusal(with(&build, &[], false, no_release()))
            .contains("and none in tools/slurm/packer/build"));
        let failed = Lookup::Failed {
            why: "HTTP 401".into(),
        };
        assert!(refusal(with(&build, local, false, failed)).ends_with(": HTTP 401"));

        // A release takes nothing in its place without a flag saying so.
        for lookup in [unreachable(), no_release()] {
            let why = refusal(with(&release, local, false, lookup));
            assert!(
                why.contains("a release tests the newest")
                    && why.contains(
                        "--offline (the one in tools/slurm/packer/build) or --launcher PATH"
                    ),
                "{why}"
            );
        }
    }

    #[test]
    fn a_release_fetches_the_newest_over_older_ones_without_asking() {
        let (old, new, newer) = (p("3.9.0-0"), p("3.10.1-12"), p("4.0.0-0"));
        let release = wanted(Purpose::Release, false);
        assert_eq!(
            with(&release, &[newer.clone(), old.clone()], true, found(&new)),
            Decision::Fetch {
                newest: new.clone(),
                replacing: vec![old.clone()],
                from: "client"
            }
        );
        assert_eq!(
            with(&release, &[new.clone(), old], false, found(&new)),
            Decision::Use {
                package: new,
                why: Kept::Newest
            }
        );
    }

    #[test]
    fn a_fetch_replaces_an_older_one_only_when_told_or_answered() {
        let (old, new) = (p("3.9.0-0"), p("3.10.1-12"));
        let local = std::slice::from_ref(&old);
        let fetch = wanted(Purpose::Fetch, false);
        assert!(matches!(
            with(&fetch, local, true, found(&new)),
            Decision::Ask { .. }
        ));
        assert_eq!(
            refusal(with(&fetch, local, false, found(&new))),
            "tools/slurm/packer/build holds the older hpe-hpc-launcher_3.9.0-0_amd64.deb: rerun with --yes to \
             replace it with hpe-hpc-launcher_3.10.1-12_amd64.deb (no terminal to ask on)"
        );
        let off_vpn = refusal(with(&fetch, local, false, unreachable()));
        assert!(
            off_vpn.starts_with("nothing fetched: cannot reach")
                && off_vpn.ends_with(
                    "builds use the hpe-hpc-launcher_3.9.0-0_amd64.deb in tools/slurm/packer/build \
                     (`build --offline` does not look for releases)"
                ),
            "{off_vpn}"
        );
        assert!(refusal(with(&fetch, &[], false, unreachable()))
            .contains("copy a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) into tools/slurm/packer/build"));
    }

    #[test]
    fn a_deb_that_may_be_the_one_meant_stops_a_build_or_release_before_any_lookup() {
        use crate::model::local_packages::{BuildDirFile, LocalPackages};
        let not_looked_up = || -> Lookup<()> { panic!("the newest release was looked up") };
        let at = |name: &str, seconds: u64| BuildDirFile {
            name: name.into(),
            modified: std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
        };
        let alone = LocalPackages::of(&[at("hpe-hpc-launcher-3.3.1.deb", 1)]);
        let situation = Situation {
            local: &alone.releases,
            unreadable: &alone.unreadable,
            build_dir: BUILD,
            interactive: true,
        };
        let stop = "tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a launcher package \
                    (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) and it is the only package there: rename it to \
                    hpe-hpc-launcher_3.3.1-REV_amd64.deb (`dpkg-deb -f \
                    tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb Version` prints its X.Y.Z-REV); or pass \
                    the package to build with as --launcher PATH; if it is not a launcher package, remove it \
                    from tools/slurm/packer/build";
        for purpose in [Purpose::Build, Purpose::Release] {
            for offline in [false, true] {
                let wanted = Wanted {
                    offline,
                    ..wanted(purpose, true)
                };
                assert_eq!(refusal(decide(&wanted, &situation, not_looked_up)), stop);
            }
        }
        assert_eq!(builds_use(&situation), format!("builds stop: {stop}"));

        // Copied in after a release package: the same stop, and removing it is the other way.
        let newer = LocalPackages::of(&[
            at("hpe-hpc-launcher_3.2.0-1_amd64.deb", 1),
            at("hpe-hpc-launcher-3.3.1.deb", 2),
        ]);
        let situation = Situation {
            local: &newer.releases,
            unreadable: &newer.unreadable,
            ..situation
        };
        let why = refusal(decide(
            &wanted(Purpose::Build, false),
            &situation,
            not_looked_up,
        ));
        assert!(
            why.contains("no package there is newer, so it may be the one meant")
                && why.ends_with("remove it (builds then use hpe-hpc-launcher_3.2.0-1_amd64.deb)"),
            "{why}"
        );

        // --launcher names the package; a fetch only adds the newest: neither guesses.
        let given = Wanted {
            path: Some(PathBuf::from("/dl/hpe-hpc-launcher_3.9.0-7_amd64.deb")),
            ..Wanted::default()
        };
        assert!(matches!(
            decide(&given, &situation, not_looked_up),
            Decision::Copy { .. }
        ));
        assert_eq!(
            unreadable_stop(&wanted(Purpose::Fetch, true), &situation),
            None
        );

        // Older than the release package: named, never a stop.
        let older = LocalPackages::of(&[
            at("hpe-hpc-launcher_3.2.0-1_amd64.deb", 2),
            at("hpe-hpc-launcher-3.3.1.deb", 1),
        ]);
        let situation = Situation {
            local: &older.releases,
            unreadable: &older.unreadable,
            ..situation
        };
        assert_eq!(unreadable_stop(&Wanted::default(), &situation), None);
        assert_eq!(
            unreadable_line(&older.unreadable[0], BUILD),
            "tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a launcher package \
             (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb), so builds leave it alone: if it is one, rename it to \
             hpe-hpc-launcher_3.3.1-REV_amd64.deb (`dpkg-deb -f tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb \
             Version` prints its X.Y.Z-REV); if not, remove it"
        );
    }

    #[test]
    fn a_refusal_leaves_the_launcher_unknown_and_says_why() {
        let decision: Decision<()> = Decision::Refuse {
            why: "cannot reach x".into(),
        };
        let launcher = decision.launcher();
        assert_eq!(launcher.known(), None);
        assert_eq!(launcher.file_name(), "<unknown: cannot reach x>");
        assert_eq!(decision.line(BUILD), None);
        assert_eq!(
            Lookup::<()>::Unreachable {
                why: "cannot reach x".into(),
                slow: false,
            }
            .newest_line(),
            "the newest release: unknown, Artifactory is unreachable: cannot reach x"
        );
    }
}
