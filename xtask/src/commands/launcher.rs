//! The HPC launcher package a build installs: the one in build/, one given with `--launcher`,
//! or (issue 3) the newest release from Artifactory.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::host::{write_atomically, HostTree};
use crate::model::config::Config;
use crate::model::launcher_version::{releases, LauncherPackage};

/// Show the launcher packages in build/ and the newest release; `--fetch` fetches it.
#[derive(Args)]
pub struct Launcher {
    /// Download the newest release into build/ (verified against the server's sha256).
    #[arg(long)]
    pub fetch: bool,
    /// Replace an older local package without asking.
    #[arg(long)]
    pub yes: bool,
}

impl Launcher {
    pub fn run(self, _sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let local = local_packages(host)?;
        if local.is_empty() {
            println!("no launcher package in {}", host.show(&host.build_dir));
        }
        for package in &local {
            println!(
                "local: {} ({})",
                package.version,
                host.show(&host.build_dir.join(&package.file_name))
            );
        }
        bail!("looking up releases on Artifactory is not built yet (issue 3)")
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
    _config: &Config,
    choice: &ForBuild,
) -> anyhow::Result<LauncherPackage> {
    if let Some(path) = &choice.path {
        return take_given(host, path, choice.dry_run);
    }
    let local = local_packages(host)?;
    match local.as_slice() {
        [one] => {
            eprintln!("launcher: {} (in {})", one.file_name, host.show(&host.build_dir));
            Ok(one.clone())
        }
        [] => bail!(
            "no launcher package in {}: put one hpe-hpc-launcher_X.Y.Z-REV_amd64.deb there, or pass --launcher PATH",
            host.show(&host.build_dir)
        ),
        several => bail!(
            "{} launcher packages in {} ({}): remove all but the one to build with, or choose one with --launcher PATH",
            several.len(),
            host.show(&host.build_dir),
            several.iter().map(|p| p.file_name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `--launcher PATH`: checked by name, then copied into build/ so the template finds it there.
fn take_given(host: &HostTree, path: &Path, dry_run: bool) -> anyhow::Result<LauncherPackage> {
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
    if !path.is_file() {
        bail!("--launcher {}: no such file", path.display());
    }
    let target = host.build_dir.join(&package.file_name);
    let same_file = target.canonicalize().ok() == path.canonicalize().ok();
    if dry_run || same_file {
        return Ok(package);
    }
    std::fs::create_dir_all(&host.build_dir)
        .with_context(|| format!("creating {}", host.build_dir.display()))?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    write_atomically(&target, &bytes)?;
    eprintln!(
        "launcher: {} (copied into {})",
        package.file_name,
        host.show(&host.build_dir)
    );
    Ok(package)
}
