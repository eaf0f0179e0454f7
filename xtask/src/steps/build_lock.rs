//! One build per workload manager at a time on this machine: a lock file per workload manager
//! in target/slurm-image/, held for the whole build, whose note names the process and its start.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::host::{open_lock_file, HostTree};
use crate::model::build_lock::Holder;
use crate::model::orphans::RunningBuild;
use crate::model::WorkloadManager;
use crate::steps::survey::now;

fn path(host: &HostTree, wm: WorkloadManager) -> PathBuf {
    host.state_dir.join(format!("{wm}-build.lock"))
}

/// A workload manager's build lock, held until dropped. The operating system lets it go when
/// the last process holding it ends however it ends, so a killed build never leaves it taken;
/// the note stays behind but says nothing once the lock is free. The packer a build starts
/// inherits it ([`for_packer`]): a rerun after `kill -9` of the tool is refused while that
/// packer still runs in the same staging folder.
pub struct BuildLock {
    path: PathBuf,
    _file: File,
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        held().retain(|(path, _, _)| *path != self.path);
    }
}

/// The build locks this process holds: lock file, descriptor and note. By file, not by workload
/// manager: the tests run the tool in-process for many copies of the host tree at once.
type Held = Vec<(PathBuf, RawFd, Holder)>;

fn held() -> std::sync::MutexGuard<'static, Held> {
    static HELD: Mutex<Held> = Mutex::new(Vec::new());
    // A panic elsewhere while it was held leaves the list as it was: still right.
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The lock a packer of `wm`'s build inherits: its descriptor, which the child keeps open
/// (and so keeps the lock) across exec, if this process holds that lock.
pub fn for_packer(host: &HostTree, wm: WorkloadManager) -> Option<RawFd> {
    let path = path(host, wm);
    held()
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, fd, _)| *fd)
}

/// Adds the packer `wm`'s build started to its lock's note, so that a rerun names it.
pub fn note_packer(host: &HostTree, wm: WorkloadManager, pid: u32) {
    let path = path(host, wm);
    let mut held = held();
    let Some((_, _, holder)) = held.iter_mut().find(|(p, _, _)| *p == path) else {
        return;
    };
    holder.packer = Some(pid);
    // Another descriptor of the same file: writing through it leaves the lock as it is. The
    // note is a courtesy, so a failure to write it is not the build's.
    if let Ok(mut file) = open_lock_file(&path) {
        let _ = write_note(&mut file, holder);
    }
}

/// Takes the build lock of each of `wms` for `command` (`build`, `release`), or refuses at once,
/// naming the build that holds one: two builds of one workload manager would start two VMs and
/// share a log and a variables file, and the last to finish would win the pin.
pub fn take(
    host: &HostTree,
    wms: &[WorkloadManager],
    command: &str,
) -> anyhow::Result<Vec<BuildLock>> {
    host.state_dir_ready()?;
    let holder = Holder {
        pid: std::process::id(),
        started: now(),
        command: command.to_string(),
        packer: None,
    };
    wms.iter().map(|&wm| take_one(host, wm, &holder)).collect()
}

fn take_one(host: &HostTree, wm: WorkloadManager, holder: &Holder) -> anyhow::Result<BuildLock> {
    let path = path(host, wm);
    // Not truncated on opening: the note belongs to whoever holds the lock.
    let mut file = open_lock_file(&path)?;
    // `orphans` looks at the lock for an instant; a few quick tries tell that from a build.
    let mut tries = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if tries < 10 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryLockError::WouldBlock) => {
                let running = match Holder::parse(&read_note(&mut file)) {
                    Some(other) => format!(" ({})", other.refusal(is_alive(other.pid))),
                    None => String::new(),
                };
                bail!(
                    "a {wm} build is already running on this machine{running}: one build per workload manager \
                     at a time; wait for it to end, or stop it with Ctrl-C in its terminal (or `kill -INT` \
                     its pid), which lets packer delete its VM"
                );
            }
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
    write_note(&mut file, holder).with_context(|| format!("writing {}", path.display()))?;
    held().push((path.clone(), file.as_raw_fd(), holder.clone()));
    Ok(BuildLock { path, _file: file })
}

fn write_note(file: &mut File, holder: &Holder) -> std::io::Result<()> {
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.render().as_bytes()))
}

/// Whether process `pid` still runs (a zombie counts as gone only once reaped).
fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists.
    let answered = unsafe { libc::kill(pid, 0) };
    answered == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn read_note(file: &mut File) -> String {
    let mut note = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut note));
    note
}

/// The builds running on this machine now, by their locks, each with its note when it can be
/// read. Looking takes a lock shared for an instant, which a build tells from another build.
pub fn running(host: &HostTree) -> anyhow::Result<Vec<RunningBuild>> {
    let mut running = Vec::new();
    for wm in WorkloadManager::ALL {
        let path = path(host, wm);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err).with_context(|| format!("opening {}", path.display())),
        };
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => running.push(RunningBuild {
                wm,
                holder: Holder::parse(&read_note(&mut file)),
            }),
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("looking at {}", path.display()))
            }
        }
    }
    Ok(running)
}
