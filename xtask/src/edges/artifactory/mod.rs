//! Artifactory: the only module that talks HTTP, to find the newest launcher release and download it verified.
//! Here the client, its retries and how its failures are sorted; the download in `download`.

mod download;

pub use download::remove_stale_partials;

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use ureq::Agent;

use crate::model::artifactory_folder::{
    credentials, folder_url, names_from_index_html, names_from_storage_listing, redirect,
    storage_api_url, without_query, Secret,
};
pub use crate::model::artifactory_folder::{PASSWORD_VAR, TOKEN_VAR, URL_VAR, USER_VAR};
use crate::model::config;
use crate::model::launcher_version::{releases, LauncherPackage};
use crate::model::whole_number_setting;
use crate::term::{signal_name, InterruptGuard, Interrupted};

/// The first pause between attempts, doubled after each: longer for a VPN that takes a while
/// to come back. These two are settings documented in the README and in `--help`.
const RETRY_DELAY_VAR: &str = "SLURM_IMAGE_RETRY_DELAY_MS";
/// How long a server may stay silent before the request fails (and is retried).
const STALL_TIMEOUT_VAR: &str = "SLURM_IMAGE_STALL_TIMEOUT_S";

const ATTEMPTS: u32 = 4;
/// Redirects followed for one request, as a browser would give up on a loop.
const MAX_REDIRECTS: usize = 5;
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

// ---------------------------------------------------------------------------------------------
// Errors a caller acts on.

/// The server could not be reached at all (DNS, refused, connect timeout): off the VPN, most
/// likely. `build` goes on with a local launcher when it gets this.
/// A server that took the connection but gave no whole answer in time is `slow`: it is
/// reachable, so the VPN is not the cause, but a build goes on without it all the same.
#[derive(Debug)]
pub struct Unreachable {
    pub url: String,
    pub cause: String,
    pub slow: bool,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.slow {
            write!(f, "{} answered, but too slowly ({})", self.url, self.cause)
        } else {
            write!(f, "cannot reach {} ({})", self.url, self.cause)
        }
    }
}

impl std::error::Error for Unreachable {}

/// Whether `err` (or a cause of it) is an [`Unreachable`] server.
pub fn is_unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<Unreachable>())
}

/// Whether `err` is a server that answered too slowly rather than one out of reach.
pub fn is_slow(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<Unreachable>().is_some_and(|u| u.slow))
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
// The client: requests, retries, and the sorting of what went wrong.

/// A client for the folder of launcher releases.
pub struct Artifactory {
    agent: Agent,
    /// The folder URL, ending with `/`.
    folder: String,
    auth: Option<Secret>,
    retry_delay: Duration,
    stall_timeout: Duration,
    /// The rate floor of a download: at least this many KiB/s over each window.
    min_rate_kib_s: u64,
    rate_window: Duration,
}

impl Artifactory {
    /// The client for the folder in the config, or in `SLURM_IMAGE_ARTIFACTORY_URL`, with the
    /// credentials of the environment.
    pub fn from_env(config: &config::Artifactory) -> anyhow::Result<Artifactory> {
        let var = crate::session::var;
        let folder = match var(URL_VAR).filter(|v| !v.trim().is_empty()) {
            Some(url) => folder_url(&url, URL_VAR)?,
            None => folder_url(&config.url, "artifactory.url in the config")?,
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
        let mut client = Artifactory::new(folder, credentials(var)?, retry_delay, stall_timeout);
        client.min_rate_kib_s = config.min_download_rate_kib_s;
        client.rate_window = Duration::from_secs(config.download_rate_window_s);
        Ok(client)
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
            // Redirects are followed by `get_following`, which decides where they may lead.
            .max_redirects(0)
            .build()
            .into();
        Artifactory {
            agent,
            folder,
            auth,
            retry_delay,
            stall_timeout,
            min_rate_kib_s: config::DEFAULT_MIN_DOWNLOAD_RATE_KIB_S,
            rate_window: Duration::from_secs(config::DEFAULT_DOWNLOAD_RATE_WINDOW_S),
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
        errln!("looking up releases at {}", self.folder);
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
                Err(_) => errln!(
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
                    errln!(
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

    /// A GET that, with a `deadline`, must be answered in full within it; a server silent
    /// until then counts as unreachable.
    fn get_within(
        &self,
        url: &str,
        deadline: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        self.get_following(url, deadline, true)
            .map(|(response, _)| response)
    }

    /// A GET that follows redirects by [`redirect`]'s rules: never from https to http, the
    /// credentials only to the configured host, and a hop to another host said aloud (or,
    /// without `other_hosts`, refused). Also returns the other host's URL a redirect led to.
    fn get_following(
        &self,
        url: &str,
        deadline: Option<Duration>,
        other_hosts: bool,
    ) -> Result<(ureq::http::Response<ureq::Body>, Option<String>), Failure> {
        let mut current = url.to_string();
        let mut on_configured_host = true;
        let mut other_host = None;
        for _ in 0..=MAX_REDIRECTS {
            let response = self.get_once(&current, deadline, on_configured_host)?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return self.checked(response, &current).map(|r| (r, other_host));
            }
            let Some(location) = response
                .headers()
                .get("Location")
                .and_then(|v| v.to_str().ok())
            else {
                return Err(Failure::fatal(format_args!(
                    "the server answered HTTP {status} for {} without saying where to (no Location header)",
                    without_query(&current)
                )));
            };
            let hop = redirect(&self.folder, &current, location).map_err(Failure::fatal)?;
            if hop.other_host {
                if !other_hosts {
                    return Err(Failure::fatal(format_args!(
                        "refusing the redirect from {} to another host, {}: this answer must come from {}",
                        without_query(&current),
                        without_query(&hop.url),
                        self.folder
                    )));
                }
                errln!(
                    "note: {} redirects to another host, {}",
                    without_query(&current),
                    without_query(&hop.url)
                );
                other_host = Some(hop.url.clone());
            }
            on_configured_host = !hop.other_host;
            current = hop.url;
        }
        Err(Failure::fatal(format_args!(
            "more than {MAX_REDIRECTS} redirects from {}: check artifactory.url in the config or {URL_VAR}",
            without_query(url)
        )))
    }

    /// One request, redirects not followed; the credentials go to the configured host only.
    fn get_once(
        &self,
        url: &str,
        deadline: Option<Duration>,
        with_credentials: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let mut request = self.agent.get(url);
        if let (Some(auth), true) = (&self.auth, with_credentials) {
            request = request.header("Authorization", auth.header_value());
        }
        if deadline.is_some() {
            request = request.config().timeout_global(deadline).build();
        }
        request
            .call()
            .map_err(|err| self.classify(err, url, deadline))
    }

    /// The response when its status is 2xx; otherwise the error it means.
    fn checked(
        &self,
        response: ureq::http::Response<ureq::Body>,
        url: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
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
        let out_of_reach = |cause: String, slow: bool| {
            Failure::Fatal(anyhow::Error::new(Unreachable {
                url: url.to_string(),
                cause,
                slow,
            }))
        };
        let unreachable = |cause: String| out_of_reach(cause, false);
        let timed_out = match &err {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(io) => io.kind() == K::TimedOut,
            _ => false,
        };
        if let (Some(deadline), true) = (deadline, timed_out) {
            // Past the name lookup and the connection, the server is there: only slow.
            let slow = !matches!(err, ureq::Error::Timeout(T::Resolve | T::Connect));
            return out_of_reach(format!("no answer within {} s", deadline.as_secs()), slow);
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
