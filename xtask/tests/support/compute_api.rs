//! A loopback stand-in of the Compute API for the real gcloud: it serves images and VMs from
//! memory, source image families of other projects, and the images a stand-in packer writes
//! into a folder; it records every request, so tests can assert on exactly what was deleted.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// One HTTP request the stand-in received. Parts of a batch are recorded as requests of their
/// own, with `batched` set.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub batched: bool,
}

/// The project whose images the tool manages, as in the repository's config.
pub const PROJECT: &str = "determined-ai";

#[derive(Default)]
struct State {
    /// (project, image)
    images: Vec<(String, Value)>,
    /// A folder of `<name>.json` images of [`PROJECT`], read at each request: a stand-in packer
    /// "creates" an image by writing one.
    images_dir: Option<PathBuf>,
    /// (zone, instance)
    instances: Vec<(String, Value)>,
    requests: Vec<Request>,
    /// Images whose deletion fails, as an image in use would.
    failing: BTreeSet<String>,
    /// Every request answers 403, as for a project the user cannot see.
    forbidden: bool,
    /// Every request is read, then never answered, as by a server that hangs.
    silent: bool,
    /// Requests to these paths answer 403.
    forbidden_paths: BTreeSet<String>,
    /// How VMs inserted through the API "boot"; `None`: they never run their startup script.
    boot: Option<Boot>,
    /// The body of every instance insert.
    inserts: Vec<Value>,
    /// Each VM's serial console, by name: kept after the VM is deleted, for the tests. Only
    /// its last [`Boot::keep_last`] bytes when that is set.
    consoles: std::collections::BTreeMap<String, String>,
    /// How many bytes each console dropped from its start, as GCE drops all but its last MiB.
    dropped: std::collections::BTreeMap<String, usize>,
    /// How many times each VM's console was read.
    console_reads: std::collections::BTreeMap<String, usize>,
    /// The most VMs that existed at one time.
    most_at_once: usize,
    /// Each deprecate request: the image and its `DeprecationStatus` body.
    deprecations: Vec<(String, Value)>,
    /// The `Compute` calls the in-process cloud made, by method name.
    compute_calls: Vec<String>,
}

/// How an inserted VM boots: its startup script runs with bash in a sandbox that plays the
/// image (stand-in programs first on PATH, a scratch folder mounted over /srv in a mount
/// namespace of its own), its output going to the VM's serial console behind the guest
/// agent's prefix.
#[derive(Clone)]
struct Boot {
    dir: PathBuf,
    /// Paths under the image's root (`srv/enroot/...`, `enabled/launcher`) that the image lacks.
    lacks: Vec<String>,
    /// The VMs boot only once this many exist at one time.
    together: usize,
    /// The VMs never run their startup script.
    hang: bool,
    /// Text a service on the image writes to the console before the startup script runs; the
    /// script then waits until the console has been read.
    before_script: Option<String>,
    /// `(line, text)`: right after the first line of the startup script's output that contains
    /// `line`, a service writes `text` to the console, before it can be read.
    after_line: Vec<(String, String)>,
    /// After the first line of the startup script's output that contains this, the script
    /// waits until the console has been read.
    held_after: Vec<String>,
    /// The console keeps only its last this many bytes, as GCE keeps its last 1 MiB.
    keep_last: Option<usize>,
}

#[derive(Clone)]
pub struct ComputeApi {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// Every loopback API this test process started, so that a run can find its copy's API from
/// the endpoint its command names.
static STARTED: Mutex<Vec<ComputeApi>> = Mutex::new(Vec::new());

impl ComputeApi {
    /// The API whose endpoint is `endpoint` (a CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE value).
    pub fn at(endpoint: &str) -> Option<ComputeApi> {
        STARTED
            .lock()
            .unwrap()
            .iter()
            .find(|api| api.endpoint() == endpoint)
            .cloned()
    }

    pub fn start() -> ComputeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        STARTED.lock().unwrap().push(ComputeApi {
            port,
            state: state.clone(),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, port, &state));
            }
        });
        ComputeApi { port, state }
    }

    /// One request answered in this process, as over HTTP (the in-process cloud's door):
    /// the status and the JSON body, `None` while the API is silent.
    pub fn handle(&self, method: &str, target: &str, body: &str) -> Option<(u16, String)> {
        dispatch(&self.state, self.port, method, target, None, body)
            .map(|(status, _, answer)| (status, answer))
    }

    /// Notes a `Compute` call of the in-process cloud.
    pub fn note_call(&self, method: &str) {
        self.state
            .lock()
            .unwrap()
            .compute_calls
            .push(method.to_string());
    }

    /// The `Compute` calls made through the in-process cloud since the last look, in order;
    /// each run of console reads counts as one `serial_output` (how many depends on the VM's
    /// pace).
    pub fn take_calls(&self) -> Vec<String> {
        let calls = std::mem::take(&mut self.state.lock().unwrap().compute_calls);
        let mut taken: Vec<String> = Vec::new();
        for call in calls {
            if call == "serial_output" && taken.last() == Some(&call) {
                continue;
            }
            taken.push(call);
        }
        taken
    }

    /// The value of CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE (gcloud needs the trailing slash).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/compute/v1/", self.port)
    }

    /// Points a gcloud run at this stand-in, without credentials or prompts, with its own
    /// configuration folder.
    pub fn configure(&self, cmd: &mut Command, config_dir: &Path, project: &str) {
        cmd.env("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", self.endpoint())
            .env("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", "true")
            .env("CLOUDSDK_CONFIG", config_dir)
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env("CLOUDSDK_CORE_PROJECT", project);
    }

    pub fn add_image(
        &self,
        name: &str,
        created: i64,
        status: &str,
        labels: &[(&str, &str)],
        description: &str,
    ) {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut image = json!({
            "kind": "compute#image",
            "name": name,
            "family": "det-environments-slurm-ci",
            "creationTimestamp": rfc3339(created),
            "status": status,
            "description": description,
            "selfLink": format!("{}projects/determined-ai/global/images/{name}", self.endpoint()),
        });
        if !labels.is_empty() {
            image["labels"] = Value::Object(labels);
        }
        self.state
            .lock()
            .unwrap()
            .images
            .push((PROJECT.to_string(), image));
    }

    /// Deprecates the images named `name` (every copy) as GCE shows a deprecated image:
    /// `deprecated` with its state, the moment recorded (when given) and the replacement's URL.
    pub fn set_deprecated(&self, name: &str, since: Option<i64>, replacement: Option<&str>) {
        let endpoint = self.endpoint();
        for (_, image) in &mut self.state.lock().unwrap().images {
            if image["name"] == name {
                let mut status = json!({"state": "DEPRECATED"});
                if let Some(since) = since {
                    status["deprecated"] = json!(rfc3339(since));
                }
                if let Some(replacement) = replacement {
                    status["replacement"] = json!(format!(
                        "{endpoint}projects/{PROJECT}/global/images/{replacement}"
                    ));
                }
                image["deprecated"] = status;
            }
        }
    }

    /// Each deprecate request received, in order: the image and its `DeprecationStatus` body.
    pub fn deprecations(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().deprecations.clone()
    }

    /// Moves the images named `name` (every copy) into `family`.
    pub fn set_family(&self, name: &str, family: &str) {
        for (_, image) in &mut self.state.lock().unwrap().images {
            if image["name"] == name {
                image["family"] = json!(family);
            }
        }
    }

    /// An image of a public project in a family: what `describe-from-family` resolves to when
    /// it is the family's newest.
    pub fn add_source_image(&self, project: &str, family: &str, name: &str, created: i64) {
        let image = json!({
            "kind": "compute#image",
            "name": name,
            "family": family,
            "creationTimestamp": rfc3339(created),
            "status": "READY",
            "selfLink": format!("{}projects/{project}/global/images/{name}", self.endpoint()),
        });
        self.state
            .lock()
            .unwrap()
            .images
            .push((project.to_string(), image));
    }

    /// Serves the `<name>.json` files of `dir` as images of [`PROJECT`] too.
    pub fn serve_images_from(&self, dir: &Path) {
        self.state.lock().unwrap().images_dir = Some(dir.to_path_buf());
    }

    /// Requests to `path` (e.g. `/compute/v1/projects/determined-ai`) answer 403.
    pub fn forbid_path(&self, path: &str) {
        self.state
            .lock()
            .unwrap()
            .forbidden_paths
            .insert(path.to_string());
    }

    /// Whether every request received only read.
    pub fn only_reads(&self) -> bool {
        self.requests().iter().all(|r| r.method == "GET")
    }

    pub fn add_instance(
        &self,
        zone: &str,
        name: &str,
        created: i64,
        status: &str,
        description: &str,
    ) {
        let zone_url = format!("{}projects/determined-ai/zones/{zone}", self.endpoint());
        let instance = json!({
            "kind": "compute#instance",
            "name": name,
            "zone": zone_url,
            "status": status,
            "creationTimestamp": rfc3339(created),
            "description": description,
            "selfLink": format!("{zone_url}/instances/{name}"),
        });
        self.state
            .lock()
            .unwrap()
            .instances
            .push((zone.to_string(), instance));
    }

    /// A VM with labels, as a verification leaves one.
    pub fn add_labelled_instance(
        &self,
        zone: &str,
        name: &str,
        created: i64,
        labels: &[(&str, &str)],
    ) {
        self.add_instance(zone, name, created, "RUNNING", "");
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut state = self.state.lock().unwrap();
        if let Some((_, instance)) = state.instances.last_mut() {
            instance["labels"] = Value::Object(labels);
        }
    }

    /// Makes the deletion of `name` fail, inside a batch or alone.
    pub fn fail_delete_of(&self, name: &str) {
        self.state.lock().unwrap().failing.insert(name.to_string());
    }

    pub fn forbid(&self) {
        self.state.lock().unwrap().forbidden = true;
    }

    /// Makes every request go unanswered, the connection held open until gcloud drops it.
    pub fn silence(&self) {
        self.state.lock().unwrap().silent = true;
    }

    /// VMs inserted from now on boot in sandboxes under `dir` (see [`Boot`]), as a good image.
    pub fn boot_instances_in(&self, dir: &Path) {
        self.state.lock().unwrap().boot = Some(Boot {
            dir: dir.to_path_buf(),
            lacks: Vec::new(),
            together: 1,
            hang: false,
            before_script: None,
            after_line: Vec::new(),
            held_after: Vec::new(),
            keep_last: None,
        });
    }

    /// A service on the images booted writes `text` to the console before the startup script
    /// runs, and the script waits until the console has been read after it: the tool sees it
    /// alone first.
    pub fn service_writes_before_script(&self, text: &str) {
        if let Some(boot) = self.state.lock().unwrap().boot.as_mut() {
            boot.before_script = Some(text.to_string());
        }
    }

    /// Right after the first line of a startup script's output that contains `line`, a service
    /// writes `text` to the console, before the tool can read either.
    pub fn service_writes_after(&self, line: &str, text: &str) {
        if let Some(boot) = self.state.lock().unwrap().boot.as_mut() {
            boot.after_line.push((line.to_string(), text.to_string()));
        }
    }

    /// After the first line of a startup script's output that contains `line`, the script
    /// waits until the console has been read: the tool sees the output up to there alone.
    pub fn console_held_after(&self, line: &str) {
        if let Some(boot) = self.state.lock().unwrap().boot.as_mut() {
            boot.held_after.push(line.to_string());
        }
    }

    /// Consoles keep only their last `bytes` bytes, and a read from before them answers from
    /// where they start, with that `start`, as GCE's do beyond 1 MiB.
    pub fn consoles_keep_last(&self, bytes: usize) {
        if let Some(boot) = self.state.lock().unwrap().boot.as_mut() {
            boot.keep_last = Some(bytes);
        }
    }

    /// The images booted lack this path, relative to the image's root: `srv/...` for a file of
    /// the caches, `enabled/<unit>` for a unit that systemctl says is enabled.
    pub fn images_lack(&self, path: &str) {
        if let Some(boot) = self.state.lock().unwrap().boot.as_mut() {
            boot.lacks.push(path.to_string());
        }
    }

    /// VMs start their startup script only once `n` VMs exist at one time.
    pub fn boot_together(&self, n: usize) {
        if let Some(boot) = self.state.lock().unwrap().boot.as_mut() {
            boot.together = n;
        }
    }

    /// VMs boot but never run their startup script.
    pub fn hang_at_boot(&self) {
        if let Some(boot) = self.state.lock().unwrap().boot.as_mut() {
            boot.hang = true;
        }
    }

    /// The body of every instance insert received.
    pub fn instance_inserts(&self) -> Vec<Value> {
        self.state.lock().unwrap().inserts.clone()
    }

    /// The serial console of a VM, deleted or not.
    pub fn console(&self, name: &str) -> String {
        self.state
            .lock()
            .unwrap()
            .consoles
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// The names of the VMs there now.
    pub fn instance_names(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .instances
            .iter()
            .map(|(_, i)| i["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The most VMs that existed at one time.
    pub fn most_instances_at_once(&self) -> usize {
        self.state.lock().unwrap().most_at_once
    }

    /// Every request received, batch parts included.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The HTTP requests gcloud sent (a batch counts once): one per gcloud call in these tests.
    pub fn http_requests(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| !r.batched)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// The images gcloud asked to delete (successfully or not), sorted.
    pub fn image_deletions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .requests()
            .iter()
            .filter(|r| r.method == "DELETE" && r.path.contains("/global/images/"))
            .filter_map(|r| r.path.rsplit('/').next().map(str::to_string))
            .collect();
        names.sort();
        names
    }

    /// The VMs gcloud asked to delete, as `zone/name`, sorted.
    pub fn instance_deletions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .requests()
            .iter()
            .filter(|r| r.method == "DELETE" && r.path.contains("/instances/"))
            .filter_map(|r| {
                let parts: Vec<&str> = r.path.split('/').collect();
                let at = parts.iter().position(|p| *p == "zones")?;
                Some(format!("{}/{}", parts.get(at + 1)?, parts.get(at + 3)?))
            })
            .collect();
        names.sort();
        names
    }

    /// The names of the images of [`PROJECT`] still there, sorted.
    pub fn image_names(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap();
        let mut names: Vec<String> = images_of(&mut state, PROJECT, 0)
            .iter()
            .map(|i| i["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    }

    /// An image of [`PROJECT`] by name, as the API would answer it.
    pub fn image(&self, name: &str) -> Option<Value> {
        let mut state = self.state.lock().unwrap();
        images_of(&mut state, PROJECT, 0)
            .into_iter()
            .find(|i| i["name"] == name)
    }
}

/// The images of one project: those added, and for [`PROJECT`] those in the images folder
/// (given `kind` and `selfLink`, which gcloud needs, when the file lacks them).
fn images_of(state: &mut State, project: &str, port: u16) -> Vec<Value> {
    let mut images: Vec<Value> = state
        .images
        .iter()
        .filter(|(p, _)| p == project)
        .map(|(_, image)| {
            let mut image = image.clone();
            image["labelFingerprint"] = image_label_fingerprint(&image);
            image
        })
        .collect();
    if project != PROJECT {
        return images;
    }
    let Some(dir) = &state.images_dir else {
        return images;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        if file.extension().is_none_or(|e| e != "json") {
            continue;
        }
        // A file being written is skipped: the stand-in renames it into place when done.
        let Ok(mut image) = std::fs::read_to_string(&file)
            .map_err(drop)
            .and_then(|text| serde_json::from_str::<Value>(&text).map_err(drop))
        else {
            continue;
        };
        let name = image["name"].as_str().unwrap_or_default().to_string();
        image["kind"] = json!("compute#image");
        image["labelFingerprint"] = image_label_fingerprint(&image);
        if image.get("selfLink").is_none() {
            image["selfLink"] = json!(format!(
                "http://127.0.0.1:{port}/compute/v1/projects/{project}/global/images/{name}"
            ));
        }
        images.push(image);
    }
    images
}

/// Removes an image of a project, from memory or from the images folder; whether it was there.
fn remove_image(state: &mut State, project: &str, name: &str) -> bool {
    let before = state.images.len();
    state
        .images
        .retain(|(p, i)| !(p == project && i["name"] == *name));
    if state.images.len() != before {
        return true;
    }
    match &state.images_dir {
        Some(dir) if project == PROJECT => {
            std::fs::remove_file(dir.join(format!("{name}.json"))).is_ok()
        }
        _ => false,
    }
}

/// Serves one keep-alive connection until gcloud closes it.
fn serve(stream: TcpStream, port: u16, state: &Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end().to_string();
            if header.is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let Some((status, content_type, answer)) =
            dispatch(state, port, &method, &target, header("content-type"), &body)
        else {
            hold_silently(&mut reader);
            return;
        };
        let reply = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{answer}",
            reason(status),
            answer.len()
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// One request, answered as the API would: `None` when the API is silent (it never answers).
fn dispatch(
    state: &Arc<Mutex<State>>,
    port: u16,
    method: &str,
    target: &str,
    content_type: Option<String>,
    body: &str,
) -> Option<(u16, String, String)> {
    let path = target.split('?').next().unwrap_or("").to_string();
    if state.lock().unwrap().silent {
        state.lock().unwrap().requests.push(Request {
            method: method.to_string(),
            path,
            batched: false,
        });
        return None;
    }
    let shared = Arc::clone(state);
    let answered = {
        let mut state = state.lock().unwrap();
        state.requests.push(Request {
            method: method.to_string(),
            path: path.clone(),
            batched: false,
        });
        if state.forbidden || state.forbidden_paths.contains(&path) {
            let (status, json) = error(
                403,
                "forbidden",
                "Required 'compute.images.list' permission for 'projects/determined-ai'",
            );
            (status, "application/json".to_string(), json)
        } else if method == "POST" && path == "/batch/compute/v1" {
            let boundary = content_type
                .and_then(|t| {
                    t.split("boundary=")
                        .nth(1)
                        .map(|b| b.trim_matches('"').to_string())
                })
                .unwrap_or_default();
            (
                200,
                "multipart/mixed; boundary=stand-in-boundary".to_string(),
                batch(&mut state, port, &boundary, body),
            )
        } else if method == "POST"
            && path.contains("/global/operations/")
            && path.ends_with("/wait")
        {
            // Every operation the stand-in starts is already done.
            (200, "application/json".to_string(), wait_for(port, &path))
        } else if method == "POST" && path.ends_with("/deprecate") {
            let (status, json) = deprecate(&mut state, port, &path, body);
            (status, "application/json".to_string(), json)
        } else if method == "POST" && path.ends_with("/setLabels") {
            let (status, json) = set_labels(&mut state, port, &path, body);
            (status, "application/json".to_string(), json)
        } else if let Some((status, json)) =
            answer_vm(&mut state, &shared, port, method, target, body)
        {
            (status, "application/json".to_string(), json)
        } else {
            let (status, json) = answer(&mut state, port, method, &path);
            (status, "application/json".to_string(), json)
        }
    };
    Some(answered)
}

/// Reads and drops whatever comes until the peer closes the connection.
fn hold_silently(reader: &mut BufReader<TcpStream>) {
    let mut sink = [0u8; 1024];
    while let Ok(n) = reader.read(&mut sink) {
        if n == 0 {
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        412 => "Precondition Failed",
        403 => "Forbidden",
        _ => "Not Found",
    }
}

fn error(status: u16, reason: &str, message: &str) -> (u16, String) {
    let json = json!({"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message, "domain": "global"}]}});
    (status, json.to_string())
}

/// One request, alone or as a part of a batch.
fn answer(state: &mut State, port: u16, method: &str, path: &str) -> (u16, String) {
    let base = format!("http://127.0.0.1:{port}");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["compute", "v1", "projects", project]) => (
            200,
            json!({
                "kind": "compute#project",
                "name": project,
                "selfLink": format!("{base}/compute/v1/projects/{project}"),
            })
            .to_string(),
        ),
        ("GET", ["compute", "v1", "projects", project, "global", "images"]) => (
            200,
            json!({"kind": "compute#imageList", "items": images_of(state, project, port)})
                .to_string(),
        ),
        ("GET", ["compute", "v1", "projects", project, "global", "images", "family", family]) => {
            let newest = images_of(state, project, port)
                .into_iter()
                .filter(|i| i["family"] == *family && i["status"] == "READY")
                .max_by_key(|i| {
                    i["creationTimestamp"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                });
            match newest {
                Some(image) => (200, image.to_string()),
                None => error(
                    404,
                    "notFound",
                    &format!("The resource 'projects/{project}/global/images/family/{family}' was not found"),
                ),
            }
        }
        ("GET", ["compute", "v1", "projects", project, "global", "images", name]) => {
            match images_of(state, project, port)
                .into_iter()
                .find(|i| i["name"] == *name)
            {
                Some(image) => (200, image.to_string()),
                None => error(
                    404,
                    "notFound",
                    &format!(
                        "The resource 'projects/{project}/global/images/{name}' was not found"
                    ),
                ),
            }
        }
        ("DELETE", ["compute", "v1", "projects", project, "global", "images", name]) => {
            if state.failing.contains(*name) {
                return error(400, "resourceInUseByAnotherResource", &format!("The image resource '{name}' is already being used by 'instance-template-1'"));
            }
            if !remove_image(state, project, name) {
                return error(
                    404,
                    "notFound",
                    &format!(
                        "The resource 'projects/{project}/global/images/{name}' was not found"
                    ),
                );
            }
            (
                200,
                operation(
                    &base,
                    path,
                    &format!("projects/{project}/global/operations/op-{name}"),
                )
                .to_string(),
            )
        }
        ("GET", ["compute", "v1", "projects", _, "aggregated", "instances"]) => {
            let mut items = serde_json::Map::new();
            for (zone, instance) in &state.instances {
                let entry = items
                    .entry(format!("zones/{zone}"))
                    .or_insert_with(|| json!({"instances": []}));
                entry["instances"]
                    .as_array_mut()
                    .unwrap()
                    .push(instance.clone());
            }
            (
                200,
                json!({"kind": "compute#instanceAggregatedList", "items": items}).to_string(),
            )
        }
        ("DELETE", ["compute", "v1", "projects", project, "zones", zone, "instances", name]) => {
            let before = state.instances.len();
            state
                .instances
                .retain(|(z, i)| !(z == zone && i["name"] == *name));
            if state.instances.len() == before {
                return error(404, "notFound", &format!("The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found"));
            }
            (
                200,
                operation(
                    &base,
                    path,
                    &format!("projects/{project}/zones/{zone}/operations/op-{name}"),
                )
                .to_string(),
            )
        }
        _ => error(
            404,
            "notFound",
            &format!("the stand-in does not serve {method} {path}"),
        ),
    }
}

/// `POST .../global/operations/NAME/wait`, which gcloud sends after a `setLabels`: the
/// operation, done, naming the image it labelled.
fn wait_for(port: u16, path: &str) -> String {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (project, name) = match segments.as_slice() {
        ["compute", "v1", "projects", project, "global", "operations", name, "wait"] => {
            (*project, *name)
        }
        _ => ("", ""),
    };
    let (image, kind) = match (
        name.strip_prefix("op-labels-"),
        name.strip_prefix("op-deprecate-"),
    ) {
        (Some(image), _) => (image, "setLabels"),
        (_, Some(image)) => (image, "deprecate"),
        _ => (name, "setLabels"),
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut op = operation(
        &base,
        &format!("/compute/v1/projects/{project}/global/images/{image}"),
        &format!("projects/{project}/global/operations/{name}"),
    );
    op["operationType"] = json!(kind);
    op.to_string()
}

/// An answer of the stand-in: the HTTP status and the body.
type Answer = (u16, String);

/// The request of `POST .../global/images/NAME/<action>`: its project and image name, its JSON
/// body, and the image as stored. An error answer, as the API gives it, when the path is not
/// that action's, the body is not JSON or the image does not exist.
fn image_action<'p>(
    state: &mut State,
    port: u16,
    path: &'p str,
    body: &str,
    action: &str,
) -> Result<(&'p str, &'p str, Value, Value), Answer> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["compute", "v1", "projects", project, "global", "images", name, last] =
        segments.as_slice()
    else {
        return Err(error(
            404,
            "notFound",
            &format!("the stand-in does not serve POST {path}"),
        ));
    };
    if *last != action {
        return Err(error(
            404,
            "notFound",
            &format!("the stand-in does not serve POST {path}"),
        ));
    }
    let (project, name): (&'p str, &'p str) = (project, name);
    let Ok(request) = serde_json::from_str::<Value>(body) else {
        return Err(error(400, "invalid", "the body is not JSON"));
    };
    let Some(image) = images_of(state, project, port)
        .into_iter()
        .find(|i| i["name"] == *name)
    else {
        return Err(error(
            404,
            "notFound",
            &format!("The resource 'projects/{project}/global/images/{name}' was not found"),
        ));
    };
    Ok((project, name, request, image))
}

/// The finished operation the API answers an image's `action` with.
fn image_operation(
    port: u16,
    path: &str,
    project: &str,
    name: &str,
    action: &str,
    id: &str,
) -> Answer {
    let base = format!("http://127.0.0.1:{port}");
    let mut op = operation(
        &base,
        path.trim_end_matches(&format!("/{action}")),
        &format!("projects/{project}/global/operations/op-{id}-{name}"),
    );
    op["operationType"] = json!(action);
    (200, op.to_string())
}

/// `POST .../global/images/NAME/setLabels` (what `gcloud compute images add-labels` sends):
/// replaces the image's labels when the body carries its current `labelFingerprint`, as the
/// real API does, in memory or in the images folder.
fn set_labels(state: &mut State, port: u16, path: &str, body: &str) -> Answer {
    let (project, name, request, image) = match image_action(state, port, path, body, "setLabels") {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if request["labelFingerprint"] != image_label_fingerprint(&image) {
        return error(
            412,
            "conditionNotMet",
            "Labels fingerprint either invalid or resource labels have changed",
        );
    }
    let mut labelled = image;
    labelled["labels"] = request["labels"].clone();
    // gcloud decodes the fingerprint as base64: "labelled".
    labelled["labelFingerprint"] = json!("bGFiZWxsZWQ=");
    store_image(state, project, name, labelled);
    image_operation(port, path, project, name, "setLabels", "labels")
}

/// `POST .../global/images/NAME/deprecate` (what `gcloud compute images deprecate` sends),
/// with a `DeprecationStatus` body: the image keeps it as its `deprecated` field, as GCE
/// does; `ACTIVE` clears it. Each body is kept for the tests.
fn deprecate(state: &mut State, port: u16, path: &str, body: &str) -> Answer {
    let (project, name, status, image) = match image_action(state, port, path, body, "deprecate") {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    if !["ACTIVE", "DEPRECATED", "OBSOLETE", "DELETED"]
        .contains(&status["state"].as_str().unwrap_or(""))
    {
        return error(400, "invalid", "Invalid value for field 'resource.state'");
    }
    state.deprecations.push((name.to_string(), status.clone()));
    let mut changed = image;
    if status["state"] == "ACTIVE" {
        changed.as_object_mut().unwrap().remove("deprecated");
    } else {
        changed["deprecated"] = status;
    }
    store_image(state, project, name, changed);
    image_operation(port, path, project, name, "deprecate", "deprecate")
}

/// Replaces an image of a project, in memory or in the images folder.
fn store_image(state: &mut State, project: &str, name: &str, image: Value) {
    match (
        state
            .images
            .iter_mut()
            .find(|(p, i)| p == project && i["name"] == *name),
        &state.images_dir,
    ) {
        (Some((_, stored)), _) => *stored = image,
        (None, Some(dir)) => {
            let file = dir.join(format!("{name}.json"));
            let temp = dir.join(format!(".{name}.stored.tmp"));
            std::fs::write(&temp, image.to_string()).unwrap();
            std::fs::rename(&temp, &file).unwrap();
        }
        (None, None) => {}
    }
}

/// The label fingerprint an image answers with; an image never labelled through the API has
/// the fingerprint of no labels.
fn image_label_fingerprint(image: &Value) -> Value {
    image
        .get("labelFingerprint")
        .cloned()
        .unwrap_or_else(|| json!("42WmSpB8rSM="))
}

/// The requests of a verification VM: insert (which boots it), get, its serial console, and
/// the operations they start. `None` for any other request.
fn answer_vm(
    state: &mut State,
    shared: &Arc<Mutex<State>>,
    port: u16,
    method: &str,
    target: &str,
    body: &str,
) -> Option<(u16, String)> {
    let base = format!("http://127.0.0.1:{port}");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let found = |state: &State, zone: &str, name: &str| {
        state
            .instances
            .iter()
            .find(|(z, i)| z == zone && i["name"] == *name)
            .map(|(_, i)| i.clone())
    };
    let not_found = |project: &str, zone: &str, name: &str| {
        error(
            404,
            "notFound",
            &format!(
                "The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found"
            ),
        )
    };
    Some(match (method, segments.as_slice()) {
        ("POST", ["compute", "v1", "projects", project, "zones", zone, "instances"]) => {
            let insert: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            state.inserts.push(insert.clone());
            let name = insert["name"].as_str().unwrap_or_default().to_string();
            if found(state, zone, &name).is_some() {
                return Some(error(
                    409,
                    "alreadyExists",
                    &format!("The resource 'projects/{project}/zones/{zone}/instances/{name}' already exists"),
                ));
            }
            let zone_url = format!("{base}/compute/v1/projects/{project}/zones/{zone}");
            let mut instance = insert.clone();
            instance["kind"] = json!("compute#instance");
            instance["zone"] = json!(zone_url);
            instance["status"] = json!("RUNNING");
            instance["creationTimestamp"] = json!(rfc3339(1_800_000_000));
            instance["selfLink"] = json!(format!("{zone_url}/instances/{name}"));
            state.instances.push((zone.to_string(), instance));
            state.most_at_once = state.most_at_once.max(state.instances.len());
            state.consoles.insert(
                name.clone(),
                "[    0.000000] Linux version 5.15.0-stand-in (the loopback Compute API)\r\n"
                    .into(),
            );
            let image = insert["disks"][0]["initializeParams"]["sourceImage"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let script = insert["metadata"]["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|item| item["key"] == "startup-script")
                .and_then(|item| item["value"].as_str())
                .unwrap_or_default()
                .to_string();
            if let Some(boot) = state.boot.clone() {
                let description = images_of(state, PROJECT, port)
                    .into_iter()
                    .find(|i| i["name"] == *image)
                    .and_then(|i| i["description"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let (shared, vm) = (Arc::clone(shared), name.clone());
                std::thread::spawn(move || {
                    boot_vm(&shared, &boot, &vm, &image, &description, &script)
                });
            }
            let mut done = operation(
                &base,
                &format!("{path}/{name}"),
                &format!("projects/{project}/zones/{zone}/operations/op-insert-{name}"),
            );
            done["operationType"] = json!("insert");
            done["zone"] = json!(format!("{base}/compute/v1/projects/{project}/zones/{zone}"));
            (200, done.to_string())
        }
        ("GET", ["compute", "v1", "projects", project, "zones", zone, "instances", name]) => {
            match found(state, zone, name) {
                Some(instance) => (200, instance.to_string()),
                None => not_found(project, zone, name),
            }
        }
        (
            "GET",
            ["compute", "v1", "projects", project, "zones", zone, "instances", name, "serialPort"],
        ) => {
            if found(state, zone, name).is_none() {
                return Some(not_found(project, zone, name));
            }
            *state.console_reads.entry(name.to_string()).or_default() += 1;
            let console = state.consoles.get(*name).cloned().unwrap_or_default();
            let dropped = state.dropped.get(*name).copied().unwrap_or(0);
            let end = dropped + console.len();
            // Output the console no longer keeps is skipped, and `start` says where it resumes.
            let start: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("start="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                .clamp(dropped, end);
            (
                200,
                json!({
                    "kind": "compute#serialPortOutput",
                    "contents": &console[start - dropped..],
                    "start": start.to_string(),
                    "next": end.to_string(),
                    "selfLink": format!("{base}{path}"),
                })
                .to_string(),
            )
        }
        // Every operation is done at once; its target is named by the operation's name.
        (
            "GET" | "POST",
            ["compute", "v1", "projects", project, "global", "operations", op, ..],
        ) => {
            let image = op.strip_prefix("op-labels-").unwrap_or(op);
            let mut done = operation(
                &base,
                &format!("/compute/v1/projects/{project}/global/images/{image}"),
                &format!("projects/{project}/global/operations/{op}"),
            );
            done["operationType"] = json!("setLabels");
            (200, done.to_string())
        }
        (
            "GET" | "POST",
            ["compute", "v1", "projects", project, "zones", zone, "operations", op, ..],
        ) => {
            let vm = op.strip_prefix("op-insert-").unwrap_or(op);
            let mut done = operation(
                &base,
                &format!("/compute/v1/projects/{project}/zones/{zone}/instances/{vm}"),
                &format!("projects/{project}/zones/{zone}/operations/{op}"),
            );
            done["operationType"] = json!("insert");
            done["zone"] = json!(format!("{base}/compute/v1/projects/{project}/zones/{zone}"));
            (200, done.to_string())
        }
        _ => return None,
    })
}

/// The task images of the repository's config, which the stand-in images hold.
pub const CPU_TASK_IMAGE: &str = "determinedai/pytorch-tensorflow-cpu-dev:e960eae";
pub const CUDA_TASK_IMAGE: &str = "determinedai/pytorch-ngc-dev:e960eae";

/// Plays the image `image` (described as packer's stand-in describes it, naming the launcher
/// package) in a sandbox and runs the VM's startup script in it.
fn boot_vm(
    shared: &Arc<Mutex<State>>,
    boot: &Boot,
    vm: &str,
    image: &str,
    description: &str,
    script: &str,
) {
    let console = |text: &str| append_console(&mut shared.lock().unwrap(), boot, vm, text);
    if boot.hang {
        console("[    1.000000] the stand-in image hangs before its startup script\r\n");
        return;
    }
    // Events, not time: the VMs of a release each wait here until both exist.
    let mut waited = 0;
    while shared.lock().unwrap().instances.len() < boot.together {
        if waited > 2400 {
            console("[    2.000000] the stand-in gave up waiting for the other VM\r\n");
            return;
        }
        waited += 1;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let root = boot.dir.join(vm);
    let _ = std::fs::remove_dir_all(&root);
    let wm = if image.contains("-pbs-") {
        "pbs"
    } else {
        "slurm"
    };
    let launcher = description
        .rsplit(' ')
        .next()
        .and_then(|deb| deb.strip_prefix("hpe-hpc-launcher_"))
        .and_then(|rest| rest.strip_suffix("_amd64.deb"))
        .unwrap_or("0.0.0-0")
        .to_string();
    let mut files: Vec<String> = vec![
        "enabled/launcher".into(),
        format!("srv/singularity/{CPU_TASK_IMAGE}"),
        format!("srv/singularity/{CUDA_TASK_IMAGE}"),
        format!(
            "srv/enroot/{}.sqsh",
            CPU_TASK_IMAGE.replace(['/', ':'], "+")
        ),
        format!(
            "srv/enroot/{}.sqsh",
            CUDA_TASK_IMAGE.replace(['/', ':'], "+")
        ),
    ];
    let mut programs: Vec<(&str, String)> = vec![
        ("systemctl", format!("[ \"$1\" = is-enabled ] && [ -e '{}/enabled/'\"$2\" ] && echo enabled && exit 0; echo disabled; exit 1", root.display())),
        ("dpkg-query", format!("[ \"${{@: -1}}\" = hpe-hpc-launcher ] && printf %s '{launcher}' && exit 0; exit 1")),
        ("modinfo", "echo 525.147.05".into()),
        ("podman", "echo 'podman version 4.6.2'".into()),
        ("apptainer", "echo 'apptainer version 1.1.6'".into()),
        ("enroot", "echo 3.4.1".into()),
    ];
    if wm == "slurm" {
        files.extend(["enabled/slurmctld".into(), "enabled/slurmd".into()]);
        programs.push(("sinfo", "echo 'slurm 23.11.4'".into()));
    } else {
        files.push("enabled/pbs".into());
        programs.push(("qstat", "echo 'pbs_version = 22.05.11'".into()));
        for program in ["qsub", "pbsnodes", "pbs_server", "pbs_mom"] {
            programs.push((program, "exit 0".into()));
        }
    }
    for file in files.iter().filter(|f| !boot.lacks.contains(f)) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "stand-in").unwrap();
    }
    std::fs::create_dir_all(root.join("srv")).unwrap();
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for (name, body) in programs {
        let path = root.join("bin").join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(root.join("startup-script"), script).unwrap();
    let path = format!(
        "{}:{}",
        root.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    if let Some(text) = &boot.before_script {
        let reads = {
            let mut state = shared.lock().unwrap();
            append_console(&mut state, boot, vm, text);
            state.console_reads.get(vm).copied().unwrap_or(0)
        };
        wait_for_a_read(shared, vm, reads);
    }
    // The script's output goes to the console line by line as it comes, as the guest agent
    // copies it.
    let started = Command::new("unshare")
        .args([
            "--mount",
            "--fork",
            "bash",
            "-c",
            r#"mount --bind "$0/srv" /srv && exec bash "$0/startup-script" 2>&1"#,
        ])
        .arg(&root)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match started {
        Ok(child) => child,
        Err(err) => {
            console(&format!("the stand-in could not start unshare: {err}\r\n"));
            return;
        }
    };
    let mut after_line = boot.after_line.clone();
    let mut held_after = boot.held_after.clone();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut raw = Vec::new();
    while stdout.read_until(b'\n', &mut raw).unwrap_or(0) > 0 {
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        raw.clear();
        let reads = {
            let mut state = shared.lock().unwrap();
            append_console(
                &mut state,
                boot,
                vm,
                &format!(
                    "Nov 30 09:00:01 {vm} google_metadata_script_runner[812]: startup-script: {line}\r\n"
                ),
            );
            if let Some(at) = after_line
                .iter()
                .position(|(l, _)| line.contains(l.as_str()))
            {
                let (_, text) = after_line.remove(at);
                append_console(&mut state, boot, vm, &text);
            }
            state.console_reads.get(vm).copied().unwrap_or(0)
        };
        if let Some(at) = held_after.iter().position(|l| line.contains(l.as_str())) {
            held_after.remove(at);
            wait_for_a_read(shared, vm, reads);
        }
    }
    let mut errors = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut errors);
    }
    let _ = child.wait();
    for line in errors.lines() {
        console(&format!("[   29.000000] stand-in: {line}\r\n"));
    }
    console("[   30.000000] the startup script finished\r\n");
}

/// Adds `text` to the console of `vm`, keeping only its last [`Boot::keep_last`] bytes.
fn append_console(state: &mut State, boot: &Boot, vm: &str, text: &str) {
    let Some(console) = state.consoles.get_mut(vm) else {
        return;
    };
    console.push_str(text);
    let Some(keep) = boot.keep_last else { return };
    if console.len() <= keep {
        return;
    }
    let mut cut = console.len() - keep;
    while !console.is_char_boundary(cut) {
        cut += 1;
    }
    console.drain(..cut);
    *state.dropped.entry(vm.to_string()).or_default() += cut;
}

/// Waits until the console of `vm` has been read more than `reads` times, or the VM is gone
/// (events, not time; a tool that never reads again is given up on after two minutes).
fn wait_for_a_read(shared: &Arc<Mutex<State>>, vm: &str, reads: usize) {
    for _ in 0..2400 {
        {
            let state = shared.lock().unwrap();
            let gone = !state.instances.iter().any(|(_, i)| i["name"] == *vm);
            if gone || state.console_reads.get(vm).copied().unwrap_or(0) > reads {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A finished delete operation: gcloud then waits for nothing. It needs `operationType` and
/// `targetLink` to print what it deleted.
fn operation(base: &str, target: &str, name: &str) -> Value {
    json!({
        "kind": "compute#operation",
        "name": name.rsplit('/').next().unwrap_or(name),
        "operationType": "delete",
        "status": "DONE",
        "progress": 100,
        "targetLink": format!("{base}{target}"),
        "selfLink": format!("{base}/compute/v1/{name}"),
    })
}

/// Answers a `multipart/mixed` batch: one `application/http` part per request, in order,
/// each with the `Content-ID` gcloud gave it prefixed by `response-`.
fn batch(state: &mut State, port: u16, boundary: &str, body: &str) -> String {
    let mut out = String::new();
    for part in body.split(&format!("--{boundary}")) {
        let Some(content_id) = part
            .lines()
            .find_map(|l| l.strip_prefix("Content-ID: "))
            .map(|v| v.trim().trim_matches(['<', '>']).to_string())
        else {
            continue;
        };
        let Some(request_line) = part.lines().find(|l| l.ends_with(" HTTP/1.1")) else {
            continue;
        };
        let mut words = request_line.split_whitespace();
        let method = words.next().unwrap_or("").to_string();
        let path = words
            .next()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        state.requests.push(Request {
            method: method.clone(),
            path: path.clone(),
            batched: true,
        });
        let (status, json) = answer(state, port, &method, &path);
        out.push_str(&format!(
            "--stand-in-boundary\r\nContent-Type: application/http\r\nContent-ID: <response-{content_id}>\r\n\r\nHTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{json}\r\n",
            reason(status),
            json.len()
        ));
    }
    out.push_str("--stand-in-boundary--\r\n");
    out
}

/// A Unix time as the Compute API writes it, in Pacific time like the real one.
pub fn rfc3339(unix: i64) -> String {
    let local = unix - 7 * 3600;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.123-07:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
