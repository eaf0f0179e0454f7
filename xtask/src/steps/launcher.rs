//! The HPC launcher package a build installs: the one in build/, one given with `--launcher`,
//! or the newest release from Artifactory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::edges::artifactory::{self, Artifactory};
use crate::host::{copy_atomically, HostTree};
use crate::model::config::Config;
use crate::model::launcher_version::{releases, LauncherPackage};
use crate::term::{confirm, is_interactive, Progress};

/// The launcher release packages in build/, newest first.
pub fn local_packages(host: &HostTree) -> anyhow::Result<Vec<LauncherPackage>> {
    let entries = match std::fs::read_dir(&host.build_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(err).with_context(|| format!("listing {}", host.build_dir.display()))
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", host.build_dir.display()))?;
        if entry.file_type()?.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(releases(names.iter().map(String::as_str)))
}

/// How `build` was asked to choose its launcher.
pub struct ForBuild {
    /// `--launcher PATH`.
    pub path: Option<PathBuf>,
    /// `--offline`: never contact Artifactory.
    pub offline: bool,
    /// `--yes`: replace an older local package without asking.
    pub yes: bool,
    /// `--dry-run`: decide, but change nothing in build/.
    pub dry_run: bool,
}

/// The launcher package a build installs; on return it is in build/ (unless `dry_run`).
pub fn for_build(
    host: &HostTree,
    config: &Config,
    asked: &ForBuild,
) -> anyhow::Result<LauncherPackage> {
    if let Some(path) = &asked.path {
        return take_given(host, path, asked.dry_run);
    }
    let local = local_packages(host)?;
    // Made only when the plan needs the newest release, and kept for the fetch.
    let mut client = None;
    let plan = plan_for_build(&local, asked, is_interactive(), || {
        let client = client.insert(Artifactory::from_env(&config.artifactory.url)?);
        client.newest_release().map_err(|err| {
            // Off the VPN is a plan of its own, told in its own words.
            if artifactory::is_unreachable(&err) {
                err
            } else {
                err.context(
                    "looking up the newest launcher release (--offline builds with the package in build/ without looking)",
                )
            }
        })
    })?;
    carry_out(host, client.as_ref(), plan, asked.dry_run)
}

/// What a build does for its launcher package: decided by [`plan_for_build`], done by
/// [`carry_out`].
#[derive(Debug, PartialEq)]
enum LauncherPlan {
    /// build/ holds several packages: which one is meant is for the user to say.
    SeveralInBuild(Vec<LauncherPackage>),
    /// `--offline`: the package in build/, if there is one.
    Offline(Option<LauncherPackage>),
    /// Artifactory cannot be reached (`cause`): the package in build/, if there is one.
    Unreachable {
        local: Option<LauncherPackage>,
        cause: String,
        /// It answered, too slowly: reachable, so the VPN is not the cause.
        slow: bool,
    },
    /// The folder holds no release: the package in build/, if there is one.
    NoRelease(Option<LauncherPackage>),
    /// build/ holds none: fetch the newest release.
    Fetch(LauncherPackage),
    /// build/ holds the newest release, or a newer package.
    UpToDate {
        local: LauncherPackage,
        newest: LauncherPackage,
    },
    /// A newer release exists, and `--yes` says to take it.
    Replace {
        local: LauncherPackage,
        newest: LauncherPackage,
    },
    /// A newer release exists: the user at the terminal says whether to take it.
    Ask {
        local: LauncherPackage,
        newest: LauncherPackage,
    },
    /// A newer release exists, but there is no terminal to ask on: the local one is kept.
    KeepUnasked {
        local: LauncherPackage,
        newest: LauncherPackage,
    },
    /// A newer release exists, and this dry run at a terminal says that a real build would ask.
    WouldAsk {
        local: LauncherPackage,
        newest: LauncherPackage,
    },
}

/// Decides what a build does for its launcher from the packages in build/, what it was asked
/// and whether a terminal can answer. `newest_release` looks the newest release up; it is
/// called only when the plan depends on it, and its errors end the plan, but for an
/// unreachable Artifactory, which is a plan of its own.
fn plan_for_build(
    local: &[LauncherPackage],
    asked: &ForBuild,
    interactive: bool,
    newest_release: impl FnOnce() -> anyhow::Result<Option<LauncherPackage>>,
) -> anyhow::Result<LauncherPlan> {
    let local = match local {
        [] => None,
        [one] => Some(one.clone()),
        several => return Ok(LauncherPlan::SeveralInBuild(several.to_vec())),
    };
    if asked.offline {
        return Ok(LauncherPlan::Offline(local));
    }
    let newest = match newest_release() {
        Ok(newest) => newest,
        Err(err) if artifactory::is_unreachable(&err) => {
            return Ok(LauncherPlan::Unreachable {
                local,
                cause: format!("{err:#}"),
                slow: artifactory::is_slow(&err),
            })
        }
        Err(err) => return Err(err),
    };
    Ok(match (local, newest) {
        (local, None) => LauncherPlan::NoRelease(local),
        (None, Some(newest)) => LauncherPlan::Fetch(newest),
        (Some(local), Some(newest)) if local.version >= newest.version => {
            LauncherPlan::UpToDate { local, newest }
        }
        (Some(local), Some(newest)) => match (asked.yes, interactive, asked.dry_run) {
            (true, _, _) => LauncherPlan::Replace { local, newest },
            (false, false, _) => LauncherPlan::KeepUnasked { local, newest },
            (false, true, true) => LauncherPlan::WouldAsk { local, newest },
            (false, true, false) => LauncherPlan::Ask { local, newest },
        },
    })
}

/// Does what `plan` says, saying so: asks, fetches, or fails with what to do instead. A dry
/// run says what it would fetch and fetches nothing. `client` is the one the lookup made.
fn carry_out(
    host: &HostTree,
    client: Option<&Artifactory>,
    plan: LauncherPlan,
    dry_run: bool,
) -> anyhow::Result<LauncherPackage> {
    let build_dir = host.show(&host.build_dir);
    // A plan that fetches or names the folder was made after the lookup, which made the client.
    let client = || client.expect("a plan made after the lookup has its client");
    match plan {
        LauncherPlan::SeveralInBuild(several) => bail!(
            "{} launcher packages in {build_dir} ({}): remove all but the one to build with, or choose one with --launcher PATH",
            several.len(),
            several.iter().map(|p| p.file_name.as_str()).collect::<Vec<_>>().join(", ")
        ),
        LauncherPlan::Offline(None) => bail!(
            "no launcher package in {build_dir} and --offline: put one hpe-hpc-launcher_X.Y.Z-REV_amd64.deb there, \
             or pass --launcher PATH, or drop --offline to fetch the newest release"
        ),
        LauncherPlan::Offline(Some(one)) => {
            eprintln!(
                "launcher: {} (in {build_dir}; --offline: releases not looked up)",
                one.file_name
            );
            Ok(one)
        }
        LauncherPlan::Unreachable {
            local: Some(one),
            cause,
            slow,
        } => {
            let why = if slow {
                "Artifactory is reachable but slow"
            } else {
                "the company VPN reaches the releases"
            };
            eprintln!(
                "warning: {cause}; building with the local {} ({why})",
                one.file_name
            );
            Ok(one)
        }
        LauncherPlan::Unreachable {
            local: None,
            cause,
            slow,
        } => {
            bail!("{}", off_vpn_help(host, &cause, slow, true))
        }
        LauncherPlan::NoRelease(None) => bail!(
            "no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {} and none in {build_dir}: \
             check artifactory.url in the config or {}, or pass --launcher PATH",
            client().folder(),
            artifactory::URL_VAR
        ),
        LauncherPlan::NoRelease(Some(one)) => {
            eprintln!(
                "warning: no launcher release in {}; building with the local {}",
                client().folder(),
                one.file_name
            );
            Ok(one)
        }
        LauncherPlan::Fetch(newest) => {
            if dry_run {
                eprintln!(
                    "launcher: would fetch {} into {build_dir} (dry run)",
                    newest.file_name
                );
            } else {
                fetch(host, client(), &newest, &[])?;
            }
            Ok(newest)
        }
        LauncherPlan::UpToDate { local, newest } => {
            if local.version == newest.version {
                eprintln!(
                    "launcher: {} (in {build_dir}; the newest release)",
                    local.file_name
                );
            } else {
                eprintln!(
                    "launcher: {} (in {build_dir}; newer than the newest release, {})",
                    local.file_name, newest.version
                );
            }
            Ok(local)
        }
        LauncherPlan::WouldAsk { local, newest } => {
            eprintln!(
                "launcher: {} (in {build_dir}); the newer release {} exists: a real build would ask whether to replace it",
                local.file_name, newest.file_name
            );
            eprintln!("launcher: keeping {}", local.file_name);
            Ok(local)
        }
        LauncherPlan::KeepUnasked { local, newest } => {
            eprintln!(
                "launcher: {} (in {build_dir}); the newer release {} exists: no terminal to ask on, so the local one \
                 is kept; to take the newer one, rerun with --yes or run `cargo xtask slurm-image launcher --fetch --yes`",
                local.file_name, newest.file_name
            );
            Ok(local)
        }
        LauncherPlan::Ask { local, newest } => {
            if !confirm(&format!(
                "replace {} with {}?",
                local.file_name, newest.file_name
            ))? {
                eprintln!("launcher: keeping {}", local.file_name);
                return Ok(local);
            }
            fetch(host, client(), &newest, &[&local])?;
            Ok(newest)
        }
        LauncherPlan::Replace { local, newest } => {
            if dry_run {
                eprintln!(
                    "launcher: would replace {} with {} (dry run)",
                    local.file_name, newest.file_name
                );
            } else {
                fetch(host, client(), &newest, &[&local])?;
            }
            Ok(newest)
        }
    }
}

/// Downloads `newest` into build/ verified, then removes the packages it replaces (only once
/// the new one is in place, so a failed download leaves the old one usable).
pub fn fetch(
    host: &HostTree,
    client: &Artifactory,
    newest: &LauncherPackage,
    replaced: &[&LauncherPackage],
) -> anyhow::Result<()> {
    let sweep = artifactory::remove_stale_partials(&host.build_dir)?;
    if let Some(summary) = sweep.summary() {
        eprintln!("launcher: {summary}");
    }
    let mut progress = Progress::new(newest.file_name.clone());
    let path = client
        .download(newest, &host.build_dir, &mut progress)
        // The client names the file and the server; this layer knows only why it is fetched.
        .context("fetching the newest launcher release")?;
    eprintln!("launcher: fetched {} (sha256 verified)", host.show(&path));
    for old in replaced {
        let old_path = host.build_dir.join(&old.file_name);
        std::fs::remove_file(&old_path)
            .with_context(|| format!("removing the replaced {}", old_path.display()))?;
        eprintln!("launcher: removed the older {}", host.show(&old_path));
    }
    Ok(())
}

/// What to do when Artifactory cannot be reached (or is `slow`): the VPN or a retry, or a
/// package from elsewhere.
pub fn off_vpn_help(host: &HostTree, cause: &str, slow: bool, for_build: bool) -> String {
    let build_dir = host.show(&host.build_dir);
    let elsewhere = if for_build {
        format!(
            "or build without it: put a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {build_dir}, \
             or pass --launcher PATH"
        )
    } else {
        format!("or copy a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) into {build_dir} by hand")
    };
    format!("{cause}: {}, {elsewhere}", artifactory::reach_advice(slow))
}

/// `--launcher PATH`: checked that it is there, then by name, then copied into build/ so the
/// template finds it there.
fn take_given(host: &HostTree, path: &Path, dry_run: bool) -> anyhow::Result<LauncherPackage> {
    // A mistyped path is the likelier mistake, and renaming a file that is not there fixes nothing.
    if !path.is_file() {
        if path.exists() {
            bail!("--launcher {}: not a file", path.display());
        }
        bail!("--launcher {}: no such file", path.display());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(package) = LauncherPackage::from_file_name(&name) else {
        bail!(
            "--launcher {}: the file name must be hpe-hpc-launcher_X.Y.Z-REV_amd64.deb, the name of a release \
             (the image description records it)",
            path.display()
        );
    };
    let target = host.build_dir.join(&package.file_name);
    let same_file = target.canonicalize().ok() == path.canonicalize().ok();
    if dry_run || same_file {
        return Ok(package);
    }
    std::fs::create_dir_all(&host.build_dir)
        .with_context(|| format!("creating {}", host.build_dir.display()))?;
    copy_atomically(path, &target)?;
    eprintln!(
        "launcher: {} (copied into {})",
        package.file_name,
        host.show(&host.build_dir)
    );
    let others: Vec<String> = local_packages(host)?
        .into_iter()
        .map(|p| p.file_name)
        .filter(|name| *name != package.file_name)
        .collect();
    if !others.is_empty() {
        // A build without --launcher refuses to choose among several packages (see
        // `plan_for_build`): the note says so and how to leave only this one.
        let paths: Vec<String> = others
            .iter()
            .map(|name| host.show(&host.build_dir.join(name)))
            .collect();
        eprintln!(
            "note: {} also holds {}: a later build without --launcher stops until only one package \
             is left; to keep only {}: rm {}",
            host.show(&host.build_dir),
            others.join(", "),
            package.file_name,
            paths.join(" ")
        );
    }
    Ok(package)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edges::artifactory::Unreachable;

    fn p(name: &str) -> LauncherPackage {
        LauncherPackage::from_file_name(name).unwrap()
    }

    fn asked(offline: bool, yes: bool, dry_run: bool) -> ForBuild {
        ForBuild {
            path: None,
            offline,
            yes,
            dry_run,
        }
    }

    /// The plan when the lookup finds `newest`.
    fn plan(
        local: &[LauncherPackage],
        asked: &ForBuild,
        interactive: bool,
        newest: Option<&LauncherPackage>,
    ) -> LauncherPlan {
        plan_for_build(local, asked, interactive, || Ok(newest.cloned())).unwrap()
    }

    fn not_looked_up() -> anyhow::Result<Option<LauncherPackage>> {
        panic!("the newest release was looked up")
    }

    #[test]
    fn several_packages_or_offline_decide_without_a_lookup() {
        let (old, new) = (
            p("hpe-hpc-launcher_3.9.0-0_amd64.deb"),
            p("hpe-hpc-launcher_3.10.1-12_amd64.deb"),
        );
        let both = [new.clone(), old.clone()];
        for offline in [false, true] {
            assert_eq!(
                plan_for_build(&both, &asked(offline, true, false), true, not_looked_up).unwrap(),
                LauncherPlan::SeveralInBuild(both.to_vec())
            );
        }
        let offline = asked(true, false, false);
        assert_eq!(
            plan_for_build(std::slice::from_ref(&old), &offline, false, not_looked_up).unwrap(),
            LauncherPlan::Offline(Some(old))
        );
        assert_eq!(
            plan_for_build(&[], &offline, false, not_looked_up).unwrap(),
            LauncherPlan::Offline(None)
        );
    }

    #[test]
    fn an_unreachable_artifactory_is_a_plan_and_other_failures_are_errors() {
        let old = p("hpe-hpc-launcher_3.9.0-0_amd64.deb");
        let unreachable = || {
            Err(anyhow::Error::new(Unreachable {
                url: "https://arti.example/artifactory/r/f/".into(),
                cause: "host not found".into(),
                slow: false,
            })
            .context("listing the releases"))
        };
        assert_eq!(
            plan_for_build(std::slice::from_ref(&old), &asked(false, false, false), false, unreachable)
                .unwrap(),
            LauncherPlan::Unreachable {
                local: Some(old),
                cause: "listing the releases: cannot reach https://arti.example/artifactory/r/f/ (host not found)"
                    .into(),
                slow: false,
            }
        );
        assert!(matches!(
            plan_for_build(&[], &asked(false, false, false), false, unreachable).unwrap(),
            LauncherPlan::Unreachable { local: None, .. }
        ));
        let err = plan_for_build(&[], &asked(false, true, false), true, || {
            Err(anyhow::anyhow!("HTTP 401"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "HTTP 401");
    }

    #[test]
    fn plans_follow_the_versions_then_the_flags() {
        let old = p("hpe-hpc-launcher_3.9.0-0_amd64.deb");
        let new = p("hpe-hpc-launcher_3.10.1-12_amd64.deb");
        let plain = asked(false, false, false);
        assert_eq!(
            plan(&[], &plain, false, None),
            LauncherPlan::NoRelease(None)
        );
        assert_eq!(
            plan(std::slice::from_ref(&old), &plain, false, None),
            LauncherPlan::NoRelease(Some(old.clone()))
        );
        assert_eq!(
            plan(&[], &plain, false, Some(&new)),
            LauncherPlan::Fetch(new.clone())
        );
        for (local, newest) in [(&new, &new), (&new, &old)] {
            assert_eq!(
                plan(
                    std::slice::from_ref(local),
                    &asked(false, true, false),
                    true,
                    Some(newest)
                ),
                LauncherPlan::UpToDate {
                    local: local.clone(),
                    newest: newest.clone()
                }
            );
        }
        // A newer release: --yes takes it; without it, a terminal is asked, or would be.
        let newer = |yes, dry_run, interactive| {
            plan(
                std::slice::from_ref(&old),
                &asked(false, yes, dry_run),
                interactive,
                Some(&new),
            )
        };
        let (local, newest) = (old.clone(), new.clone());
        for (dry_run, interactive) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(
                newer(true, dry_run, interactive),
                LauncherPlan::Replace {
                    local: local.clone(),
                    newest: newest.clone()
                }
            );
        }
        for dry_run in [false, true] {
            assert_eq!(
                newer(false, dry_run, false),
                LauncherPlan::KeepUnasked {
                    local: local.clone(),
                    newest: newest.clone()
                }
            );
        }
        assert_eq!(
            newer(false, false, true),
            LauncherPlan::Ask {
                local: local.clone(),
                newest: newest.clone()
            }
        );
        assert_eq!(
            newer(false, true, true),
            LauncherPlan::WouldAsk { local, newest }
        );
    }
}
