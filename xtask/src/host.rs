//! Where things are in the host repository: the Packer template, its build folder, images.conf.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

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

    /// Makes `target/slurm-image/`, the folder of the tool's own files, and returns it. A
    /// `target` link that leads nowhere is named (creating through it fails with a bare "File
    /// exists"), and a `target/slurm-image` that is a link is refused: the tool's files stay in
    /// the repository's `target/`, wherever that is.
    pub fn state_dir_ready(&self) -> anyhow::Result<&Path> {
        let target = self.root.join("target");
        if let Ok(meta) = std::fs::symlink_metadata(&target) {
            if meta.file_type().is_symlink() && !target.exists() {
                let to = std::fs::read_link(&target).unwrap_or_default();
                bail!(
                    "{} is a symbolic link to {}, which does not exist: create that folder, or remove the link \
                     so that cargo and this tool make target/ afresh",
                    target.display(),
                    to.display()
                );
            }
        }
        if std::fs::symlink_metadata(&self.state_dir).is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "{} is a symbolic link: the tool keeps its locks and files in a folder of its own there; \
                 remove the link",
                self.state_dir.display()
            );
        }
        std::fs::create_dir_all(&self.state_dir)
            .with_context(|| format!("creating {}", self.state_dir.display()))?;
        // Every file here is the tool's own, and a link among them would lead a lock or a write
        // elsewhere (a linked build lock once overwrote images.conf): refused before any work.
        let entries = std::fs::read_dir(&self.state_dir)
            .with_context(|| format!("listing {}", self.state_dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", self.state_dir.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                bail!(
                    "{} is a symbolic link, which the tool never follows for its own files: remove it",
                    entry.path().display()
                );
            }
        }
        Ok(&self.state_dir)
    }

    /// The Packer variables file of one build; each workload manager has its own so that two
    /// builds can run at the same time.
    pub fn variables_file(&self, wm: WorkloadManager) -> PathBuf {
        self.state_dir.join(format!("{wm}.pkrvars.hcl"))
    }

    /// The folder one build's packer runs in: a copy of the template folder's inputs with a
    /// `build/` of its own holding only the launcher package. Whatever the template writes
    /// relative to its folder (the manifest, `packer_cache/`) then belongs to that build alone,
    /// so a slurm and a pbs build never share a file.
    pub fn staging_dir(&self, wm: WorkloadManager) -> PathBuf {
        self.state_dir.join(wm.key())
    }

    /// Packer's detailed log (`PACKER_LOG_PATH`) for one workload manager.
    pub fn log_file(&self, wm: WorkloadManager) -> PathBuf {
        self.state_dir.join(format!("{wm}-packer.log"))
    }

    /// The template's files, `*.pkr.hcl` in its folder, as packer reads them for `.`.
    pub fn template_files(&self) -> anyhow::Result<Vec<PathBuf>> {
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

/// Opens `path` for reading if it is a regular file (through symbolic links). A FIFO would
/// block the open and every read until a writer came, and a device such as `/dev/zero` never
/// ends: both are refused, as is a folder, naming what the path is.
pub fn open_regular(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let kind = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .file_type();
    let what = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    bail!(
        "{} is {what}, not a file: reading it could wait or go on forever; put the file there",
        path.display()
    )
}

/// Reads a text file of at most `max` bytes, so that a wrong or runaway file is never read
/// whole into memory; a larger one is an error saying so.
pub fn read_bounded(path: &Path, max: u64) -> anyhow::Result<String> {
    use std::io::Read;
    let file = open_regular(path)?;
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > max {
        bail!(
            "{} is larger than {} bytes, far more than it ever holds: is it the right file?",
            path.display(),
            max
        );
    }
    Ok(text)
}

/// Replaces `path` with `contents` so that a reader, or a crash at any moment, sees either the
/// old file or the new one, never a half-written one.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    replace_atomically(path, |file| std::io::Write::write_all(file, contents))
}

/// Copies `from` to `to` the same way, streaming, so a large package never sits in memory.
pub fn copy_atomically(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut source = File::open(from).with_context(|| format!("reading {}", from.display()))?;
    replace_atomically(to, |file| std::io::copy(&mut source, file).map(drop))
        .with_context(|| format!("copying {}", from.display()))
}

/// Writes one of the tool's own files in `target/slurm-image/` as [`write_atomically`] does,
/// except that a symbolic link there is replaced, never written through: those files are the
/// tool's, and a link could lead a write anywhere (images.conf, another user's file).
pub fn write_state_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    replace_at(path, |file| std::io::Write::write_all(file, contents))
        .with_context(|| format!("writing {}", path.display()))
}

/// Opens (creating it, never emptying it) a lock file of the tool's own. A symbolic link is
/// refused: a lock that followed one would take, and could write, whatever it leads to.
pub fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| not_followed(path, err))
        .with_context(|| format!("opening {}", path.display()))
}

/// Removes the file (or link) at `path` if there is one.
pub fn remove_if_there(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// ELOOP from an `O_NOFOLLOW` open, said as what it is, with the fix.
fn not_followed(path: &Path, err: std::io::Error) -> anyhow::Error {
    if err.raw_os_error() == Some(libc::ELOOP) {
        anyhow::anyhow!(
            "{} is a symbolic link, which the tool never follows for its own files: remove it",
            path.display()
        )
    } else {
        err.into()
    }
}

/// A temporary file in the same folder is written by `write`, then takes the place of `path`.
fn replace_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    replace_at(&through_links(path)?, write).with_context(|| format!("writing {}", path.display()))
}

/// [`replace_atomically`] at `path` itself: a link there is replaced, not followed.
fn replace_at(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("a file to replace has a parent folder")?;
    let name = path
        .file_name()
        .context("a file to replace has a name")?
        .to_string_lossy();
    // The process id and a count of the process's writes keep two writers apart (two
    // threads, or two runs of the tool in one test process); a file left by a killed process
    // of the same id is its own leftover and is truncated.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nth = WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let temp = dir.join(format!(".{name}.{}-{nth}.tmp", std::process::id()));
    let (temp, mut file) = TempFile::create(&temp)?;
    write(&mut file)?;
    temp.persist(path)
}

/// The file a symlink at `path` leads to, or `path` itself. A symlinked images.conf is written
/// through to its target, as an editor would: replacing the link with a regular file would
/// leave the file it points to unchanged and show git a type change.
fn through_links(path: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path).with_context(|| {
            format!(
                "{} is a symlink whose target cannot be found: point the link at an existing file or replace it with one",
                path.display()
            )
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// A file written under a temporary name, next to where it belongs, that takes its final name
/// only when whole: a reader, or a crash at any moment, never sees half of it there. Dropped
/// before [`TempFile::persist`] (an error, an interruption, a panic unwinding), it is removed.
pub struct TempFile {
    path: PathBuf,
    /// The handle the file was created with; a lock taken on it lasts until it closes.
    file: File,
    persisted: bool,
}

impl TempFile {
    /// Creates (or empties) the file at `path`; also returns a handle to write with. A symbolic
    /// link there is refused, never followed: emptying its target would lose someone's file.
    pub fn create(path: &Path) -> anyhow::Result<(TempFile, File)> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(|err| not_followed(path, err))
            .with_context(|| format!("creating {}", path.display()))?;
        let temp = TempFile {
            path: path.to_path_buf(),
            file,
            persisted: false,
        };
        let writer = temp
            .file
            .try_clone()
            .with_context(|| format!("opening {}", path.display()))?;
        Ok((temp, writer))
    }

    /// Takes an exclusive lock on the file without waiting, held until it is renamed or
    /// removed: another process can then tell it is being written.
    pub fn try_lock(&self) -> anyhow::Result<()> {
        self.file
            .try_lock()
            .map_err(|err| anyhow::anyhow!("locking {}: {err}", self.path.display()))
    }

    /// Flushes the file to disk, gives it the permissions of the file it replaces (if any)
    /// and renames it to `target`, in the same folder.
    pub fn persist(mut self, target: &Path) -> anyhow::Result<()> {
        if let Ok(meta) = std::fs::metadata(target) {
            self.file
                .set_permissions(meta.permissions())
                .with_context(|| format!("setting the permissions of {}", self.path.display()))?;
        }
        self.file
            .sync_all()
            .with_context(|| format!("flushing {} to disk", self.path.display()))?;
        std::fs::rename(&self.path, target)
            .with_context(|| format!("renaming {} to {}", self.path.display(), target.display()))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn folder(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-host-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_fifo_a_device_or_a_folder_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("images.conf");
        let path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
        let err = format!("{:#}", read_bounded(&fifo, 1024).unwrap_err());
        assert!(err.contains("is a FIFO (named pipe), not a file"), "{err}");
        let err = format!(
            "{:#}",
            read_bounded(Path::new("/dev/zero"), 1024).unwrap_err()
        );
        assert!(err.contains("/dev/zero is a device"), "{err}");
        let err = format!("{:#}", read_bounded(dir.path(), 1024).unwrap_err());
        assert!(err.contains("is a folder"), "{err}");
    }

    #[test]
    fn a_temporary_file_is_removed_unless_persisted() {
        let dir = folder("temp");
        let (temp, mut file) = TempFile::create(&dir.join(".x.tmp")).unwrap();
        std::io::Write::write_all(&mut file, b"half").unwrap();
        drop(temp);
        assert!(!dir.join(".x.tmp").exists());

        let target = dir.join("x");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (temp, mut file) = TempFile::create(&dir.join(".x.tmp")).unwrap();
        std::io::Write::write_all(&mut file, b"new").unwrap();
        temp.try_lock().unwrap();
        temp.persist(&target).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x"]);

        // A failed write leaves the old file, and no temporary one.
        let err =
            replace_atomically(&target, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(format!("{err:#}").contains("disk full"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reading_is_bounded() {
        let dir = folder("bounded");
        std::fs::write(dir.join("x"), "12345").unwrap();
        assert_eq!(read_bounded(&dir.join("x"), 5).unwrap(), "12345");
        let err = read_bounded(&dir.join("x"), 4).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "x is larger than 4 bytes, far more than it ever holds: is it the right file?"
            ),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_is_written_through_to_its_target() {
        let dir = folder("link");
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::fs::write(dir.join("real/x"), "old").unwrap();
        std::os::unix::fs::symlink("real/x", dir.join("x")).unwrap();
        write_atomically(&dir.join("x"), b"new").unwrap();
        assert!(std::fs::symlink_metadata(dir.join("x"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(dir.join("real/x")).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.join("real"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x"]);

        std::os::unix::fs::symlink("gone", dir.join("dangling")).unwrap();
        let err = write_atomically(&dir.join("dangling"), b"new").unwrap_err();
        assert!(
            format!("{err:#}").contains("symlink whose target cannot be found"),
            "{err:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
