//! A loopback Artifactory for tests: the storage API, the HTML folder page and downloads with
//! checksum headers, with faults on demand.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The repository and folder the server holds, as in the real URL's shape.
const REPO: &str = "launchers";
const FOLDER: &str = "hpc";

/// What goes wrong, on demand.
#[derive(Clone, Default)]
pub struct Faults {
    /// Downloads carry a checksum that is not the file's.
    pub wrong_checksum: bool,
    /// Downloads announce the full length but send half, then close.
    pub cut_short: bool,
    /// The first N requests (of any kind) are answered 500.
    pub fail_first: usize,
    /// The first N downloads of a package are answered 500; listings are answered.
    pub fail_downloads: usize,
    /// Every request needs `Authorization: <this>` (e.g. `Bearer t0k`), else 401.
    pub required_auth: Option<String>,
    /// Downloads send their headers and half the body, then go silent without closing.
    pub stall: bool,
    /// Every request is read, then never answered.
    pub silent: bool,
    /// The storage API answers 404, as on a plain mirror.
    pub no_storage_api: bool,
    /// Downloads carry no `X-Checksum-Sha256` header (the storage API still has it).
    pub no_checksum_header: bool,
    /// No sha256 anywhere: no header, none in the file info.
    pub no_checksum: bool,
    /// Downloads are answered `302` to this base URL followed by the file name.
    pub redirect_downloads_to: Option<String>,
    /// Downloads carry no Content-Length and send this many bytes more than the file holds
    /// before closing, as a server streaming without end would.
    pub too_long_by: usize,
    /// Downloads send their headers, then one byte every this many milliseconds.
    pub drip_ms: Option<u64>,
}

struct Package {
    name: String,
    bytes: Arc<Vec<u8>>,
    sha256: String,
}

#[derive(Default)]
struct State {
    packages: Vec<Package>,
    /// Names that appear in the listings but are not served.
    listed_only: Vec<String>,
    faults: Faults,
    requests: Vec<Request>,
    /// Downloads answered 500 so far, for `Faults::fail_downloads`.
    downloads_failed: usize,
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub authorization: Option<String>,
}

/// The server; it stops accepting when dropped.
pub struct Server {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Server {
    pub fn start() -> Server {
        Server::start_on("127.0.0.1")
    }

    /// A server on another loopback address (`127.0.0.2`): another host, as a client sees it.
    pub fn start_on(ip: &str) -> Server {
        let listener = TcpListener::bind((ip, 0)).expect("binding a loopback port");
        let addr = listener.local_addr().expect("the loopback address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (s, st) = (s.clone(), st.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &s, &st);
                });
            }
        });
        Server { addr, state, stop }
    }

    /// The folder URL, as in the config: `http://127.0.0.1:PORT/artifactory/REPO/FOLDER/`.
    pub fn folder_url(&self) -> String {
        format!("http://{}/artifactory/{REPO}/{FOLDER}/", self.addr)
    }

    pub fn url_of(&self, name: &str) -> String {
        format!("{}{name}", self.folder_url())
    }

    /// Serves `bytes` as `name` in the folder.
    pub fn add(&self, name: &str, bytes: Vec<u8>) {
        let sha256 = sha256_hex(&bytes);
        self.state.lock().unwrap().packages.push(Package {
            name: name.to_string(),
            bytes: Arc::new(bytes),
            sha256,
        });
    }

    /// Lists `name` in the folder without serving it (hostile or foreign entries).
    pub fn list_only(&self, name: &str) {
        self.state
            .lock()
            .unwrap()
            .listed_only
            .push(name.to_string());
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().unwrap().faults = faults;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many downloads of `name` were asked for.
    pub fn downloads_of(&self, name: &str) -> usize {
        let path = format!("/artifactory/{REPO}/{FOLDER}/{name}");
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Holds a connection open without answering, until the server stops or a minute passes.
fn go_silent(stop: &AtomicBool) {
    let until = Instant::now() + Duration::from_secs(60);
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    let (faults, seen) = {
        let mut state = state.lock().unwrap();
        state.requests.push(Request {
            path: path.clone(),
            authorization: authorization.clone(),
        });
        (state.faults.clone(), state.requests.len())
    };
    let mut out = stream;
    if faults.silent {
        go_silent(stop);
        return Ok(());
    }
    if seen <= faults.fail_first {
        return respond(
            &mut out,
            500,
            "text/plain",
            &[],
            b"internal error (injected)",
        );
    }
    if let Some(required) = &faults.required_auth {
        if authorization.as_deref() != Some(required.as_str()) {
            let body = br#"{"errors":[{"status":401,"message":"Bad credentials"}]}"#;
            return respond(&mut out, 401, "application/json", &[], body);
        }
    }
    let api = format!("/artifactory/api/storage/{REPO}/{FOLDER}");
    let folder = format!("/artifactory/{REPO}/{FOLDER}/");
    if let Some(rest) = path.strip_prefix(&api) {
        if faults.no_storage_api {
            return respond(&mut out, 404, "text/plain", &[], b"not found");
        }
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            let body = storage_listing(state, &api);
            return respond(&mut out, 200, "application/json", &[], body.as_bytes());
        }
        let info = {
            let state = state.lock().unwrap();
            state.packages.iter().find(|p| p.name == rest).map(|p| {
                let sha256 = if faults.no_checksum {
                    None
                } else {
                    Some(p.sha256.clone())
                };
                serde_json::json!({
                    "repo": REPO,
                    "path": format!("/{FOLDER}/{}", p.name),
                    "size": p.bytes.len().to_string(),
                    "downloadUri": format!("{folder}{}", p.name),
                    "checksums": { "md5": "0", "sha1": "0", "sha256": sha256 },
                })
                .to_string()
            })
        };
        return match info {
            Some(body) => respond(&mut out, 200, "application/json", &[], body.as_bytes()),
            None => respond(&mut out, 404, "text/plain", &[], b"not found"),
        };
    }
    if path == folder || path == folder.trim_end_matches('/') {
        let body = index_page(state);
        return respond(&mut out, 200, "text/html", &[], body.as_bytes());
    }
    let Some(name) = path.strip_prefix(&folder) else {
        return respond(&mut out, 404, "text/plain", &[], b"not found");
    };
    let package = {
        let state = state.lock().unwrap();
        state
            .packages
            .iter()
            .find(|p| p.name == name)
            .map(|p| (p.bytes.clone(), p.sha256.clone()))
    };
    let Some((bytes, sha256)) = package else {
        return respond(&mut out, 404, "text/plain", &[], b"not found");
    };
    if let Some(base) = &faults.redirect_downloads_to {
        let location = vec![("Location".to_string(), format!("{base}{name}"))];
        return respond(&mut out, 302, "text/plain", &location, b"moved");
    }
    let fail = {
        let mut state = state.lock().unwrap();
        let fail = state.downloads_failed < faults.fail_downloads;
        state.downloads_failed += usize::from(fail);
        fail
    };
    if fail {
        return respond(
            &mut out,
            500,
            "text/plain",
            &[],
            b"internal error (injected)",
        );
    }
    let sha256 = if faults.wrong_checksum {
        sha256_hex(b"something else")
    } else {
        sha256
    };
    let mut headers = vec![("X-Checksum-Md5".to_string(), "0".to_string())];
    if !faults.no_checksum_header && !faults.no_checksum {
        headers.push(("X-Checksum-Sha256".to_string(), sha256));
    }
    if faults.too_long_by > 0 {
        let head = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect::<String>();
        out.write_all(
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n{head}\r\n")
                .as_bytes(),
        )?;
        out.write_all(&bytes)?;
        out.write_all(&vec![b'x'; faults.too_long_by])?;
        return out.flush();
    }
    write_head(
        &mut out,
        200,
        "application/octet-stream",
        &headers,
        bytes.len(),
    )?;
    if let Some(pause) = faults.drip_ms {
        for byte in bytes.iter() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            out.write_all(&[*byte])?;
            out.flush()?;
            std::thread::sleep(Duration::from_millis(pause));
        }
        return Ok(());
    }
    if faults.cut_short || faults.stall {
        out.write_all(&bytes[..bytes.len() / 2])?;
        out.flush()?;
        if faults.stall {
            go_silent(stop);
        }
        return Ok(());
    }
    out.write_all(&bytes)?;
    out.flush()
}

fn write_head(
    out: &mut TcpStream,
    status: u16,
    content_type: &str,
    headers: &[(String, String)],
    length: usize,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    content_type: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    write_head(out, status, content_type, headers, body.len())?;
    out.write_all(body)?;
    out.flush()
}

fn names(state: &Mutex<State>) -> Vec<String> {
    let state = state.lock().unwrap();
    state
        .packages
        .iter()
        .map(|p| p.name.clone())
        .chain(state.listed_only.iter().cloned())
        .collect()
}

fn storage_listing(state: &Mutex<State>, api: &str) -> String {
    let mut children: Vec<serde_json::Value> = names(state)
        .into_iter()
        .map(|name| serde_json::json!({ "uri": format!("/{name}"), "folder": false }))
        .collect();
    children.push(serde_json::json!({ "uri": "/archive", "folder": true }));
    serde_json::json!({
        "repo": REPO,
        "path": format!("/{FOLDER}"),
        "created": "2024-03-12T10:01:00.000Z",
        "children": children,
        "uri": api,
    })
    .to_string()
}

/// The folder page in Artifactory's format.
fn index_page(state: &Mutex<State>) -> String {
    let mut page = format!(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<html>\n<head><title>Index of {REPO}/{FOLDER}</title>\n\
         </head>\n<body>\n<h1>Index of {REPO}/{FOLDER}/</h1>\n<pre>Name                                      Last modified      Size</pre><hr/>\n\
         <pre><a href=\"../\">../</a>\n<a href=\"archive/\">archive/</a>                                   12-Mar-2024 10:01    -\n"
    );
    for name in names(state) {
        page.push_str(&format!(
            "<a href=\"{name}\">{name}</a>    12-Mar-2024 10:01  41.20 MB\n"
        ));
    }
    page.push_str("</pre>\n<hr/><address style=\"font-size:small;\">Artifactory Port 8081</address></body></html>");
    page
}
