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
}

#[derive(Clone)]
pub struct ComputeApi {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl ComputeApi {
    pub fn start() -> ComputeApi {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, port, &state));
            }
        });
        ComputeApi { port, state }
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
        .map(|(_, image)| image.clone())
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
fn serve(stream: TcpStream, port: u16, state: &Mutex<State>) {
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
        let path = target.split('?').next().unwrap_or("").to_string();
        if state.lock().unwrap().silent {
            state.lock().unwrap().requests.push(Request {
                method,
                path,
                batched: false,
            });
            hold_silently(&mut reader);
            return;
        }
        let (status, content_type, answer) = {
            let mut state = state.lock().unwrap();
            state.requests.push(Request {
                method: method.clone(),
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
                let boundary = header("content-type")
                    .and_then(|t| {
                        t.split("boundary=")
                            .nth(1)
                            .map(|b| b.trim_matches('"').to_string())
                    })
                    .unwrap_or_default();
                (
                    200,
                    "multipart/mixed; boundary=stand-in-boundary".to_string(),
                    batch(&mut state, port, &boundary, &body),
                )
            } else if method == "POST" && path.ends_with("/wait") {
                // Every operation the stand-in starts is already done.
                (200, "application/json".to_string(), wait_for(port, &path))
            } else if method == "POST" && path.ends_with("/setLabels") {
                let (status, json) = set_labels(&mut state, port, &path, &body);
                (status, "application/json".to_string(), json)
            } else {
                let (status, json) = answer(&mut state, port, &method, &path);
                (status, "application/json".to_string(), json)
            }
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
    let image = name.strip_prefix("op-labels-").unwrap_or(name);
    let base = format!("http://127.0.0.1:{port}");
    let mut op = operation(
        &base,
        &format!("/compute/v1/projects/{project}/global/images/{image}"),
        &format!("projects/{project}/global/operations/{name}"),
    );
    op["operationType"] = json!("setLabels");
    op.to_string()
}

/// `POST .../global/images/NAME/setLabels` (what `gcloud compute images add-labels` sends):
/// replaces the image's labels when the body carries its current `labelFingerprint`, as the
/// real API does, in memory or in the images folder.
fn set_labels(state: &mut State, port: u16, path: &str, body: &str) -> (u16, String) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["compute", "v1", "projects", project, "global", "images", name, "setLabels"] =
        segments.as_slice()
    else {
        return error(
            404,
            "notFound",
            &format!("the stand-in does not serve POST {path}"),
        );
    };
    let Ok(request) = serde_json::from_str::<Value>(body) else {
        return error(400, "invalid", "the body is not JSON");
    };
    let Some(image) = images_of(state, project, port)
        .into_iter()
        .find(|i| i["name"] == *name)
    else {
        return error(
            404,
            "notFound",
            &format!("The resource 'projects/{project}/global/images/{name}' was not found"),
        );
    };
    if request["labelFingerprint"] != image_label_fingerprint(&image) {
        return error(
            412,
            "conditionNotMet",
            "Labels fingerprint either invalid or resource labels have changed",
        );
    }
    let mut labelled = image.clone();
    labelled["labels"] = request["labels"].clone();
    // gcloud decodes the fingerprint as base64: "labelled".
    labelled["labelFingerprint"] = json!("bGFiZWxsZWQ=");
    match (
        state
            .images
            .iter_mut()
            .find(|(p, i)| p == project && i["name"] == *name),
        &state.images_dir,
    ) {
        (Some((_, stored)), _) => *stored = labelled,
        (None, Some(dir)) => {
            let file = dir.join(format!("{name}.json"));
            let temp = dir.join(format!(".{name}.labels.tmp"));
            std::fs::write(&temp, labelled.to_string()).unwrap();
            std::fs::rename(&temp, &file).unwrap();
        }
        (None, None) => return error(404, "notFound", "no such image"),
    }
    let base = format!("http://127.0.0.1:{port}");
    let mut op = operation(
        &base,
        path.trim_end_matches("/setLabels"),
        &format!("projects/{project}/global/operations/op-labels-{name}"),
    );
    op["operationType"] = json!("setLabels");
    (200, op.to_string())
}

/// The label fingerprint an image answers with; an image never labelled through the API has
/// the fingerprint of no labels.
fn image_label_fingerprint(image: &Value) -> Value {
    image
        .get("labelFingerprint")
        .cloned()
        .unwrap_or_else(|| json!("42WmSpB8rSM="))
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
