//! What the integration tests share: a temporary copy of the host tree, the built xtask run in
//! it, and stand-in programs put first on its PATH.
#![allow(dead_code)]

pub mod artifactory;
pub mod compute_api;
pub mod fake_cloud;
pub mod hosts;
pub mod images;
mod tools;

#[allow(unused_imports)] // Not every test crate needs a real tool.
pub use tools::require_tool;

use compute_api::ComputeApi;
pub use tempfile::TempDir;

use std::cell::RefCell;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The repository this test suite belongs to.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fresh folder under cargo's temporary folder for tests, named after `label`, removed when
/// dropped.
pub fn temp_dir(label: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{label}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Removes the adopted real trees whose test process has ended (70 MB each).
fn remove_adopted_trees_of_ended_runs() {
    let Ok(entries) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("real-host-adopted-"));
        // One being laid out has no pid file yet: not judged.
        let ended = std::fs::read_to_string(path.join("pid"))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if ours && ended {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// `../shared/tools/real-host-copy`, beside this repository, or `None` after saying SKIPPED.
fn real_host_copy_tool() -> Option<PathBuf> {
    let tool = repo_root().join("../shared/tools/real-host-copy");
    if tool.is_file() {
        return Some(tool);
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {}: no {} (the whole real host repository comes from ../shared beside this \
         repository)",
        std::thread::current().name().unwrap_or("a test"),
        tool.display()
    );
    None
}

/// The adopted real host tree of this test run, made by the first test that asks.
fn real_host_adopted() -> Option<PathBuf> {
    static ADOPTED: std::sync::OnceLock<Option<TempDir>> = std::sync::OnceLock::new();
    let tool = real_host_copy_tool()?;
    require_tool("packer")?;
    let dir = ADOPTED.get_or_init(|| Some(adopt_real_host(&tool)));
    dir.as_ref().map(|d| d.path().join("tree"))
}

/// The README's adoption steps, word for word, on a fresh layout of the real tree. The layout
/// lives as long as the test process (a static is never dropped), so it names its process, and
/// a later run removes those of processes that have ended.
fn adopt_real_host(tool: &Path) -> TempDir {
    remove_adopted_trees_of_ended_runs();
    let dir = temp_dir("real-host-adopted");
    std::fs::write(dir.path().join("pid"), std::process::id().to_string()).unwrap();
    let tree = dir.path().join("tree");
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.envs(GIT_IDENTITY).output().unwrap();
        assert!(
            out.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new(tool).arg(&tree).current_dir(repo_root()),
        "real-host-copy",
    );
    run(
        Command::new("bash")
            .arg(repo_root().join("xtask/adoption/adopt.sh"))
            .arg(&tree),
        "xtask/adoption/adopt.sh",
    );
    run(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["slurm-image", "fmt"])
            .current_dir(&tree)
            .stdin(Stdio::null()),
        "cargo xtask slurm-image fmt",
    );
    run(
        Command::new("git").args(["add", "-A"]).current_dir(&tree),
        "git add -A",
    );
    run(
        Command::new("git")
            .args(["commit", "-q", "-m", "Adopt cargo xtask slurm-image"])
            .current_dir(&tree),
        "git commit",
    );
    // Packed, as a clone is: each test copies the tree, and copying thousands of loose
    // objects cost more than the test itself.
    run(
        Command::new("git")
            .args(["repack", "-a", "-d", "-q"])
            .current_dir(&tree),
        "git repack",
    );
    run(
        Command::new("git")
            .args(["prune-packed", "-q"])
            .current_dir(&tree),
        "git prune-packed",
    );
    // Each test's tree links these files: a link changes a file's ctime, not its contents.
    run(
        Command::new("git")
            .args(["config", "core.trustctime", "false"])
            .current_dir(&tree),
        "git config",
    );
    // The tests' own files beside the tree (stand-ins, gcloud's folder, the loopback API's
    // images) are kept out of git's sight without changing the repository's .gitignore.
    std::fs::write(tree.join(".git/info/exclude"), TEST_FILES).unwrap();
    dir
}

/// The adopted tree for one test: its files hard links to the adopted ones and `.git` a copy.
/// Copying four thousand files for each test, then deleting them, was most of the real-host
/// tests' time: ext4 slows each new file down while many were recently deleted. Nothing
/// changes a tree's file in place: the tool replaces what it writes, git writes anew, and
/// [`HostCopy::write`] unlinks first; git's stat cache ignores the link count's ctime.
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() && entry.file_name() == ".git" {
            copy_tree(&entry.path(), &target);
        } else if kind.is_dir() {
            link_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(link, target).unwrap();
        } else {
            std::fs::hard_link(entry.path(), target).unwrap();
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() == "build" {
                continue;
            }
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What images.conf pins in a host copy ready to build: the images determined pinned in May
/// 2024.
pub const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";
/// The launcher package in build/ of a host copy ready to build.
pub const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";

/// The current image of each source family in the loopback Compute API of a [`HostCopy`]
/// (the config's `slurm` and `pbs` families), until a test adds a newer one.
pub const SLURM_SOURCE: &str = "slurm-gcp-6-3-ubuntu-2004-lts-v20240101";
pub const PBS_SOURCE: &str = "ubuntu-2004-focal-v20240101";
/// When they were published.
pub const SOURCES_CREATED: i64 = 1_704_067_200;

/// A host tree in a temporary folder: one of the fixtures in `tests/fixtures/` with the
/// repository's config file, and a `bin/` folder for stand-in programs that comes first on the
/// PATH of every xtask run (it starts with the stand-in ansible-playbook). Every run's gcloud talks to the copy's own loopback Compute API,
/// which serves the source families and the images the stand-in packer builds (it writes them
/// into `compute-images/`).
pub struct HostCopy {
    dir: TempDir,
    api: ComputeApi,
}

impl HostCopy {
    /// A template with the optional declarations, as this repository's own has them.
    pub fn new() -> HostCopy {
        HostCopy::of_fixture("extras")
    }

    /// [`HostCopy::new`] ready to build: the stand-in packer, images.conf pinning [`SEED`], and
    /// the launcher package [`LAUNCHER`] in build/.
    pub fn with_launcher() -> HostCopy {
        let host = HostCopy::new();
        host.stand_in("packer", STAND_IN_PACKER);
        host.write("tools/slurm/terraform/images.conf", SEED);
        host.write(
            &format!("tools/slurm/packer/build/{LAUNCHER}"),
            b"launcher package bytes",
        );
        host
    }

    /// A template in the form of the real host repository's: the seven variables only, the
    /// manifest at build/manifest.json, build/ uploaded whole.
    pub fn real_form() -> HostCopy {
        HostCopy::of_fixture("real-form")
    }

    /// A template the real packer builds anywhere in a second: a `null` source, the seven
    /// variables and `manifest_path`, and a manifest whose `custom_data` echoes the variables.
    pub fn null_builder() -> HostCopy {
        HostCopy::of_fixture("null-builder")
    }

    /// A copy of this repository's own `tools/` tree, for the checks that hold for any
    /// template (formatting, validation, the playbook's syntax) and nothing more specific.
    pub fn live() -> HostCopy {
        let dir = temp_dir("live");
        copy_tree(&repo_root().join("tools"), &dir.path().join("tools"));
        HostCopy::around(dir)
    }

    /// A copy of a whole host tree at `from` (a `real-host-copy` of the real repository, git
    /// history included), with the stand-ins' folder and a loopback Compute API of its own.
    pub fn of_tree(from: &Path) -> HostCopy {
        let dir = temp_dir("tree");
        copy_tree(from, dir.path());
        HostCopy::around(dir)
    }

    /// The whole real host repository (determined-ai/determined at c1e9c6d) as an adopting
    /// team leaves it: `../shared/tools/real-host-copy` lays the tree out, `xtask/adoption/adopt.sh`
    /// and `fmt` do the README's adoption steps, and it is committed. Laid out once per test
    /// run and copied for each test. `None`, after saying SKIPPED, where `../shared` is absent
    /// (as in an adopting repository) or packer, which `fmt` runs, is missing.
    pub fn real_host() -> Option<HostCopy> {
        let adopted = real_host_adopted()?;
        let dir = temp_dir("real-host");
        link_tree(&adopted, dir.path());
        Some(HostCopy::around(dir))
    }

    fn of_fixture(name: &str) -> HostCopy {
        let dir = temp_dir("host");
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        // The whole fixture: the template, and the files around it (the task images' consumers).
        copy_tree(&fixture, dir.path());
        let config = "tools/slurm/packer/slurm-image.toml";
        std::fs::copy(repo_root().join(config), dir.path().join(config)).unwrap();
        HostCopy::around(dir)
    }

    /// The stand-ins' folder and the loopback Compute API around a host tree in `dir`.
    fn around(dir: TempDir) -> HostCopy {
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let ansible = dir.path().join("bin/ansible-playbook");
        std::fs::write(&ansible, STAND_IN_ANSIBLE_PLAYBOOK).unwrap();
        std::fs::set_permissions(&ansible, std::fs::Permissions::from_mode(0o755)).unwrap();
        let api = ComputeApi::start();
        api.serve_images_from(&dir.path().join("compute-images"));
        api.add_source_image(
            "schedmd-slurm-public",
            "slurm-gcp-6-3-ubuntu-2004-lts",
            SLURM_SOURCE,
            SOURCES_CREATED,
        );
        api.add_source_image(
            "ubuntu-os-cloud",
            "ubuntu-2004-lts",
            PBS_SOURCE,
            SOURCES_CREATED,
        );
        HostCopy { dir, api }
    }

    /// The loopback Compute API every xtask run of this copy talks to.
    pub fn api(&self) -> &ComputeApi {
        &self.api
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn build_dir(&self) -> PathBuf {
        self.path("tools/slurm/packer/build")
    }

    /// `target/slurm-image/`: the tool's own files.
    pub fn state_dir(&self) -> PathBuf {
        self.path("target/slurm-image")
    }

    pub fn images_conf(&self) -> PathBuf {
        self.path("tools/slurm/terraform/images.conf")
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }

    /// Writes a new file at `rel`: one that was there is unlinked first, since a real-host
    /// tree's files are links shared with the other tests'.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&path);
        std::fs::write(path, contents).unwrap();
    }

    /// Puts an executable script named `name` first on PATH for xtask runs.
    pub fn stand_in(&self, name: &str, script: &str) {
        let path = self.root().join("bin").join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Takes the stand-in ansible-playbook off PATH, so that xtask runs use the real one (or
    /// find none): for the tests about the playbook check itself.
    pub fn real_ansible_playbook(&self) {
        std::fs::remove_file(self.root().join("bin/ansible-playbook")).unwrap();
    }

    /// The PATH of xtask runs: the stand-ins, then the test's own PATH.
    pub fn path_var(&self) -> std::ffi::OsString {
        let mut paths = vec![self.root().join("bin")];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        std::env::join_paths(paths).unwrap()
    }

    /// The built xtask, as `cargo xtask slurm-image <args>` from the copy's root, with no
    /// terminal and none of the user's overrides or credentials.
    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        with_default_signals(&mut cmd);
        // Names the test, for the wrapper of xtask/bench/gcloud-starts.sh that counts gcloud starts.
        cmd.env("XTASK_TEST", std::thread::current().name().unwrap_or("?"));
        cmd.arg("slurm-image")
            .args(args)
            .current_dir(self.root())
            .env("PATH", self.path_var())
            .stdin(Stdio::null())
            // No test reaches Google: gcloud gets a configuration folder of its own, no
            // credentials, an account name for `gcloud config get account`, and the copy's
            // loopback Compute API.
            .env("CLOUDSDK_CONFIG", self.root().join("gcloud-config"))
            .env("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", "true")
            .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
            .env("CLOUDSDK_CORE_PROJECT", "determined-ai")
            .env("CLOUDSDK_CORE_ACCOUNT", "tester@example.com")
            .env(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
                self.api.endpoint(),
            )
            // Their stdout is a pipe, where lines would carry the time: the tests of the
            // timestamps ask for them (`SLURM_IMAGE_TIMESTAMPS=auto`), the others read lines
            // as a terminal shows them.
            .env("SLURM_IMAGE_TIMESTAMPS", "never");
        for var in [
            "SLURM_IMAGE_ARTIFACTORY_URL",
            "ARTIFACTORY_TOKEN",
            "ARTIFACTORY_USER",
            "ARTIFACTORY_PASSWORD",
            "PACKER_LOG",
            "PACKER_LOG_PATH",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// The stand-in packer's calls: `<working folder> | <arguments>`.
    pub fn packer_calls(&self) -> Vec<String> {
        self.log_lines("packer-calls.log")
    }

    /// The launcher package of each stand-in packer build: `<file name> <sha256>`.
    pub fn packer_launchers(&self) -> Vec<String> {
        self.log_lines("packer-launchers.log")
    }

    fn log_lines(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(name))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Runs `cargo xtask slurm-image <args>` in this process, as [`HostCopy::xtask`] would in
    /// its own: from the copy's root, with the stand-ins first on PATH, no terminal, and the
    /// copy's loopback Compute API as the cloud, reached through the tool's `Compute` seam
    /// rather than gcloud. A run that hangs fails the test after [`HANG`].
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// [`HostCopy::run`] with extra environment variables, e.g. to steer a stand-in.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.xtask(args);
        cmd.envs(env.iter().copied());
        Run::in_process(cmd)
    }

    /// The built binary run to its end with the real gcloud (against the copy's loopback
    /// Compute API): for the contract tier and the end-to-end journeys.
    pub fn run_binary(&self, args: &[&str]) -> Run {
        Run::of(self.xtask(args))
    }

    /// [`HostCopy::run_binary`] with extra environment variables.
    pub fn run_binary_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.xtask(args);
        cmd.envs(env.iter().copied());
        Run::of(cmd)
    }
}

/// Reads `stderr` line by line until a line contains `wanted`; everything read so far. Fails
/// the test, showing what was read, when the stream ends first.
pub fn read_until_line(stderr: &mut impl std::io::BufRead, wanted: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let read = stderr.read_line(&mut line).unwrap();
        assert_ne!(read, 0, "the run ended before saying {wanted:?}:\n{seen}");
        seen.push_str(&line);
        if line.contains(wanted) {
            return seen;
        }
    }
}

/// How long a test waits for an event before it calls the run hung: far beyond any wait of a
/// working run on a busy machine, so that only a hang fails a test. No test measures time.
pub const HANG: Duration = Duration::from_secs(180);

/// Waits until `happened` holds, looking every 20 ms; fails the test with `hung()`'s text when
/// it has not after [`HANG`].
pub fn wait_until(mut happened: impl FnMut() -> bool, hung: impl FnOnce() -> String) {
    let deadline = Instant::now() + HANG;
    while !happened() {
        if Instant::now() > deadline {
            panic!("hung: nothing happened for {HANG:?}: {}", hung());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What an xtask wrote to one of its streams so far, read by a thread of its own. Bytes, so
/// that a character split between two reads is still whole in the text.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<u8>>>);

impl Collected {
    fn of(stream: Option<impl Read + Send + 'static>) -> (Collected, JoinHandle<()>) {
        let collected = Collected::default();
        let shared = collected.clone();
        let reader = std::thread::spawn(move || {
            let Some(mut stream) = stream else { return };
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                shared.0.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        (collected, reader)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    /// The xtask runs of the test on this thread, shown when the test fails.
    static RUNS: RefCell<Vec<(String, Collected, Collected)>> = const { RefCell::new(Vec::new()) };
}

/// Makes every failing test show the output of its last xtask runs, whatever it asserted.
fn show_runs_on_failure() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Never a panic inside the hook: a test's runs are shown if they can be.
            let _ = RUNS.try_with(|runs| {
                let Ok(runs) = runs.try_borrow() else { return };
                for (what, stdout, stderr) in runs.iter().rev().take(3).rev() {
                    eprintln!(
                        "=== {what}\n--- stdout\n{}\n--- stderr\n{}",
                        stdout.text(),
                        stderr.text()
                    );
                }
            });
            default(info);
        }));
    });
}

/// The signals a terminal, a supervisor or `nohup` may have left ignored for the test runner.
const STOPPING_SIGNALS: [i32; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM];

/// Starts `cmd` with SIGINT, SIGQUIT, SIGHUP and SIGTERM at their defaults. A test runner
/// started in a script's background or under nohup hands its children SIGINT and SIGQUIT (or
/// SIGHUP) ignored, and the xtask rightly keeps an ignored signal ignored; the tests signal it as
/// a terminal would, so it must start as it would from a terminal, whatever started the tests.
pub fn with_default_signals(cmd: &mut Command) {
    // SAFETY: signal() is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            for signal in STOPPING_SIGNALS {
                if libc::signal(signal, libc::SIG_DFL) == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// A running xtask (or any program) whose stdout and stderr are collected as they come, for
/// tests that watch what it says or signal it. Its output is shown if the test fails.
/// The xtask command a test built, run in this process on a thread of its own: the same
/// arguments, folder and environment, with no terminal, and the loopback API its endpoint
/// names as the cloud, reached through the tool's `Compute` seam rather than gcloud. The test
/// may deliver it signals, as `kill` of the tool alone would.
pub struct InProcess {
    started: xtask::testing::Started,
    shown: String,
}

/// Sets this process's stopping signals to their defaults, once: what a run in-process starts
/// (packer) inherits them, and must start as it would from a terminal, whatever started the
/// tests (see [`with_default_signals`], the same for the built binary).
fn default_signals_for_children() {
    static DONE: Once = Once::new();
    DONE.call_once(|| {
        for signal in STOPPING_SIGNALS {
            // SAFETY: signal(2) with the default action; no handler of this process is replaced
            // (the in-process runs' signals are delivered, not caught).
            let was = unsafe { libc::signal(signal, libc::SIG_DFL) };
            assert_ne!(was, libc::SIG_ERR, "resetting signal {signal}");
        }
    });
}

impl InProcess {
    pub fn start(cmd: Command) -> InProcess {
        default_signals_for_children();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let dir = cmd
            .get_current_dir()
            .expect("the xtask's folder")
            .to_path_buf();
        // Set variables only: a removed one is absent from the test process too.
        let vars: Vec<(std::ffi::OsString, std::ffi::OsString)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_os_string(), v?.to_os_string())))
            .collect();
        let var = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        let endpoint = var("CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE").unwrap_or_default();
        let api = ComputeApi::at(&endpoint).unwrap_or_else(|| {
            panic!("no loopback API at {endpoint:?}: a run that needs the real gcloud is Run::of")
        });
        let mut cloud = fake_cloud::FakeCloud::new(api);
        if let Some(account) = var("CLOUDSDK_CORE_ACCOUNT") {
            cloud.account = Some(account).filter(|a| !a.is_empty());
        }
        let shown = args.join(" ");
        let started = xtask::testing::start_in_process(args, dir, vars, Box::new(cloud));
        InProcess { started, shown }
    }

    /// Waits until `ready` holds, failing the test if the run ends first or after [`HANG`].
    pub fn wait_for(&self, what: &str, ready: impl Fn() -> bool) {
        let started = Instant::now();
        while !ready() {
            assert!(
                !self.started.is_finished(),
                "`cargo xtask {}` ended before {what}:\n{}",
                self.shown,
                self.started.stderr_so_far()
            );
            assert!(
                started.elapsed() < HANG,
                "no {what} within {HANG:?}:\n{}",
                self.started.stderr_so_far()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the run has said `wanted` on stderr; its stderr so far.
    pub fn wait_for_stderr(&self, wanted: &str) -> String {
        self.wait_for(&format!("{wanted:?} on stderr"), || {
            self.started.stderr_so_far().contains(wanted)
        });
        self.started.stderr_so_far()
    }

    /// Delivers `signal` (`libc::SIGTERM`, ...) to the run, as `kill` of the tool alone would.
    pub fn deliver(&self, signal: i32) {
        self.started.deliver(signal);
    }

    /// Waits for the run to end, for at most [`HANG`].
    pub fn finish(self) -> Run {
        let finished = self.started.finish(HANG).unwrap_or_else(|started| {
            panic!(
                "`cargo xtask {}` did not finish within {HANG:?}:\n{}",
                self.shown,
                started.stderr_so_far()
            )
        });
        Run {
            code: Some(finished.code),
            stdout: finished.stdout,
            stderr: finished.stderr,
        }
    }
}

pub struct Running {
    child: Child,
    stdout: Collected,
    stderr: Collected,
    readers: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        show_runs_on_failure();
        with_default_signals(&mut cmd);
        let what = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let (stdout, out_reader) = Collected::of(child.stdout.take());
        let (stderr, err_reader) = Collected::of(child.stderr.take());
        RUNS.with(|runs| {
            runs.borrow_mut()
                .push((what, stdout.clone(), stderr.clone()))
        });
        Running {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Whether it has ended (it is not reaped: [`Running::finish`] still reports it).
    pub fn has_ended(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// Waits until its stderr says `wanted` `times` times in all; fails the test if it ends
    /// first or hangs.
    pub fn wait_for_stderr_times(&mut self, wanted: &str, times: usize) {
        self.wait_for(
            &format!("its stderr to say {wanted:?} {times} time(s)"),
            |r| r.stderr().matches(wanted).count() >= times,
        );
    }

    /// Waits until its stderr says `wanted`; fails the test if it ends first or hangs.
    pub fn wait_for_stderr(&mut self, wanted: &str) {
        self.wait_for_stderr_times(wanted, 1);
    }

    /// Waits until `happened` holds while it runs; fails the test, with its output, if it ends
    /// first or hangs.
    pub fn wait_for(&mut self, what: &str, mut happened: impl FnMut(&mut Running) -> bool) {
        let deadline = Instant::now() + HANG;
        while !happened(self) {
            // One more look after it ended: the event may have come just before.
            if self.has_ended() && !happened(self) {
                panic!("the xtask ended while the test waited for {what}");
            }
            if Instant::now() > deadline {
                panic!("hung: waited {HANG:?} for {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for it to end (killing it if it hangs) and returns what it did.
    pub fn finish(mut self) -> Run {
        let deadline = Instant::now() + HANG;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("hung: the xtask had not ended after {HANG:?}, and was killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            // Its output ends when it does, unless a process it left behind holds the pipes.
            let _ = reader.join();
        }
        Run {
            code: status.code(),
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
        }
    }
}

impl Drop for Running {
    /// A test that fails while the xtask runs leaves nothing running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A finished xtask run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `cmd` to its end (a hang fails the test after [`HANG`]).
    pub fn of(cmd: Command) -> Run {
        Running::spawn(cmd).finish()
    }

    /// Runs the xtask `cmd` describes ([`HostCopy::xtask`] and what a test added to it) in this
    /// process instead: the same arguments, folder and environment, with no terminal, and the
    /// loopback API its endpoint names as the cloud, reached through the tool's `Compute`
    /// seam rather than gcloud. A run that hangs fails the test after [`HANG`].
    pub fn in_process(cmd: Command) -> Run {
        let started = InProcess::start(cmd);
        started.finish()
    }

    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "xtask failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts a failure with exit status `code` (the manual's table: 3 stopped before any
    /// work, 4 a failed build, 5 a failed verification) and returns it; stderr must contain
    /// every part of `wanted`.
    pub fn exits_with(self, code: i32, wanted: &[&str]) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "xtask should have exited with {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self.fails_with(wanted)
    }

    /// Asserts the end of a dry run that lists what would stop the real run: exit status 3,
    /// as the real run's refusal, and the error saying so.
    pub fn stops(self) -> Run {
        self.exits_with(3, &["would stop"])
    }

    /// Asserts a failure and returns it; its error line must contain every part of `wanted`.
    pub fn fails_with(self, wanted: &[&str]) -> Run {
        assert_ne!(
            self.code,
            Some(0),
            "xtask should have failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        for part in wanted {
            assert!(
                self.stderr.contains(part),
                "stderr lacks {part:?}\n--- stderr\n{}",
                self.stderr
            );
        }
        self
    }
}

/// A stand-in packer (`packer-stand-in.sh`, next to this file): records each call (working folder
/// and arguments) in `packer-calls.log`, and for each build the launcher package it would upload
/// with its sha256 in `packer-launchers.log` and what build/ holds at upload time in
/// `packer-uploads.log`; keeps the variables file it was given in `last.pkrvars.hcl`, and writes a
/// manifest at the template's `build/manifest.json` (in the build's staging copy) the way packer
/// does, with an older run before the new one. The image it builds is
/// `det-environments-<wm>-ci-<1800000000 + builds of that wm before>`, and it "creates" it in the
/// loopback Compute API the way the template would: it writes the image (name, the labels of the
/// variables file's `image_labels` map, READY, creationTimestamp, the description naming the
/// launcher) into `compute-images/<name>.json`. `validate` keeps each variables file it checks as
/// `validated-<wm>.pkrvars.hcl`, and a build's environment goes to `packer-env.log`. `FAKE_PACKER`
/// picks a behaviour: `fail` (with `-on-error=abort`, naming the VM it kept in its log), `no-manifest`, `rendezvous` (each build waits until both workload
/// managers' builds have started, and fails if the other never does), `slow` (waits to be
/// interrupted, then cleans up for `FAKE_PACKER_CLEANUP_S` seconds, default 1, or until the file
/// `FAKE_PACKER_CLEANUP_UNTIL` names exists), `undefined` (validate warns of an undefined
/// variable), `finish-on-interrupt` (waits to be interrupted, then writes its manifest and exits 0:
/// packer finishing as the signal arrives), or `1.6.6` / `1.7.4` for an old version;
/// `FAKE_PACKER_SLURM` / `FAKE_PACKER_PBS` pick the build behaviour for one workload manager only
/// (`FAKE_PACKER_PBS=fail`). `FAKE_PACKER_DELAY` makes a build take that many seconds, printing ten
/// progress lines on the way, each written in two pieces; `FAKE_PACKER_PLUGINS=none` means no
/// plugin is installed until `packer init` runs. Builds append `<wm> start|end <time>` to
/// `packer-times.log`, their workload manager to `packer-started` and, after cleaning up, to
/// `packer-cleaned`, and write a line to `PACKER_LOG_PATH`. Like the googlecompute plugin, a build
/// says `Using image: NAME` (the `source_image` given, else the family's current one, or
/// `FAKE_PACKER_USING_IMAGE`), in its output and its log.
pub const STAND_IN_PACKER: &str = include_str!("packer-stand-in.sh");

/// Puts a packer first on PATH that runs the usual stand-in, then, after a build, runs
/// `then` with the manifest's path in `$manifest`.
pub fn packer_then(host: &HostCopy, then: &str) {
    host.stand_in("packer-stand-in", STAND_IN_PACKER);
    host.stand_in(
        "packer",
        &format!(
            r#"#!/usr/bin/env bash
"$(dirname "$0")/packer-stand-in" "$@" || exit $?
for arg in "$@"; do case "$arg" in -var-file=*) var_file="${{arg#-var-file=}}" ;; esac; done
[ "$1" = build ] || exit 0
manifest=$(sed -n 's/^manifest_path = "\(.*\)"$/\1/p' "$var_file")
manifest="${{manifest:-build/manifest.json}}"
{then}
"#
        ),
    );
}

/// The stand-in ansible-playbook every copy starts with ([`HostCopy::real_ansible_playbook`]
/// takes it away).
pub const STAND_IN_ANSIBLE_PLAYBOOK: &str = include_str!("ansible-playbook-stand-in.sh");

/// The git identity the tests' commits are made with (releases commit, and refuse without one).
pub const GIT_IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "Release Tester"),
    ("GIT_AUTHOR_EMAIL", "tester@example.com"),
    ("GIT_COMMITTER_NAME", "Release Tester"),
    ("GIT_COMMITTER_EMAIL", "tester@example.com"),
];

/// The files a test keeps at a host tree's root beside the repository's own, as git ignore
/// patterns: the stand-ins, gcloud's folder, the loopback API's images, the stand-ins' logs.
const TEST_FILES: &str =
    "/bin/\n/gcloud-config/\n/packer-*\n/last.pkrvars.hcl\n/plugins-installed\n\
     /compute-images/\n/validated-*\n/vms/\n";

/// Makes the copy a git repository with one commit of the host tree on `main`, ignoring, as the
/// real repository does, target/ (the tool's files) and build/, and the tests' stand-ins and
/// what they record.
pub fn commit_host_tree(host: &HostCopy) {
    host.write(".gitignore", format!("/target/\nbuild/\n{TEST_FILES}"));
    git(host, &["init", "-q", "-b", "main"]);
    git(host, &["add", "."]);
    git(host, &["commit", "-q", "-m", "The host tree"]);
}

/// Runs git in the host tree as the tests' user; its stdout without the trailing newline.
pub fn git(host: &HostCopy, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(host.root())
        .envs(GIT_IDENTITY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}
