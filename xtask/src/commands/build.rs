use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;
use sha2::{Digest, Sha256};
use xshell::Shell;

use crate::commands::{images, launcher, load_config, read_images_conf};
use crate::edges::packer::{self, Outcome};
use crate::host::{write_atomically, HostTree};
use crate::model::config::Config;
use crate::model::images_conf::Change;
use crate::model::variables::{BuildInputs, Variables};
use crate::model::{hex, manifest, WorkloadManager};
use crate::term::{is_interactive, signal_name, Interrupted};

/// Build an image with packer and pin it in images.conf.
#[derive(Args)]
pub struct Build {
    /// The workload manager the image is for.
    #[arg(long, value_enum, default_value_t = WorkloadManager::Slurm)]
    pub wm: WorkloadManager,
    /// Run `packer build -debug` with PACKER_LOG=10: packer waits for Enter before each step.
    #[arg(long)]
    pub debug: bool,
    /// Never contact Artifactory; build with the launcher package already in build/.
    #[arg(long)]
    pub offline: bool,
    /// Build with this launcher package (copied into build/).
    #[arg(long, value_name = "PATH")]
    pub launcher: Option<std::path::PathBuf>,
    /// Replace an older launcher package in build/ with the newest release without asking.
    #[arg(long)]
    pub yes: bool,
    /// Show the variables and the packer command; write, download and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl Build {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let wm = self.wm;
        let config = load_config(host)?;
        // A broken images.conf is found now, not after a long packer run.
        read_images_conf(host)?;
        packer::check_version(sh, &host.packer_dir)?;

        let choice = launcher::ForBuild {
            path: self.launcher,
            offline: self.offline,
            yes: self.yes,
            dry_run: self.dry_run,
        };
        let package = launcher::for_build(sh, host, &config, &choice)?;
        let deb = host.build_dir.join(&package.file_name);
        let fingerprint = if self.dry_run && !deb.exists() {
            "0".repeat(32)
        } else {
            input_fingerprint(host, &config, wm, &deb)?
        };
        let variables = variables(host, &config, wm, &package.file_name, &fingerprint);
        let var_file = host.variables_file(wm);
        let manifest_file = host.manifest_file(wm);
        let log_file = host.log_file(wm);
        let _dir = sh.push_dir(&host.packer_dir);
        let command = packer::build(sh, rel(host, &var_file), rel(host, &log_file), self.debug);

        if self.dry_run {
            println!(
                "# {} would contain:\n{}",
                host.show(&var_file),
                variables.render()
            );
            println!("# and run, in {}:\n{command}", host.show(&host.packer_dir));
            return Ok(());
        }

        std::fs::create_dir_all(&host.build_dir)
            .with_context(|| format!("creating {}", host.build_dir.display()))?;
        std::fs::write(&var_file, variables.render())
            .with_context(|| format!("writing {}", var_file.display()))?;
        // A manifest left by an earlier run would be appended to; starting afresh keeps the
        // file to this run (the reader still takes the last run, whatever is in it).
        match std::fs::remove_file(&manifest_file) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err)
                    .with_context(|| format!("removing the old {}", manifest_file.display()));
            }
            _ => {}
        }

        match packer::run_to_end(command, self.debug && is_interactive())? {
            Outcome::Succeeded => {}
            Outcome::Failed(code) => bail!(
                "packer build failed (exit {}): images.conf is unchanged; packer's log is {}",
                code.map_or("by signal".to_string(), |c| c.to_string()),
                host.show(&log_file)
            ),
            Outcome::Interrupted { signal, .. } => return Err(Interrupted::error(
                signal,
                format!(
                    "build interrupted by {}: packer was left to delete its VM; images.conf is unchanged \
                     (`cargo xtask slurm-image orphans` lists packer VMs that were left behind)",
                    signal_name(signal)
                ),
            )),
        }

        let json = std::fs::read_to_string(&manifest_file).with_context(|| {
            format!("packer succeeded but wrote no manifest at {}: does the template's manifest post-processor use var.manifest_path?", host.show(&manifest_file))
        })?;
        let image = manifest::latest_image(&json)
            .with_context(|| format!("reading {}", host.show(&manifest_file)))?;
        println!("packer built {image}");
        record(host, wm, &image)?;
        images::after_build(sh, host, &config, wm);
        Ok(())
    }
}

/// The variables of one build; `check` renders the same ones.
pub fn variables(
    host: &HostTree,
    config: &Config,
    wm: WorkloadManager,
    launcher_deb: &str,
    fingerprint: &str,
) -> Variables {
    let manifest_path = rel(host, &host.manifest_file(wm)).display().to_string();
    Variables::for_build(
        config,
        wm,
        &BuildInputs {
            launcher_deb,
            manifest_path: &manifest_path,
            input_fingerprint: fingerprint,
        },
    )
}

/// A path relative to the template folder, where packer runs.
fn rel<'a>(host: &HostTree, path: &'a Path) -> &'a Path {
    path.strip_prefix(&host.packer_dir).unwrap_or(path)
}

/// Pins `image` for `wm` in images.conf. A lock in build/ makes this the one writer at a time,
/// so two builds finishing together both land; the write itself is atomic.
fn record(host: &HostTree, wm: WorkloadManager, image: &str) -> anyhow::Result<()> {
    let lock_path = host.build_dir.join("images.conf.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let shown = host.show(&host.images_conf);
    let (text, change) = read_images_conf(host)?.pin(wm, image)?;
    match change {
        Change::Unchanged => println!("{shown} already pins {image} for {wm}"),
        Change::Replaced { old, new } => {
            write_atomically(&host.images_conf, text.as_bytes())?;
            println!("{shown}: {wm}: {old} -> {new}");
        }
        Change::Added { new } => {
            write_atomically(&host.images_conf, text.as_bytes())?;
            println!("{shown}: added the missing line `{wm}: {new}`");
        }
    }
    println!("next: git add {shown} && git commit -m \"Update the {wm} test cluster image\"");
    Ok(())
}

/// A digest of everything the image is made from: the template, playbook and static files,
/// the variables (but the fingerprint itself and where the manifest goes), and the launcher
/// package. Equal fingerprints mean a rebuild would bake the same image.
fn input_fingerprint(
    host: &HostTree,
    config: &Config,
    wm: WorkloadManager,
    deb: &Path,
) -> anyhow::Result<String> {
    let mut files = Vec::new();
    collect_files(&host.packer_dir, &host.build_dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        hasher.update(rel(host, file).to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(Sha256::digest(&bytes));
    }
    let name = deb.file_name().unwrap_or_default().to_string_lossy();
    let variables = Variables::for_build(
        config,
        wm,
        &BuildInputs {
            launcher_deb: &name,
            manifest_path: "",
            input_fingerprint: "",
        },
    );
    hasher.update(variables.render().as_bytes());
    let mut deb_file =
        std::fs::File::open(deb).with_context(|| format!("reading {}", deb.display()))?;
    let mut deb_hasher = Sha256::new();
    std::io::copy(&mut deb_file, &mut deb_hasher)
        .with_context(|| format!("reading {}", deb.display()))?;
    hasher.update(deb_hasher.finalize());
    let digest = hasher.finalize();
    // GCE label values hold at most 63 characters: 128 bits of the digest are plenty.
    Ok(hex(&digest[..16]))
}

/// Every file under the template folder except build/ and the config file (whose effect on
/// the image is already in the variables).
fn collect_files(
    dir: &Path,
    build_dir: &Path,
    out: &mut Vec<std::path::PathBuf>,
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path == build_dir
            || path
                .file_name()
                .is_some_and(|n| n == "slurm-image.toml" || n == "README.md")
        {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, build_dir, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
