//! Where things are in the host repository: the Packer template, its build folder, images.conf.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::model::WorkloadManager;

/// The template folder, relative to the repository root; finding it is how the root is found.
const PACKER_DIR: &str = "tools/slurm/packer";

/// The paths of the host tree the xtask drives, all absolute.
#[derive(Debug, Clone)]
pub struct HostTree {
    pub root: PathBuf,
    /// `tools/slurm/packer/`: the template, the playbook, the config file.
    pub packer_dir: PathBuf,
    /// `tools/slurm/packer/build/`: ignored by git; launcher packages and each build's files.
    pub build_dir: PathBuf,
    /// `tools/slurm/terraform/images.conf`: the image each cluster boots.
    pub images_conf: PathBuf,
    /// `tools/slurm/packer/slurm-image.toml`: what the old scripts hard-coded.
    pub config_file: PathBuf,
    /// `target/slurm-image/`: the tool's own files (variables, packer's logs, locks). Not in
    /// build/, which a template may upload to the VM whole; `target/` is ignored by git.
    pub state_dir: PathBuf,
}

impl HostTree {
    /// Walks up from `start` to the first folder holding `tools/slurm/packer`, so the xtask
    /// works from anywhere inside the repository.
    pub fn find(start: &Path) -> anyhow::Result<HostTree> {
        for dir in start.ancestors() {
            if dir.join(PACKER_DIR).is_dir() {
                return Ok(HostTree::at(dir));
            }
        }
        bail!(
            "no {PACKER_DIR} folder in {} or any folder above it: run cargo xtask from inside the repository",
            start.display()
        )
    }

    pub fn at(root: &Path) -> HostTree {
        let packer_dir = root.join(PACKER_DIR);
        HostTree {
            root: root.to_path_buf(),
            build_dir: packer_dir.join("build"),
            config_file: packer_dir.join("slurm-image.toml"),
            images_conf: root.join("tools/slurm/terraform/images.conf"),
            state_dir: root.join("target/slurm-image"),
            packer_dir,
        }
    }

    /// The Packer variables file of one build; each workload manager has its own so that two
    /// builds can run at the same time.
    pub fn variables_file(&self, wm: WorkloadManager) -> PathBuf {
        self.state_dir.join(format!("{wm}.pkrvars.hcl"))
    }

    /// Where the manifest post-processor writes for one workload manager, when the template
    /// takes `manifest_path`.
    pub fn manifest_file(&self, wm: WorkloadManager) -> PathBuf {
        self.state_dir.join(format!("{wm}-manifest.json"))
    }

    /// Where a template without `manifest_path` writes its manifest, as the real one does.
    pub fn shared_manifest_file(&self) -> PathBuf {
        self.build_dir.join("manifest.json")
    }

    /// Packer's detailed log (`PACKER_LOG_PATH`) for one workload manager.
    pub fn log_file(&self, wm: WorkloadManager) -> PathBuf {
        self.state_dir.join(format!("{wm}-packer.log"))
    }

    /// The template's files, `*.pkr.hcl` in its folder, as packer reads them for `.`.
    pub fn template_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        use anyhow::Context;

        let mut files = Vec::new();
        let entries = std::fs::read_dir(&self.packer_dir)
            .with_context(|| format!("listing {}", self.packer_dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_file() && path.to_string_lossy().ends_with(".pkr.hcl") {
                files.push(path);
            }
        }
        files.sort();
        if files.is_empty() {
            bail!(
                "no *.pkr.hcl file in {}: the Packer template belongs there",
                self.show(&self.packer_dir)
            );
        }
        Ok(files)
    }

    /// A path as the user would type it from the repository root.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Replaces `path` with `contents` so that a reader, or a crash at any moment, sees either the
/// old file or the new one, never a half-written one.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    replace_atomically(path, |file| std::io::Write::write_all(file, contents))
}

/// Copies `from` to `to` the same way, streaming, so a large package never sits in memory.
pub fn copy_atomically(from: &Path, to: &Path) -> anyhow::Result<()> {
    use anyhow::Context;

    let mut source =
        std::fs::File::open(from).with_context(|| format!("reading {}", from.display()))?;
    replace_atomically(to, |file| std::io::copy(&mut source, file).map(drop))
        .with_context(|| format!("copying {}", from.display()))
}

/// A temporary file in the same folder is written by `write`, flushed to disk, given the old
/// file's permissions, then renamed over `path`; on any failure it is removed.
fn replace_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::Context;

    let dir = path
        .parent()
        .context("a file to replace has a parent folder")?;
    let name = path
        .file_name()
        .context("a file to replace has a name")?
        .to_string_lossy();
    // The process id keeps two writers apart; a file left by a killed process of the same id
    // is its own leftover and is truncated.
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file =
            std::fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        write(&mut file)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}
