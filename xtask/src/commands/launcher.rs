//! The HPC launcher package a build installs: the one in build/, one given with `--launcher`,
//! or the newest release from Artifactory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::commands::{load_config, HelpFooter, ARTIFACTORY_ENVIRONMENT};
use crate::edges::artifactory::{self, Artifactory};
use crate::host::{copy_atomically, HostTree};
use crate::model::config::Config;
use crate::model::launcher_version::{releases, LauncherPackage};
use crate::term::{approved, is_interactive, Progress};

/// Show the launcher packages in build/ and the newest release; `--fetch` fetches it.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("launcher", "the packages in build/ and the newest release"),
        ("launcher --fetch", "download the newest release into build/"),
        ("launcher --fetch --yes", "and replace an older one without asking"),
    ],
    environment: ARTIFACTORY_ENVIRONMENT,
    config: &["artifactory.url"],
}.render())]
pub struct Launcher {
    /// Download the newest release into build/ (verified against the server's sha256).
    #[arg(long)]
    pub fetch: bool,
    /// With --fetch: replace an older local package without asking.
    #[arg(long, requires = "fetch")]
    pub yes: bool,
}

impl Launcher {
    pub fn run(self, _sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let config = load_config(host)?;
        let local = local_packages(host)?;
        if local.is_empty() {
            println!(
                "local: no launcher package in {}",
                host.show(&host.build_dir)
            );
        }
        for package in &local {
            println!(
                "local: {} ({})",
                package.version,
                host.show(&host.build_dir.join(&package.file_name))
            );
        }
        let client = Artifactory::from_env(&config.artifactory.url)?;
        let newest = match client.newest_release() {
            Ok(Some(newest)) => newest,
            Ok(None) => bail!(
                "no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {}: check artifactory.url in the config or {}",
                client.folder(),
                artifactory::URL_VAR
            ),
            Err(err) if artifactory::is_unreachable(&err) && local.is_empty() => {
                return Err(anyhow::anyhow!(off_vpn_help(host, &err, false)))
            }
            Err(err) if artifactory::is_unreachable(&err) => {
                let unchecked = format!(
                    "{err:#}: the newest release could not be checked (Artifactory is reachable only on \
                     the company VPN); {}",
                    what_builds_use(host, &local)
                );
                // Asked to download, and nothing was: a failure. Asked only to show, the command
                // has shown what builds use, which works off the VPN, so it warns and succeeds: a
                // script that lists before building is not stopped by a usable build/.
                if self.fetch {
                    bail!("nothing fetched: {unchecked}");
                }
                eprintln!("warning: {unchecked}");
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        println!(
            "newest release: {} ({})",
            newest.version,
            client.url_of(&newest)
        );
        let older: Vec<&LauncherPackage> = local
            .iter()
            .filter(|p| p.version < newest.version)
            .collect();
        if local.iter().any(|p| p.version >= newest.version) {
            println!(
                "{} already holds {}, which is the newest release or newer",
                host.show(&host.build_dir),
                local[0].file_name
            );
            return Ok(());
        }
        if !self.fetch {
            println!("to fetch it: cargo xtask slurm-image launcher --fetch");
            return Ok(());
        }
        if !older.is_empty() {
            let names = older
                .iter()
                .map(|p| p.file_name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let question = format!("replace {names} with {}?", newest.file_name);
            if !approved(self.yes, &question)? {
                if !is_interactive() {
                    bail!(
                        "{} holds the older {names}: rerun with --yes to replace it with {} (no terminal to ask on)",
                        host.show(&host.build_dir),
                        newest.file_name
                    );
                }
                println!("kept {names}");
                return Ok(());
            }
        }
        fetch(host, &client, &newest, &older)?;
        Ok(())
    }
}

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
    _sh: &Shell,
    host: &HostTree,
    config: &Config,
    choice: &ForBuild,
) -> anyhow::Result<LauncherPackage> {
    if let Some(path) = &choice.path {
        return take_given(host, path, choice.dry_run);
    }
    let local = local_packages(host)?;
    if local.len() > 1 {
        bail!(
            "{} launcher packages in {} ({}): remove all but the one to build with, or choose one with --launcher PATH",
            local.len(),
            host.show(&host.build_dir),
            local.iter().map(|p| p.file_name.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    let local = local.into_iter().next();
    if choice.offline {
        let Some(one) = local else {
            bail!(
                "no launcher package in {} and --offline: put one hpe-hpc-launcher_X.Y.Z-REV_amd64.deb there, \
                 or pass --launcher PATH, or drop --offline to fetch the newest release",
                host.show(&host.build_dir)
            );
        };
        eprintln!(
            "launcher: {} (in {}; --offline: releases not looked up)",
            one.file_name,
            host.show(&host.build_dir)
        );
        return Ok(one);
    }

    let client = Artifactory::from_env(&config.artifactory.url)?;
    let newest = match (client.newest_release(), &local) {
        (Ok(newest), _) => newest,
        (Err(err), Some(one)) if artifactory::is_unreachable(&err) => {
            eprintln!(
                "warning: {err:#}; building with the local {} (the company VPN reaches the releases)",
                one.file_name
            );
            return Ok(one.clone());
        }
        (Err(err), None) if artifactory::is_unreachable(&err) => {
            bail!("{}", off_vpn_help(host, &err, true))
        }
        (Err(err), _) => {
            return Err(err.context(
                "looking up the newest launcher release (--offline builds with the package in build/ without looking)",
            ))
        }
    };
    let decision = decide(local.as_ref(), newest.as_ref());
    let build_dir = host.show(&host.build_dir);
    match decision {
        Decision::NoRelease => {
            let Some(one) = local else {
                bail!(
                    "no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {} and none in {build_dir}: \
                     check artifactory.url in the config or {}, or pass --launcher PATH",
                    client.folder(),
                    artifactory::URL_VAR
                );
            };
            eprintln!(
                "warning: no launcher release in {}; building with the local {}",
                client.folder(),
                one.file_name
            );
            Ok(one)
        }
        Decision::Fetch(newest) => {
            if choice.dry_run {
                eprintln!(
                    "launcher: would fetch {} into {build_dir} (dry run)",
                    newest.file_name
                );
                return Ok(newest);
            }
            fetch(host, &client, &newest, &[])?;
            Ok(newest)
        }
        Decision::UseLocal { local, newest } => {
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
        Decision::Newer { local, newest } => {
            let question = format!("replace {} with {}?", local.file_name, newest.file_name);
            // A dry run on a terminal does not ask: it says that a real build would.
            let replace = if choice.dry_run && !choice.yes && is_interactive() {
                eprintln!(
                    "launcher: {} (in {build_dir}); the newer release {} exists: a real build would ask whether to replace it",
                    local.file_name, newest.file_name
                );
                false
            } else {
                approved(choice.yes, &question)?
            };
            if !replace {
                if is_interactive() {
                    eprintln!("launcher: keeping {}", local.file_name);
                } else {
                    eprintln!(
                        "launcher: {} (in {build_dir}); the newer release {} exists: no terminal to ask on, so the local one \
                         is kept; to take the newer one, rerun with --yes or run `cargo xtask slurm-image launcher --fetch --yes`",
                        local.file_name, newest.file_name
                    );
                }
                return Ok(local);
            }
            if choice.dry_run {
                eprintln!(
                    "launcher: would replace {} with {} (dry run)",
                    local.file_name, newest.file_name
                );
                return Ok(newest);
            }
            fetch(host, &client, &newest, &[&local])?;
            Ok(newest)
        }
    }
}

/// What `build` does with the local package and the newest release.
#[derive(Debug, PartialEq)]
enum Decision {
    /// The folder holds no release.
    NoRelease,
    /// Nothing local: fetch the newest.
    Fetch(LauncherPackage),
    /// The local package is the newest release, or newer.
    UseLocal {
        local: LauncherPackage,
        newest: LauncherPackage,
    },
    /// A newer release than the local package exists.
    Newer {
        local: LauncherPackage,
        newest: LauncherPackage,
    },
}

fn decide(local: Option<&LauncherPackage>, newest: Option<&LauncherPackage>) -> Decision {
    match (local, newest) {
        (_, None) => Decision::NoRelease,
        (None, Some(newest)) => Decision::Fetch(newest.clone()),
        (Some(local), Some(newest)) if local.version >= newest.version => Decision::UseLocal {
            local: local.clone(),
            newest: newest.clone(),
        },
        (Some(local), Some(newest)) => Decision::Newer {
            local: local.clone(),
            newest: newest.clone(),
        },
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

/// What to do when Artifactory cannot be reached: the VPN, or a package from elsewhere.
fn off_vpn_help(host: &HostTree, err: &anyhow::Error, for_build: bool) -> String {
    let build_dir = host.show(&host.build_dir);
    let elsewhere = if for_build {
        format!(
            "or build without it: put a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {build_dir}, \
             or pass --launcher PATH"
        )
    } else {
        format!("or copy a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) into {build_dir} by hand")
    };
    format!(
        "{err:#}: the launcher releases on Artifactory are reachable only on the company VPN; connect to it and retry, {elsewhere}"
    )
}

/// What a build without --launcher does with the local packages (at least one).
fn what_builds_use(host: &HostTree, local: &[LauncherPackage]) -> String {
    let build_dir = host.show(&host.build_dir);
    match local {
        [one] => format!(
            "builds use the {} in {build_dir} (`build --offline` does not look for releases)",
            one.file_name
        ),
        _ => format!(
            "{build_dir} holds {} packages, so builds stop until only one is left, or are given \
             one with --launcher PATH",
            local.len()
        ),
    }
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
        // `for_build`): the note says so and how to leave only this one.
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

    fn p(name: &str) -> LauncherPackage {
        LauncherPackage::from_file_name(name).unwrap()
    }

    #[test]
    fn decisions_follow_the_versions() {
        let old = p("hpe-hpc-launcher_3.9.0-0_amd64.deb");
        let new = p("hpe-hpc-launcher_3.10.1-12_amd64.deb");
        assert_eq!(decide(None, None), Decision::NoRelease);
        assert_eq!(decide(Some(&old), None), Decision::NoRelease);
        assert_eq!(decide(None, Some(&new)), Decision::Fetch(new.clone()));
        assert_eq!(
            decide(Some(&old), Some(&new)),
            Decision::Newer {
                local: old.clone(),
                newest: new.clone()
            }
        );
        assert_eq!(
            decide(Some(&new), Some(&new)),
            Decision::UseLocal {
                local: new.clone(),
                newest: new.clone()
            }
        );
        assert_eq!(
            decide(Some(&new), Some(&old)),
            Decision::UseLocal {
                local: new.clone(),
                newest: old.clone()
            }
        );
    }
}
