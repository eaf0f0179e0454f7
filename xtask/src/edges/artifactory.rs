//! Artifactory: the only module that talks HTTP, to find the newest launcher release and download it verified.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use ureq::Agent;

use crate::host::TempFile;
use crate::model::launcher_version::{releases, LauncherPackage};
use crate::model::{hex, whole_number_setting};
use crate::term::{bytes, signal_name, InterruptGuard, Interrupted, Progress};

/// Overrides `artifactory.url` of the config, e.g. for a mirror or a test server.
pub const URL_VAR: &str = "SLURM_IMAGE_ARTIFACTORY_URL";
pub const TOKEN_VAR: &str = "ARTIFACTORY_TOKEN";
pub const USER_VAR: &str = "ARTIFACTORY_USER";
pub const PASSWORD_VAR: &str = "ARTIFACTORY_PASSWORD";
/// The first pause between attempts, doubled after each; tests make it short.
const RETRY_DELAY_VAR: &str = "SLURM_IMAGE_RETRY_DELAY_MS";
/// How long a server may stay silent before the request fails (and is retried).
const STALL_TIMEOUT_VAR: &str = "SLURM_IMAGE_STALL_TIMEOUT_S";

const ATTEMPTS: u32 = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RETRY_DELAY_MS: u64 = 500;
/// At most a minute, so that four attempts never pause for more than about eight minutes.
const MAX_RETRY_DELAY_MS: u64 = 60_000;
const DEFAULT_STALL_TIMEOUT_S: u64 = 30;
const MAX_STALL_TIMEOUT_S: u64 = 3600;
/// The longest a lookup of the releases waits for its whole answer (a small listing), and no
/// longer than the stall timeout. A server that says nothing for this long counts as
/// unreachable, so that a build with a local package goes on with it instead of waiting.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Bytes read from the socket and written to disk at a time: large enough that hashing and
/// writing run at disk speed, small enough that memory stays flat whatever the package size.
const CHUNK: usize = 256 * 1024;
/// Buffers in flight between receiving and writing.
const BUFFERS: usize = 4;

// ---------------------------------------------------------------------------------------------
// The pure part: URLs, listings and checksums as plain data.

/// The storage API address of a folder: `https://h/artifactory/REPO/PATH/` becomes
/// `https://h/artifactory/api/storage/REPO/PATH`; `None` when the URL is not an Artifactory folder.
pub fn storage_api_url(folder: &str) -> Option<String> {
    let (base, rest) = folder.split_once("/artifactory/")?;
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.starts_with("api/") || base.is_empty() {
        return None;
    }
    Some(format!("{base}/artifactory/api/storage/{rest}"))
}

#[derive(Deserialize)]
struct StorageListing {
    children: Vec<StorageChild>,
}

#[derive(Deserialize)]
struct StorageChild {
    uri: String,
    #[serde(default)]
    folder: bool,
}

/// The file names in a storage API folder listing (`children[].uri` is `/name`); folders are
/// left out. The names are as the server sent them: only `releases` decides what is a release.
pub fn names_from_storage_listing(json: &str) -> anyhow::Result<Vec<String>> {
    let listing: StorageListing = serde_json::from_str(json)
        .context("the storage API's answer is not a folder listing (JSON with `children`)")?;
    Ok(listing
        .children
        .into_iter()
        .filter(|child| !child.folder)
        .map(|child| {
            child
                .uri
                .strip_prefix('/')
                .unwrap_or(&child.uri)
                .to_string()
        })
        .collect())
}

/// The link targets of Artifactory's HTML folder page (`<a href="NAME">NAME</a>` per entry);
/// folders (ending in `/`, including `../`) are left out.
pub fn names_from_index_html(html: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("href=\"") {
        rest = &rest[at + "href=\"".len()..];
        let Some(end) = rest.find('"') else { break };
        let name = &rest[..end];
        rest = &rest[end..];
        if !name.is_empty() && !name.ends_with('/') {
            names.push(name.to_string());
        }
    }
    names
}

/// A sha256 as 64 hex digits, lowercased; anything else is `None`.
pub fn parse_sha256(value: &str) -> Option<String> {
    let value = value.trim();
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

#[derive(Deserialize)]
struct FileInfo {
    checksums: Option<Checksums>,
}

#[derive(Deserialize)]
struct Checksums {
    sha256: Option<String>,
}

/// The sha256 in a storage API file info (`checksums.sha256`), if it holds a valid one.
pub fn sha256_from_file_info(json: &str) -> Option<String> {
    let info: FileInfo = serde_json::from_str(json).ok()?;
    parse_sha256(&info.checksums?.sha256?)
}

/// The folder URL to use: checked, with a trailing `/`. `source` names where it came from.
fn folder_url(url: &str, source: &str) -> anyhow::Result<String> {
    let url = url.trim();
    let Some(after_scheme) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        bail!("{source} must start with https:// (or http:// for a local mirror)");
    };
    let authority = after_scheme.split('/').next().unwrap_or("");
    // The URL is printed in messages, so a password in it would leak; the URL itself is not
    // repeated here for the same reason.
    if authority.contains('@') {
        bail!(
            "{source} carries credentials in the URL: remove them and set {TOKEN_VAR} \
             (or {USER_VAR} and {PASSWORD_VAR}) instead"
        );
    }
    if authority.is_empty() {
        bail!("{source} has no host name");
    }
    Ok(if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    })
}

/// The `Authorization` header value from the environment, if any credentials are set.
fn credentials(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Secret>> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(token) = set(TOKEN_VAR) {
        return Ok(Some(Secret(format!("Bearer {token}"))));
    }
    match (set(USER_VAR), set(PASSWORD_VAR)) {
        (Some(user), Some(password)) => Ok(Some(Secret(format!(
            "Basic {}",
            STANDARD.encode(format!("{user}:{password}"))
        )))),
        (Some(_), None) => bail!(
            "{USER_VAR} is set but {PASSWORD_VAR} is not: set both (the password may be an access token), or set {TOKEN_VAR}"
        ),
        (None, Some(_)) => bail!(
            "{PASSWORD_VAR} is set but {USER_VAR} is not: set both, or put an access token in {TOKEN_VAR}"
        ),
        (None, None) => Ok(None),
    }
}

/// An `Authorization` header value; never shown, not even by `{:?}`.
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

// ---------------------------------------------------------------------------------------------
// Errors a caller acts on.

/// The server could not be reached at all (DNS, refused, connect timeout): off the VPN, most
/// likely. `build` goes on with a local launcher when it gets this.
#[derive(Debug)]
pub struct Unreachable {
    pub url: String,
    pub cause: String,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot reach {} ({})", self.url, self.cause)
    }
}

impl std::error::Error for Unreachable {}

/// Whether `err` (or a cause of it) is an [`Unreachable`] server.
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<Unreachable>())
}

/// A 401 or 403.
#[derive(Debug)]
struct AccessDenied {
    status: u16,
    url: String,
    had_credentials: bool,
}

impl fmt::Display for AccessDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { status, url, .. } = self;
        if self.had_credentials {
            write!(
                f,
                "Artifactory refused the credentials (HTTP {status}) for {url}: check or renew the token in \
                 {TOKEN_VAR} (or {USER_VAR} and {PASSWORD_VAR})"
            )
        } else {
            write!(
                f,
                "Artifactory wants credentials (HTTP {status}) for {url}: set {TOKEN_VAR} to an access token, \
                 or {USER_VAR} and {PASSWORD_VAR}"
            )
        }
    }
}

impl std::error::Error for AccessDenied {}

/// How one attempt failed: worth another try, or not.
enum Failure {
    Transient(anyhow::Error),
    Fatal(anyhow::Error),
}

impl Failure {
    fn fatal(message: impl fmt::Display) -> Failure {
        Failure::Fatal(anyhow!("{message}"))
    }
}

// ---------------------------------------------------------------------------------------------
// The I/O part.

/// A client for the folder of launcher releases.
pub struct Artifactory {
    agent: Agent,
    /// The folder URL, ending with `/`.
    folder: String,
    auth: Option<Secret>,
    retry_delay: Duration,
    stall_timeout: Duration,
}

impl Artifactory {
    /// The client for the folder in the config, or in `SLURM_IMAGE_ARTIFACTORY_URL`, with the
    /// credentials of the environment.
    pub fn from_env(config_url: &str) -> anyhow::Result<Artifactory> {
        let var = |name: &str| std::env::var(name).ok();
        let folder = match var(URL_VAR).filter(|v| !v.trim().is_empty()) {
            Some(url) => folder_url(&url, URL_VAR)?,
            None => folder_url(config_url, "artifactory.url in the config")?,
        };
        let retry_delay = Duration::from_millis(whole_number_setting(
            RETRY_DELAY_VAR,
            var(RETRY_DELAY_VAR).as_deref(),
            DEFAULT_RETRY_DELAY_MS,
            0..=MAX_RETRY_DELAY_MS,
            "milliseconds",
        )?);
        let stall_timeout = Duration::from_secs(whole_number_setting(
            STALL_TIMEOUT_VAR,
            var(STALL_TIMEOUT_VAR).as_deref(),
            DEFAULT_STALL_TIMEOUT_S,
            1..=MAX_STALL_TIMEOUT_S,
            "seconds",
        )?);
        Ok(Artifactory::new(
            folder,
            credentials(var)?,
            retry_delay,
            stall_timeout,
        ))
    }

    fn new(
        folder: String,
        auth: Option<Secret>,
        retry_delay: Duration,
        stall_timeout: Duration,
    ) -> Artifactory {
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            // The system's store, where a company CA is installed.
            .root_certs(RootCerts::PlatformVerifier)
            .build();
        let agent = Agent::config_builder()
            .tls_config(tls)
            .timeout_resolve(Some(CONNECT_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // A server that goes silent fails the request instead of hanging it; the read
            // timeout restarts with every read, so a slow but steady download is fine.
            .timeout_per_read(Some(stall_timeout))
            .timeout_recv_response(Some(stall_timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Artifactory {
            agent,
            folder,
            auth,
            retry_delay,
            stall_timeout,
        }
    }

    /// The folder URL (it never carries credentials).
    pub fn folder(&self) -> &str {
        &self.folder
    }

    /// The download URL of a package.
    pub fn url_of(&self, package: &LauncherPackage) -> String {
        format!("{}{}", self.folder, package.file_name)
    }

    /// The newest release in the folder, or `None` when it holds none: the lookup `build`,
    /// `launcher` (and any check of the set-up) make. It says where it looks as it starts, so a
    /// wait is never silent, and waits a short, bounded time: a server that does not answer
    /// is an [`Unreachable`] one.
    pub fn newest_release(&self) -> anyhow::Result<Option<LauncherPackage>> {
        Ok(self.releases()?.into_iter().next())
    }

    /// The releases in the folder, newest first: from the storage API, or from the folder's
    /// HTML page when the API gives no listing.
    pub fn releases(&self) -> anyhow::Result<Vec<LauncherPackage>> {
        eprintln!("looking up releases at {}", self.folder);
        let mut names = None;
        if let Some(api) = storage_api_url(&self.folder) {
            let listed = self
                .retrying("listing the releases", None, || self.look_up(&api))
                .and_then(|json| names_from_storage_listing(&json));
            match listed {
                Ok(found) => names = Some(found),
                Err(err) if is_unreachable(&err) || err.chain().any(|e| e.is::<AccessDenied>()) => {
                    return Err(err)
                }
                // A mirror without the storage API is fine, so the note says only what happens
                // instead: the error's "check artifactory.url" would send the user to fix nothing.
                Err(_) => eprintln!(
                    "note: no storage API listing of the folder; reading the folder's HTML page instead"
                ),
            }
        }
        let names = match names {
            Some(names) => names,
            None => {
                let html =
                    self.retrying("listing the releases", None, || self.look_up(&self.folder))?;
                names_from_index_html(&html)
            }
        };
        Ok(releases(names.iter().map(String::as_str)))
    }

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
                    "download of {} interrupted by {}: the partial file was removed",
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
        let response = self.get(url)?;
        let from_header = response
            .headers()
            .get("X-Checksum-Sha256")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_sha256);
        let expected = match from_header {
            Some(sum) => sum,
            None => self.sha256_from_storage_api(name)?.ok_or_else(|| {
                Failure::fatal(format_args!(
                    "the server offers no sha256 for {name} (no X-Checksum-Sha256 header, no checksum in the \
                     storage API), and an unverified package is never used: put a package you trust in build/ \
                     and build with --offline, or pass --launcher PATH"
                ))
            })?,
        };
        let total = response.body().content_length();
        // Dropping `partial` on any early return below removes the file, also when a panic
        // unwinds (a write to a terminal that has closed panics). It is locked while the
        // download runs, so that a sweep by another process leaves it alone; the writer's
        // handle shares the lock.
        let (partial, file) = TempFile::create(temp).map_err(Failure::Fatal)?;
        partial.try_lock().map_err(Failure::Fatal)?;
        let reader = response.into_body().into_reader();
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
            Ok(hasher)
        });
        let bytes = Arc::new(AtomicU64::new(0));
        let (finished, outcome) = std::sync::mpsc::channel::<Received>();
        let counter = bytes.clone();
        std::thread::spawn(move || {
            // Dropping `to_disk` at the end of this thread ends the writer's loop.
            let _ = finished.send(receive(reader, &free, &to_disk, &counter));
        });
        let received = loop {
            match outcome.recv_timeout(Duration::from_millis(100)) {
                Ok(received) => break received,
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(signal) = guard.received() {
                        // The two threads are left behind: dropping `partial` removes the file
                        // they write to, and the process ends with the interrupted command.
                        return Err(Failure::Fatal(Interrupted::error(
                            signal,
                            format!(
                                "download of {name} interrupted by {}: the partial file was removed",
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
                    "the download stopped after {done} bytes: {}",
                    self.describe_io(&err)
                )));
            }
        };
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
                "{name} is damaged: its sha256 is {actual} but the server says {expected}; nothing was kept \
                 (try again; if it persists, the file on the server is broken)"
            )));
        }
        progress.finish();
        Ok(partial)
    }

    /// The sha256 of a file in the folder from the storage API's file info, when it has one.
    fn sha256_from_storage_api(&self, name: &str) -> Result<Option<String>, Failure> {
        let Some(api) = storage_api_url(&self.folder) else {
            return Ok(None);
        };
        match self.get_text(&format!("{api}/{name}")) {
            Ok(json) => Ok(sha256_from_file_info(&json)),
            Err(Failure::Fatal(err)) if err.chain().any(|e| e.is::<AccessDenied>()) => {
                Err(Failure::Fatal(err))
            }
            Err(Failure::Transient(err)) => Err(Failure::Transient(err)),
            // No file info (a mirror without the API, a 404): no checksum from there.
            Err(Failure::Fatal(_)) => Ok(None),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or has failed with a transient cause
    /// `ATTEMPTS` times, pausing longer after each failure.
    fn retrying<T>(
        &self,
        what: &str,
        guard: Option<&InterruptGuard>,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> anyhow::Result<T> {
        let mut delay = self.retry_delay;
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Fatal(err)) => return Err(err.context(what.to_string())),
                Err(Failure::Transient(err)) if tries >= ATTEMPTS => {
                    return Err(
                        err.context(format!("{what} failed {ATTEMPTS} times; the last cause"))
                    )
                }
                Err(Failure::Transient(err)) => {
                    eprintln!(
                        "{what}: {err:#}; trying again in {:.1} s ({tries} of {ATTEMPTS} attempts failed)",
                        delay.as_secs_f64()
                    );
                    let until = Instant::now() + delay;
                    while Instant::now() < until {
                        if let Some(signal) = guard.and_then(InterruptGuard::received) {
                            return Err(Interrupted::error(
                                signal,
                                format!("{what}: interrupted by {}", signal_name(signal)),
                            ));
                        }
                        std::thread::sleep(Duration::from_millis(20).min(delay));
                    }
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }

    /// How long a lookup may wait for its whole answer.
    fn lookup_timeout(&self) -> Duration {
        LOOKUP_TIMEOUT.min(self.stall_timeout)
    }

    /// A GET with the credentials; a status that is not 2xx is an error here.
    fn get(&self, url: &str) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        self.get_within(url, None)
    }

    /// A GET that, with a `deadline`, must be answered in full within it; a server silent
    /// until then counts as unreachable.
    fn get_within(
        &self,
        url: &str,
        deadline: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let mut request = self.agent.get(url);
        if let Some(auth) = &self.auth {
            request = request.header("Authorization", &auth.0);
        }
        if deadline.is_some() {
            request = request.config().timeout_global(deadline).build();
        }
        let response = request
            .call()
            .map_err(|err| self.classify(err, url, deadline))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(response),
            401 | 403 => Err(Failure::Fatal(anyhow::Error::new(AccessDenied {
                status,
                url: url.to_string(),
                had_credentials: self.auth.is_some(),
            }))),
            404 => Err(Failure::fatal(format_args!(
                "{url} does not exist (HTTP 404): check artifactory.url in the config or {URL_VAR}"
            ))),
            408 | 429 | 500..=599 => Err(Failure::Transient(anyhow!(
                "the server answered HTTP {status} for {url}"
            ))),
            _ => Err(Failure::fatal(format_args!(
                "the server answered HTTP {status} for {url}"
            ))),
        }
    }

    fn get_text(&self, url: &str) -> Result<String, Failure> {
        self.text_within(url, None)
    }

    /// A small listing, within the lookup's deadline.
    fn look_up(&self, url: &str) -> Result<String, Failure> {
        self.text_within(url, Some(self.lookup_timeout()))
    }

    fn text_within(&self, url: &str, deadline: Option<Duration>) -> Result<String, Failure> {
        self.get_within(url, deadline)?
            .into_body()
            .read_to_string()
            .map_err(|err| match self.classify(err, url, deadline) {
                Failure::Transient(err) => {
                    Failure::Transient(err.context(format!("reading {url}")))
                }
                Failure::Fatal(err) => Failure::Fatal(err.context(format!("reading {url}"))),
            })
    }

    /// Sorts a ureq error into unreachable (fatal, and marked so), transient or fatal; with a
    /// `deadline`, a timeout is unreachable too. ureq's messages name no credentials: they
    /// travel in a header, never in the URL.
    fn classify(&self, err: ureq::Error, url: &str, deadline: Option<Duration>) -> Failure {
        use std::io::ErrorKind as K;
        use ureq::Timeout as T;
        let unreachable = |cause: String| {
            Failure::Fatal(anyhow::Error::new(Unreachable {
                url: url.to_string(),
                cause,
            }))
        };
        let timed_out = match &err {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(io) => io.kind() == K::TimedOut,
            _ => false,
        };
        if let (Some(deadline), true) = (deadline, timed_out) {
            return unreachable(format!("no answer within {} s", deadline.as_secs()));
        }
        match &err {
            ureq::Error::HostNotFound => unreachable("host not found".into()),
            ureq::Error::ConnectionFailed => unreachable("connection failed".into()),
            ureq::Error::Timeout(T::Resolve) => unreachable("no DNS answer in time".into()),
            ureq::Error::Timeout(T::Connect) => unreachable(format!(
                "no connection within {} s",
                CONNECT_TIMEOUT.as_secs()
            )),
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable
                ) =>
            {
                unreachable(io.to_string())
            }
            // A failed DNS lookup (the usual sign of being off the VPN) reaches us as a plain
            // I/O error from `to_socket_addrs`, of an unnamed kind: std's wording tells it apart.
            ureq::Error::Io(io) if io.to_string().starts_with("failed to lookup address information") => {
                unreachable(io.to_string())
            }
            ureq::Error::Io(io) => Failure::Transient(anyhow!("{}", self.describe_io(io))),
            ureq::Error::Timeout(_) => Failure::Transient(anyhow!(
                "the server sent nothing for {} s",
                self.stall_timeout.as_secs()
            )),
            ureq::Error::Protocol(_) => Failure::Transient(anyhow!("{err}")),
            ureq::Error::Tls(_) | ureq::Error::NativeTls(_) | ureq::Error::Der(_) => Failure::fatal(format_args!(
                "TLS with {url} failed ({err}): is the company CA installed in the system's certificate store?"
            )),
            _ => Failure::fatal(format_args!("requesting {url}: {err}")),
        }
    }

    /// A read error in words; a stalled server is named as such.
    fn describe_io(&self, err: &std::io::Error) -> String {
        let timed_out = err.kind() == std::io::ErrorKind::TimedOut
            || err
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                .is_some_and(|e| matches!(e, ureq::Error::Timeout(_)));
        if timed_out {
            format!(
                "the server sent nothing for {} s",
                self.stall_timeout.as_secs()
            )
        } else {
            err.to_string()
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
#[path = "../../tests/support/artifactory.rs"]
mod loopback;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_api_url_from_folder() {
        assert_eq!(
            storage_api_url("https://arti.example/artifactory/analytics-misc-stable-local/ard-capsules-core/")
                .as_deref(),
            Some("https://arti.example/artifactory/api/storage/analytics-misc-stable-local/ard-capsules-core")
        );
        assert_eq!(
            storage_api_url("http://127.0.0.1:4000/artifactory/repo/").as_deref(),
            Some("http://127.0.0.1:4000/artifactory/api/storage/repo")
        );
        assert_eq!(storage_api_url("https://mirror.example/launchers/"), None);
        assert_eq!(storage_api_url("https://arti.example/artifactory/"), None);
        assert_eq!(
            storage_api_url("https://arti.example/artifactory/api/storage/x/"),
            None
        );
    }

    #[test]
    fn storage_listing_gives_file_names_only() {
        let json = r#"{
          "repo": "analytics-misc-stable-local", "path": "/ard-capsules-core",
          "created": "2023-01-01T00:00:00.000Z",
          "children": [
            {"uri": "/hpe-hpc-launcher_3.3.1-2_amd64.deb", "folder": false},
            {"uri": "/old", "folder": true},
            {"uri": "/hpe-hpc-launcher_3.10.1-12_amd64.deb", "folder": false},
            {"uri": "/../hpe-hpc-launcher_9.9.9-9_amd64.deb", "folder": false}
          ],
          "uri": "https://arti.example/artifactory/api/storage/analytics-misc-stable-local/ard-capsules-core"
        }"#;
        let names = names_from_storage_listing(json).unwrap();
        assert_eq!(
            names,
            [
                "hpe-hpc-launcher_3.3.1-2_amd64.deb",
                "hpe-hpc-launcher_3.10.1-12_amd64.deb",
                "../hpe-hpc-launcher_9.9.9-9_amd64.deb"
            ]
        );
        let found: Vec<_> = releases(names.iter().map(String::as_str))
            .into_iter()
            .map(|p| p.version.to_string())
            .collect();
        assert_eq!(found, ["3.10.1-12", "3.3.1-2"]);
        let err = names_from_storage_listing("<html>").unwrap_err();
        assert!(format!("{err:#}").contains("not a folder listing"));
    }

    #[test]
    fn index_page_gives_file_names_only() {
        let html = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n<head><title>Index of \
            analytics-misc-stable-local/ard-capsules-core</title>\n</head>\n<body>\n<h1>Index of \
            analytics-misc-stable-local/ard-capsules-core/</h1>\n<pre>Name    Last modified      Size</pre><hr/>\n\
            <pre><a href=\"../\">../</a>\n\
            <a href=\"old/\">old/</a>                                  12-Mar-2024 10:01    -\n\
            <a href=\"hpe-hpc-launcher_3.9.0-0_amd64.deb\">hpe-hpc-launcher_3.9.0-0_amd64.deb</a>  12-Mar-2024 10:01  41.20 MB\n\
            <a href=\"hpe-hpc-launcher_3.10.1-12_amd64.deb\">hpe-hpc-launcher_3.10.1-12_amd64.deb</a>  01-Jun-2024 09:00  42.00 MB\n\
            <a href=\"hpe-hpc-launcher_3.10.1-12_amd64.deb.sha256\">hpe-hpc-launcher_3.10.1-12_amd64.deb.sha256</a>  01-Jun-2024 09:00  64 bytes\n\
            <a href=\"hpe-hpc-launcher_3.11.0-1.dev3_amd64.deb\">hpe-hpc-launcher_3.11.0-1.dev3_amd64.deb</a>  02-Jun-2024 09:00  42.00 MB\n\
            </pre>\n<hr/><address style=\"font-size:small;\">Artifactory Port 8081</address></body></html>";
        let names = names_from_index_html(html);
        assert_eq!(names.len(), 4, "{names:?}");
        let found: Vec<_> = releases(names.iter().map(String::as_str))
            .into_iter()
            .map(|p| p.file_name)
            .collect();
        assert_eq!(
            found,
            [
                "hpe-hpc-launcher_3.10.1-12_amd64.deb",
                "hpe-hpc-launcher_3.9.0-0_amd64.deb"
            ]
        );
        assert!(names_from_index_html("<a href=\"unterminated").is_empty());
    }

    #[test]
    fn checksums() {
        let sum = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(
            parse_sha256(sum).as_deref(),
            Some(sum.to_ascii_lowercase().as_str())
        );
        assert_eq!(parse_sha256(" abc "), None);
        assert_eq!(parse_sha256(&format!("{sum}0")), None);
        assert_eq!(parse_sha256(&sum.replace('E', "g")), None);
        let info = format!(
            r#"{{"size": "10", "checksums": {{"md5": "x", "sha1": "y", "sha256": "{sum}"}}}}"#
        );
        assert_eq!(
            sha256_from_file_info(&info).as_deref(),
            Some(sum.to_ascii_lowercase().as_str())
        );
        assert_eq!(
            sha256_from_file_info(r#"{"checksums": {"md5": "x"}}"#),
            None
        );
        assert_eq!(sha256_from_file_info("nope"), None);
    }

    #[test]
    fn folder_urls_are_checked_without_showing_them() {
        assert_eq!(
            folder_url("https://h/artifactory/r/p", "X").unwrap(),
            "https://h/artifactory/r/p/"
        );
        assert_eq!(folder_url(" http://h/r/ ", "X").unwrap(), "http://h/r/");
        let err = folder_url("https://me:hunter2@h/artifactory/r/", "X")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("credentials in the URL") && !err.contains("hunter2"),
            "{err}"
        );
        assert!(folder_url("ftp://h/r/", "X").is_err());
        assert!(folder_url("https:///r/", "X").is_err());
    }

    #[test]
    fn credentials_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(credentials(env(&[])).unwrap().is_none());
        let token = credentials(env(&[(TOKEN_VAR, "t0k"), (USER_VAR, "u")]))
            .unwrap()
            .unwrap();
        assert_eq!(token.0, "Bearer t0k");
        assert!(!format!("{token:?}").contains("t0k"));
        let basic = credentials(env(&[(USER_VAR, "user"), (PASSWORD_VAR, "pa55word")]))
            .unwrap()
            .unwrap();
        assert_eq!(basic.0, "Basic dXNlcjpwYTU1d29yZA==");
        let err = credentials(env(&[(USER_VAR, "user")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(PASSWORD_VAR), "{err}");
        let err = credentials(env(&[(PASSWORD_VAR, "secret")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(USER_VAR) && !err.contains("secret"), "{err}");
    }

    // The client against the loopback Artifactory of the integration tests.

    use loopback::{Faults, Server};

    const NEW: &str = "hpe-hpc-launcher_3.10.1-12_amd64.deb";
    const OLD: &str = "hpe-hpc-launcher_3.9.0-0_amd64.deb";

    fn client(server: &Server, auth: Option<&str>) -> Artifactory {
        Artifactory::new(
            server.folder_url(),
            auth.map(|a| Secret(a.to_string())),
            Duration::from_millis(5),
            Duration::from_secs(1),
        )
    }

    fn server() -> Server {
        let server = Server::start();
        server.add(OLD, b"old launcher".to_vec());
        server.add(NEW, (0..300_000u32).map(|i| (i % 251) as u8).collect());
        server
    }

    struct Dir(PathBuf);

    impl Dir {
        fn new(label: &str) -> Dir {
            let dir = std::env::temp_dir()
                .join(format!("xtask-artifactory-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Dir(dir)
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .map(|entries| {
                    entries
                        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn package(name: &str) -> LauncherPackage {
        LauncherPackage::from_file_name(name).unwrap()
    }

    fn fetch(client: &Artifactory, dir: &Dir) -> anyhow::Result<PathBuf> {
        client.download(&package(NEW), &dir.0, &mut Progress::new(NEW))
    }

    #[test]
    fn newest_release_ignores_hostile_and_foreign_names() {
        let server = server();
        for name in [
            "../hpe-hpc-launcher_99.0.0-0_amd64.deb",
            "..\\hpe-hpc-launcher_99.0.0-0_amd64.deb",
            "hpe-hpc-launcher_99.0.0-0_amd64.deb/../../x",
            "sub/hpe-hpc-launcher_99.0.0-0_amd64.deb",
            "hpe-hpc-launcher_99.0.0-0.dev1_amd64.deb",
            "hpe-hpc-launcher_99.0.0-0_amd64.deb.sha256",
            "other-tool_99.0.0-0_amd64.deb",
        ] {
            server.list_only(name);
        }
        let found = client(&server, None).releases().unwrap();
        let names: Vec<_> = found.iter().map(|p| p.file_name.as_str()).collect();
        assert_eq!(names, [NEW, OLD]);
        assert!(server.requests()[0]
            .path
            .starts_with("/artifactory/api/storage/"));
    }

    #[test]
    fn the_html_page_when_the_storage_api_fails() {
        let server = server();
        server.set_faults(Faults {
            no_storage_api: true,
            ..Faults::default()
        });
        let newest = client(&server, None).newest_release().unwrap().unwrap();
        assert_eq!(newest.file_name, NEW);
        let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(
            paths.last().map(String::as_str),
            Some("/artifactory/launchers/hpc/")
        );
    }

    #[test]
    fn download_is_verified_and_leaves_no_temporary_file() {
        let server = server();
        let dir = Dir::new("ok");
        let path = fetch(&client(&server, None), &dir).unwrap();
        assert_eq!(path, dir.0.join(NEW));
        assert_eq!(std::fs::read(&path).unwrap().len(), 300_000);
        assert_eq!(dir.names(), [NEW]);
    }

    #[test]
    fn checksum_from_the_storage_api_without_the_header() {
        let server = server();
        server.set_faults(Faults {
            no_checksum_header: true,
            ..Faults::default()
        });
        let dir = Dir::new("api-sum");
        fetch(&client(&server, None), &dir).unwrap();
        assert_eq!(dir.names(), [NEW]);
    }

    #[test]
    fn no_checksum_anywhere_is_an_error() {
        let server = server();
        server.set_faults(Faults {
            no_checksum: true,
            ..Faults::default()
        });
        let dir = Dir::new("no-sum");
        let err = format!("{:#}", fetch(&client(&server, None), &dir).unwrap_err());
        assert!(err.contains("offers no sha256"), "{err}");
        assert!(dir.names().is_empty(), "{:?}", dir.names());
    }

    #[test]
    fn wrong_checksum_keeps_nothing() {
        let server = server();
        server.set_faults(Faults {
            wrong_checksum: true,
            ..Faults::default()
        });
        let dir = Dir::new("bad-sum");
        let err = format!("{:#}", fetch(&client(&server, None), &dir).unwrap_err());
        assert!(
            err.contains("is damaged") && err.contains("sha256"),
            "{err}"
        );
        assert!(dir.names().is_empty(), "{:?}", dir.names());
        assert_eq!(server.downloads_of(NEW), 1, "a mismatch is not retried");
    }

    #[test]
    fn a_body_cut_short_is_retried_then_fails_with_the_cause() {
        let server = server();
        server.set_faults(Faults {
            cut_short: true,
            ..Faults::default()
        });
        let dir = Dir::new("short");
        let err = format!("{:#}", fetch(&client(&server, None), &dir).unwrap_err());
        assert!(err.contains(&format!("failed {ATTEMPTS} times")), "{err}");
        assert!(
            err.contains("stopped after") || err.contains("cut short"),
            "{err}"
        );
        assert_eq!(server.downloads_of(NEW), ATTEMPTS as usize);
        assert!(dir.names().is_empty(), "{:?}", dir.names());
    }

    #[test]
    fn server_errors_are_retried() {
        let server = server();
        server.set_faults(Faults {
            fail_first: 2,
            ..Faults::default()
        });
        assert_eq!(
            client(&server, None)
                .newest_release()
                .unwrap()
                .unwrap()
                .file_name,
            NEW
        );
        server.set_faults(Faults {
            fail_first: 3 + server.requests().len(),
            ..Faults::default()
        });
        let dir = Dir::new("500");
        fetch(&client(&server, None), &dir).unwrap();
        assert_eq!(server.downloads_of(NEW), 4);
        assert_eq!(dir.names(), [NEW]);
    }

    #[test]
    fn a_stalled_download_fails_instead_of_hanging() {
        let server = server();
        server.set_faults(Faults {
            stall: true,
            ..Faults::default()
        });
        let dir = Dir::new("stall");
        let started = Instant::now();
        let err = format!("{:#}", fetch(&client(&server, None), &dir).unwrap_err());
        assert!(err.contains("sent nothing for 1 s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(dir.names().is_empty(), "{:?}", dir.names());
    }

    #[test]
    fn a_silent_server_fails_the_listing() {
        let server = server();
        server.set_faults(Faults {
            silent: true,
            ..Faults::default()
        });
        let started = Instant::now();
        let err = client(&server, None).releases().unwrap_err();
        assert!(is_unreachable(&err), "{err:#}");
        assert!(
            format!("{err:#}").contains("no answer within 1 s"),
            "{err:#}"
        );
        // One bounded attempt at the storage API, no retries and no HTML page after it.
        assert_eq!(server.requests().len(), 1);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

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
    fn credentials_go_in_a_header_and_never_in_messages() {
        let server = server();
        server.set_faults(Faults {
            required_auth: Some("Bearer s3cret-t0ken".into()),
            ..Faults::default()
        });
        let err = client(&server, None).releases().unwrap_err();
        assert!(!is_unreachable(&err));
        let text = format!("{err:#}");
        assert!(
            text.contains("401") && text.contains(TOKEN_VAR) && text.contains(USER_VAR),
            "{text}"
        );
        let err = format!(
            "{:#}",
            client(&server, Some("Bearer wrong-t0ken"))
                .releases()
                .unwrap_err()
        );
        assert!(
            err.contains("refused the credentials") && !err.contains("wrong-t0ken"),
            "{err}"
        );
        let good = client(&server, Some("Bearer s3cret-t0ken"));
        assert_eq!(good.newest_release().unwrap().unwrap().file_name, NEW);
        let dir = Dir::new("auth");
        fetch(&good, &dir).unwrap();
        let last = server.requests().pop().unwrap();
        assert_eq!(last.authorization.as_deref(), Some("Bearer s3cret-t0ken"));
        assert!(!last.path.contains("s3cret"));
    }

    #[test]
    fn a_closed_port_is_unreachable_at_once() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Artifactory::new(
            format!("http://127.0.0.1:{port}/artifactory/r/f/"),
            None,
            Duration::from_millis(5),
            Duration::from_secs(1),
        );
        let started = Instant::now();
        let err = client.releases().unwrap_err();
        assert!(is_unreachable(&err), "{err:#}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn an_unknown_host_counts_as_unreachable() {
        // `.invalid` never resolves (RFC 2606), so this needs no network.
        let client = Artifactory::new(
            "https://arti.invalid/artifactory/r/f/".to_string(),
            None,
            Duration::from_millis(5),
            Duration::from_secs(1),
        );
        let err = client.releases().unwrap_err();
        assert!(is_unreachable(&err), "{err:#}");
    }

    #[test]
    fn refuses_to_download_a_name_that_is_not_a_release() {
        let server = server();
        let dir = Dir::new("hostile");
        let hostile = LauncherPackage {
            file_name: "../x_amd64.deb".into(),
            ..package(NEW)
        };
        let err = client(&server, None)
            .download(&hostile, &dir.0, &mut Progress::new("x"))
            .unwrap_err();
        assert!(
            err.to_string().contains("not a launcher release name"),
            "{err}"
        );
        assert!(server.requests().is_empty());
    }
}
