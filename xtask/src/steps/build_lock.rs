//! One build per workload manager at a time on this machine: a lock file per workload manager
//! in target/slurm-image/, held for the whole build, whose note names the process and its start.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
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
/// the process ends however it ends, so a killed build never leaves it taken; the note stays
/// behind but says nothing once the lock is free.
pub struct BuildLock {
    _file: File,
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
                    Some(other) => format!(" ({})", other.describe()),
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
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(holder.render().as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(BuildLock { _file: file })
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
