//! The HPC launcher package in build/: the lookup of the newest release, and carrying out the
//! decision of `model::launcher_choice` (fetch, copy, ask).

use std::path::Path;

use anyhow::{bail, Context};

use crate::edges::artifactory::{self, Artifactory};
use crate::host::{copy_atomically, HostTree};
use crate::model::config::Config;
use crate::model::launcher_choice::{
    self, unreadable_line, unreadable_stop, Decision, Launcher, Lookup, Situation, Wanted,
};
use crate::model::launcher_version::LauncherPackage;
use crate::model::local_packages::{BuildDirFile, LocalPackages};
use crate::term::{confirm, is_interactive, Progress};

/// The launcher release packages in build/, newest first.
pub fn local_packages(host: &HostTree) -> anyhow::Result<Vec<LauncherPackage>> {
    Ok(build_dir_packages(host)?.releases)
}

/// The `.deb` files in build/: the release packages, and those whose names the tool cannot
/// read ([`LocalPackages::of`] decides, from the names and modification times).
pub fn build_dir_packages(host: &HostTree) -> anyhow::Result<LocalPackages> {
    let entries = match std::fs::read_dir(&host.build_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(LocalPackages::default())
        }
        Err(err) => {
            return Err(err).with_context(|| format!("listing {}", host.build_dir.display()))
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", host.build_dir.display()))?;
        let metadata = entry.metadata()?;
        if metadata.is_file() {
            files.push(BuildDirFile {
                name: entry.file_name().to_string_lossy().into_owned(),
                // A file system without modification times makes every file as new as any.
                modified: metadata.modified().unwrap_or(std::time::UNIX_EPOCH),
            });
        }
    }
    Ok(LocalPackages::of(&files))
}

/// The launcher decided for a command, and what the lookup of the newest release said.
pub struct Chosen {
    pub decision: Decision<Artifactory>,
    /// [`Lookup::newest_line`], when the decision looked the newest release up.
    pub newest: Option<String>,
}

impl Chosen {
    /// The launcher a plan names; when it is unknown, why in a few words: what the lookup
    /// found, or that a real run would stop (the refusal itself is long, and said once).
    pub fn planned(&self) -> Launcher {
        match self.decision.launcher() {
            Launcher::Unknown { .. } => Launcher::Unknown {
                why: self
                    .newest
                    .clone()
                    .unwrap_or_else(|| "a real run would stop, as the plan ends by saying".into()),
            },
            known => known,
        }
    }
}

/// Decides the launcher package for `wanted` ([`launcher_choice::decide`]), looking the newest
/// release up only when the decision depends on it. Fails before deciding on what no decision
/// can mend: a `--launcher` path that is not there, a setting that makes no client.
pub fn choose(host: &HostTree, config: &Config, wanted: &Wanted) -> anyhow::Result<Chosen> {
    if let Some(path) = &wanted.path {
        // A mistyped path is the likelier mistake, and renaming a file that is not there
        // fixes nothing: this comes before the name is checked.
        if !path.is_file() {
            if path.exists() {
                bail!("--launcher {}: not a file", path.display());
            }
            bail!("--launcher {}: no such file", path.display());
        }
    }
    let local = build_dir_packages(host)?;
    let build_dir = host.show(&host.build_dir);
    let situation = Situation {
        local: &local.releases,
        unreadable: &local.unreadable,
        build_dir: &build_dir,
        interactive: is_interactive(),
    };
    // Every `.deb` is accounted for: the stop names the one that may be meant, and the rest
    // are named here.
    if unreadable_stop(wanted, &situation).is_none() {
        for package in &local.unreadable {
            errln!("warning: {}", unreadable_line(package, &build_dir));
        }
    }
    let mut newest = None;
    let mut bad_setting = None;
    let decision = launcher_choice::decide(wanted, &situation, || match look_up(config) {
        Ok(lookup) => {
            newest = Some(lookup.newest_line());
            lookup
        }
        Err(err) => {
            let why = format!("{err:#}");
            bad_setting = Some(err);
            Lookup::Failed { why }
        }
    });
    if let Some(err) = bad_setting {
        return Err(err);
    }
    Ok(Chosen { decision, newest })
}

/// Looks the newest release up. An error is a setting that makes no client (a URL with
/// credentials, a number out of range); what the server says is the [`Lookup`].
pub fn look_up(config: &Config) -> anyhow::Result<Lookup<Artifactory>> {
    let client = Artifactory::from_env(&config.artifactory)?;
    Ok(match client.newest_release() {
        Ok(Some(newest)) => Lookup::Found {
            newest,
            from: client,
        },
        Ok(None) => Lookup::NoRelease {
            folder: client.folder().to_string(),
        },
        Err(err) if artifactory::is_unreachable(&err) => Lookup::Unreachable {
            why: format!("{err:#}"),
            slow: artifactory::is_slow(&err),
        },
        Err(err) => Lookup::Failed {
            why: format!("{err:#}"),
        },
    })
}

/// Does what `decision` says, saying so, and returns the package, then in build/: fetches,
/// copies or asks; a refusal is the error. A dry run says what it would do and does nothing.
pub fn carry_out(
    host: &HostTree,
    decision: Decision<Artifactory>,
    dry_run: bool,
) -> anyhow::Result<LauncherPackage> {
    let build_dir = host.show(&host.build_dir);
    let line = decision.line(&build_dir);
    match decision {
        Decision::Refuse { why } => bail!("{why}"),
        Decision::Use { package, .. } => {
            errln!("{}", line.unwrap_or_default());
            Ok(package)
        }
        Decision::Copy { package, path } if dry_run => {
            errln!(
                "launcher: would copy {} into {build_dir} (dry run)",
                path.display()
            );
            Ok(package)
        }
        Decision::Copy { package, path } => {
            copy_given(host, &path, &package)?;
            errln!("{}", line.unwrap_or_default());
            Ok(package)
        }
        Decision::Fetch {
            newest, replacing, ..
        } if dry_run => {
            match replacing.as_slice() {
                [] => errln!(
                    "launcher: would fetch {} into {build_dir} (dry run)",
                    newest.file_name
                ),
                replaced => errln!(
                    "launcher: would replace {} with {} (dry run)",
                    launcher_choice::names(replaced),
                    newest.file_name
                ),
            }
            Ok(newest)
        }
        Decision::Fetch {
            newest,
            replacing,
            from,
        } => {
            errln!("{}", line.unwrap_or_default());
            let replacing: Vec<&LauncherPackage> = replacing.iter().collect();
            fetch(host, &from, &newest, &replacing)?;
            Ok(newest)
        }
        Decision::Ask { local, .. } if dry_run => {
            errln!(
                "{}: a real build would ask whether to replace it",
                line.unwrap_or_default()
            );
            Ok(local)
        }
        Decision::Ask {
            local,
            newest,
            from,
        } => {
            errln!("{}", line.unwrap_or_default());
            if !confirm(&format!(
                "replace {} with {}?",
                local.file_name, newest.file_name
            ))? {
                errln!("launcher: keeping {}", local.file_name);
                return Ok(local);
            }
            fetch(host, &from, &newest, &[&local])?;
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
        errln!("launcher: {summary}");
    }
    let mut progress = Progress::new(newest.file_name.clone());
    let path = client
        .download(newest, &host.build_dir, &mut progress)
        // The client names the file and the server; this layer knows only why it is fetched.
        .context("fetching the newest launcher release")?;
    errln!("launcher: fetched {} (sha256 verified)", host.show(&path));
    for old in replaced {
        let old_path = host.build_dir.join(&old.file_name);
        std::fs::remove_file(&old_path)
            .with_context(|| format!("removing the replaced {}", old_path.display()))?;
        errln!("launcher: removed the older {}", host.show(&old_path));
    }
    Ok(())
}

/// Copies the `--launcher` package into build/, where the template finds it, and says what
/// else build/ holds.
fn copy_given(host: &HostTree, path: &Path, package: &LauncherPackage) -> anyhow::Result<()> {
    let target = host.build_dir.join(&package.file_name);
    if target.canonicalize().ok() == path.canonicalize().ok() {
        return Ok(());
    }
    std::fs::create_dir_all(&host.build_dir)
        .with_context(|| format!("creating {}", host.build_dir.display()))?;
    copy_atomically(path, &target)?;
    let others: Vec<String> = local_packages(host)?
        .into_iter()
        .map(|p| p.file_name)
        .filter(|name| *name != package.file_name)
        .collect();
    if !others.is_empty() {
        // A build without --launcher refuses to choose among several packages (see
        // `launcher_choice::decide`): the note says so and how to leave only this one.
        let paths: Vec<String> = others
            .iter()
            .map(|name| host.show(&host.build_dir.join(name)))
            .collect();
        errln!(
            "note: {} also holds {}: a later build without --launcher stops until only one package \
             is left; to keep only {}: rm {}",
            host.show(&host.build_dir),
            others.join(", "),
            package.file_name,
            paths.join(" ")
        );
    }
    Ok(())
}
