//! The launcher download: received on one thread, hashed and written on another, verified
//! against the server's sha256 before it takes its name; and the partial files it leaves.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use sha2::{Digest, Sha256};

use super::{AccessDenied, Artifactory, Failure};
use crate::host::TempFile;
use crate::model::artifactory_folder::{
    listed_from_file_info, parse_sha256, storage_api_url, Listed,
};
use crate::model::hex;
use crate::model::launcher_version::LauncherPackage;
use crate::term::{bytes, signal_name, InterruptGuard, Interrupted, Progress};

/// Bytes read from the socket and written to disk at a time: large enough that hashing and
/// writing run at disk speed, small enough that memory stays flat whatever the package size.
const CHUNK: usize = 256 * 1024;
/// Buffers in flight between receiving and writing.
const BUFFERS: usize = 4;
/// The most a download may bring when the server lists no size: far beyond any launcher.
const MAX_PACKAGE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Bytes over seconds, in words.
fn rate(bytes_got: u64, seconds: u64) -> String {
    format!("{}/s", bytes(bytes_got / seconds.max(1)))
}

impl Artifactory {
    /// Downloads `package` into `build_dir`, hashing as the bytes arrive; only a file whose
    /// sha256 matches the server's gets its final name. Every failure, and Ctrl-C, SIGTERM or
    /// SIGHUP, removes the partial file, and build/ too when the download created it.
    pub fn download(
        &self,
        package: &LauncherPackage,
        build_dir: &Path,
        progress: &mut Progress,
    ) -> anyhow::Result<PathBuf> {
        // The name becomes a path: only an exact release name may, whoever built `package`.
        let Some(package) = LauncherPackage::from_file_name(&package.file_name) else {
            bail!(
                "refusing to download {:?}: not a launcher release name",
                package.file_name
            );
        };
        let created = !build_dir.is_dir();
        std::fs::create_dir_all(build_dir)
            .with_context(|| format!("creating {}", build_dir.display()))?;
        let result = self.download_into(&package, build_dir, progress);
        if result.is_err() && created {
            // Only an empty folder goes: another process may have started to use it meanwhile.
            let _ = std::fs::remove_dir(build_dir);
        }
        result
    }

    fn download_into(
        &self,
        package: &LauncherPackage,
        build_dir: &Path,
        progress: &mut Progress,
    ) -> anyhow::Result<PathBuf> {
        let target = build_dir.join(&package.file_name);
        let temp = build_dir.join(partial_name(&package.file_name, std::process::id()));
        let url = self.url_of(package);
        let guard = InterruptGuard::new()?;
        let partial = self.retrying(
            &format!("downloading {}", package.file_name),
            Some(&guard),
            || {
                let attempt = self.download_once(package, &url, &temp, &guard, progress);
                if attempt.is_err() {
                    progress.abandon();
                }
                attempt
            },
        )?;
        // A signal that came with the last bytes still stops the command.
        if let Some(signal) = guard.received() {
            return Err(Interrupted::error(
                signal,
                format!(
                    "downloading {}: interrupted by {}: the partial file was removed",
                    package.file_name,
                    signal_name(signal)
                ),
            ));
        }
        partial.persist(&target)?;
        Ok(target)
    }

    fn download_once(
        &self,
        package: &LauncherPackage,
        url: &str,
        temp: &Path,
        guard: &InterruptGuard,
        progress: &mut Progress,
    ) -> Result<TempFile, Failure> {
        let name = &package.file_name;
        let (response, other_host) = self.get_following(url, None, true)?;
        let total = response.body().content_length();
        // The sum a host a redirect led to announces proves nothing: that host could serve
        // any bytes with a matching header. Then only the configured server's own word counts.
        let from_header = response
            .headers()
            .get("X-Checksum-Sha256")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_sha256)
            .filter(|_| other_host.is_none());
        // The storage API is asked only for what the download itself does not say.
        let listed = if from_header.is_none() || total.is_none() {
            self.listed_in_storage_api(name)?
        } else {
            Listed::default()
        };
        // Bytes beyond the size the server listed are refused: a body without end would
        // otherwise fill the disk.
        let limit = total.or(listed.size).unwrap_or(MAX_PACKAGE_BYTES);
        let expected = match from_header {
            Some(sum) => sum,
            None => listed.sha256.ok_or_else(|| {
                let header = match &other_host {
                    Some(_) => "the download was redirected to another host, whose X-Checksum-Sha256 is not trusted",
                    None => "no X-Checksum-Sha256 header",
                };
                Failure::fatal(format_args!(
                    "the server offers no sha256 ({header}; no checksum in the storage API), and an \
                     unverified package is never used: put a package you trust in build/ and build with \
                     --offline, or pass --launcher PATH"
                ))
            })?,
        };
        // Dropping `partial` on any early return below removes the file, also when a panic
        // unwinds (a write to a terminal that has closed panics). It is locked while the
        // download runs, so that a sweep by another process leaves it alone; the writer's
        // handle shares the lock.
        let (partial, file) = TempFile::create(temp).map_err(Failure::Fatal)?;
        partial.try_lock().map_err(Failure::Fatal)?;
        // One byte past the limit is read, to tell a longer body from one that fits.
        let reader = response.into_body().into_reader().take(limit + 1);
        progress.start(total);
        // Receiving runs on one thread, hashing and writing on another, so the two overlap: the
        // download goes at the speed of the slower, not of their sum. A few fixed buffers
        // travel between them, so memory stays flat whatever the package size. This thread
        // only watches: a read blocked on a silent server must not hold up Ctrl-C.
        let (to_disk, chunks) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(BUFFERS);
        let (recycle, free) = std::sync::mpsc::channel::<Vec<u8>>();
        for _ in 0..BUFFERS {
            let _ = recycle.send(vec![0u8; CHUNK]);
        }
        let writer = std::thread::spawn(move || -> std::io::Result<Sha256> {
            let mut file = file;
            let mut hasher = Sha256::new();
            for (buffer, n) in chunks {
                hasher.update(&buffer[..n]);
                file.write_all(&buffer[..n])?;
                // The receiving side may have stopped; then the buffer is simply dropped.
                let _ = recycle.send(buffer);
            }
            // On disk before the download counts as done, so that the time shown includes it
            // and a failing disk fails the attempt; `persist` then has nothing left to flush.
            file.sync_all()?;
            Ok(hasher)
        });
        let bytes = Arc::new(AtomicU64::new(0));
        let (finished, outcome) = std::sync::mpsc::channel::<Received>();
        let counter = bytes.clone();
        crate::session::spawn(move || {
            // Dropping `to_disk` at the end of this thread ends the writer's loop.
            let _ = finished.send(receive(reader, &free, &to_disk, &counter));
        });
        // The bytes at the start of the current window of the rate floor.
        let mut window = (Instant::now(), 0u64);
        let received = loop {
            match outcome.recv_timeout(Duration::from_millis(100)) {
                Ok(received) => break received,
                Err(RecvTimeoutError::Timeout) => {
                    let so_far = bytes.load(Ordering::Relaxed);
                    if window.0.elapsed() >= self.rate_window {
                        let seconds = self.rate_window.as_secs().max(1);
                        let got = so_far - window.1;
                        if got < self.min_rate_kib_s * 1024 * seconds {
                            // The receiving thread is left behind, as on an interrupt.
                            return Err(Failure::fatal(format_args!(
                                "the download ran at {} in the last {seconds} s, below the floor of {} KiB/s \
                                 (artifactory.min_download_rate_kib_s, over artifactory.download_rate_window_s): \
                                 given up after {so_far} bytes, the partial file removed; try again later, or \
                                 lower the floor in slurm-image.toml for a slow link",
                                rate(got, seconds),
                                self.min_rate_kib_s
                            )));
                        }
                        window = (Instant::now(), so_far);
                    }
                    if let Some(signal) = guard.received() {
                        // The two threads are left behind: dropping `partial` removes the file
                        // they write to, and the process ends with the interrupted command.
                        return Err(Failure::Fatal(Interrupted::error(
                            signal,
                            format!(
                                "interrupted by {}: the partial file was removed",
                                signal_name(signal)
                            ),
                        )));
                    }
                    progress.update(bytes.load(Ordering::Relaxed));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break Received::Failed {
                        done: bytes.load(Ordering::Relaxed),
                        err: std::io::Error::other("the receiving thread stopped"),
                    }
                }
            }
        };
        progress.update(bytes.load(Ordering::Relaxed));
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the writing thread panicked")));
        let done = match received {
            Received::All(done) => done,
            Received::Failed { done, err } => {
                // A write error explains a stop better than the receiving side's view of it.
                written
                    .with_context(|| format!("writing {}", temp.display()))
                    .map_err(Failure::Fatal)?;
                return Err(Failure::Transient(anyhow!(
                    "stopped after {done} bytes: {}",
                    self.describe_io(&err)
                )));
            }
        };
        if done > limit {
            return Err(Failure::fatal(format_args!(
                "the server sent more than the {limit} bytes it listed for {name}: the rest was refused and \
                 nothing was kept (the file on the server, or something between, is broken)"
            )));
        }
        let hasher = written
            .with_context(|| format!("writing {}", temp.display()))
            .map_err(Failure::Fatal)?;
        if let Some(total) = total {
            if done != total {
                return Err(Failure::Transient(anyhow!(
                    "the body was cut short: {done} of {total} bytes"
                )));
            }
        }
        let actual = hex(&hasher.finalize());
        if actual != expected {
            return Err(Failure::fatal(format_args!(
                "the file is damaged: its sha256 is {actual} but the server says {expected}; nothing was kept \
                 (try again; if it persists, the file on the server is broken)"
            )));
        }
        progress.finish();
        Ok(partial)
    }

    /// The sha256 and size of a file in the folder from the storage API's file info, as far
    /// as it gives them.
    fn listed_in_storage_api(&self, name: &str) -> Result<Listed, Failure> {
        let Some(api) = storage_api_url(&self.folder) else {
            return Ok(Listed::default());
        };
        // From the configured server only: a redirect elsewhere is refused.
        let info = self
            .get_following(&format!("{api}/{name}"), None, false)
            .and_then(|(response, _)| {
                response
                    .into_body()
                    .read_to_string()
                    .map_err(|err| self.classify(err, &api, None))
            });
        match info {
            Ok(json) => Ok(listed_from_file_info(&json)),
            Err(Failure::Fatal(err)) if err.chain().any(|e| e.is::<AccessDenied>()) => {
                Err(Failure::Fatal(err))
            }
            Err(Failure::Transient(err)) => Err(Failure::Transient(err)),
            // No file info (a mirror without the API, a 404): no checksum from there.
            Err(Failure::Fatal(_)) => Ok(Listed::default()),
        }
    }
}

/// The file name a download writes to until it is verified: `.<release>.<pid>.part`, with the
/// id of the process writing it, so that two processes fetching at once never share one.
fn partial_name(file_name: &str, pid: u32) -> String {
    format!(".{file_name}.{pid}.part")
}

/// The release and process id in a partial download's file name, or `None` for any other name.
fn parse_partial_name(name: &str) -> Option<(&str, u32)> {
    let (release, pid) = name
        .strip_prefix('.')?
        .strip_suffix(".part")?
        .rsplit_once('.')?;
    let pid = pid.parse().ok().filter(|&pid| pid > 0)?;
    LauncherPackage::from_file_name(release).map(|_| (release, pid))
}

/// What a sweep for partial downloads found.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Partial downloads of earlier runs, removed.
    pub removed: usize,
    /// Their bytes.
    pub freed: u64,
    /// Partial downloads being written now by a process that is still running, kept.
    pub in_use: Vec<PathBuf>,
}

impl Sweep {
    /// What was removed, for the user; `None` when nothing was.
    pub fn summary(&self) -> Option<String> {
        match self.removed {
            0 => None,
            1 => Some(format!(
                "removed a partial download left by an earlier run ({} freed)",
                bytes(self.freed)
            )),
            n => Some(format!(
                "removed {n} partial downloads left by earlier runs ({} freed)",
                bytes(self.freed)
            )),
        }
    }
}

/// Removes the partial downloads that earlier runs left in `dir` (killed with `kill -9`, or
/// cut off with their terminal). One is an earlier run's when the process named in it is gone
/// and nobody holds its lock; any other is a download running now, and is left alone.
pub fn remove_stale_partials(dir: &Path) -> anyhow::Result<Sweep> {
    let mut sweep = Sweep::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(sweep),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        let Some((_, pid)) = parse_partial_name(&name.to_string_lossy()) else {
            continue;
        };
        let path = entry.path();
        // The pid check comes first: a download creates its file a moment before it locks it.
        if process_is_alive(pid) {
            sweep.in_use.push(path);
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock().is_err() {
            sweep.in_use.push(path);
            continue;
        }
        let size = file.metadata().map_or(0, |m| m.len());
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sweep.removed += 1;
                sweep.freed += size;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("removing {}", path.display())),
        }
    }
    Ok(sweep)
}

/// Whether a process with this id runs now (one of another user counts too).
fn process_is_alive(pid: u32) -> bool {
    // 0 and ids beyond i32 would address process groups, never one process.
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// How receiving a body ended.
enum Received {
    All(u64),
    Failed { done: u64, err: std::io::Error },
}

/// Reads the body into free buffers, each filled before it is passed on to be hashed and
/// written, counting the bytes in `bytes`. Stops early when the writing side has stopped.
fn receive(
    mut reader: impl Read,
    free: &std::sync::mpsc::Receiver<Vec<u8>>,
    to_disk: &std::sync::mpsc::SyncSender<(Vec<u8>, usize)>,
    bytes: &AtomicU64,
) -> Received {
    let mut done: u64 = 0;
    loop {
        let Ok(mut buffer) = free.recv() else {
            return Received::Failed {
                done,
                err: std::io::Error::other("writing stopped"),
            };
        };
        let mut filled = 0;
        let mut end = false;
        while filled < buffer.len() {
            match reader.read(&mut buffer[filled..]) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // The bytes of the buffer filled so far arrived too.
                    let done = done + filled as u64;
                    bytes.store(done, Ordering::Relaxed);
                    return Received::Failed { done, err };
                }
            }
        }
        done += filled as u64;
        bytes.store(done, Ordering::Relaxed);
        if filled > 0 && to_disk.send((buffer, filled)).is_err() {
            return Received::Failed {
                done,
                err: std::io::Error::other("writing stopped"),
            };
        }
        if end {
            return Received::All(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW: &str = "hpe-hpc-launcher_3.10.1-12_amd64.deb";

    #[test]
    fn partial_download_names() {
        let name = partial_name(NEW, 4242);
        assert_eq!(name, format!(".{NEW}.4242.part"));
        assert_eq!(parse_partial_name(&name), Some((NEW, 4242)));
        for other in [
            NEW.to_string(),
            format!(".{NEW}.part"),
            format!(".{NEW}.0.part"),
            format!(".{NEW}.x1.part"),
            format!(".{NEW}.4242.tmp"),
            format!("{NEW}.4242.part"),
            ".other-tool_1.0.0-0_amd64.deb.4242.part".to_string(),
            ".images.conf.4242.tmp".to_string(),
        ] {
            assert_eq!(parse_partial_name(&other), None, "{other}");
        }
    }

    #[test]
    fn refuses_to_download_a_name_that_is_not_a_release() {
        // Nothing listens there: a request would fail otherwise, and build/ would be made.
        let client = Artifactory::new(
            "http://127.0.0.1:9/artifactory/launchers/hpc/".to_string(),
            None,
            Duration::from_millis(5),
            Duration::from_secs(1),
        );
        let build_dir = std::env::temp_dir().join(format!("xtask-hostile-{}", std::process::id()));
        let hostile = LauncherPackage {
            file_name: "../x_amd64.deb".into(),
            ..LauncherPackage::from_file_name(NEW).unwrap()
        };
        let err = client
            .download(&hostile, &build_dir, &mut Progress::new("x"))
            .unwrap_err();
        assert!(
            err.to_string().contains("not a launcher release name"),
            "{err}"
        );
        assert!(!build_dir.exists());
    }
}
