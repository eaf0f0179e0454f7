//! Signals and waits through the built xtask: every wait ends on a signal, one build per
//! workload manager at a time, packer asked to cancel exactly once however SIGINT comes, gcloud
//! ended with the tool, and `orphans` sparing the VMs of builds running on this machine.

use std::io::{BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, Stdio};
use std::time::{Duration, Instant};

use crate::support::SEED;
use crate::support::{read_until_line, HostCopy, InProcess, Run, STAND_IN_PACKER};

const PACKER: &str = "New instance created by Packer";

/// A packer whose `build` counts the signals it gets: each one a line in `packer-cancels`. It
/// runs until the test writes `packer-may-finish`, then ends as packer does, "cleanly
/// cancelled" if it was asked to. A second build while one runs fails at once, saying so.
/// Everything else goes to the usual stand-in.
const COUNTING_PACKER: &str = r#"#!/usr/bin/env bash
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "${1:-}" = build ] || exec "$root/bin/packer-usual" "$@"
echo "$(pwd) | $*" >> "$root/packer-calls.log"
if [ -e "$root/packer-started" ]; then
  echo "stand-in packer: a second build ran beside the first" >&2
  exit 1
fi
trap 'echo INT >> "$root/packer-cancels"' INT
trap 'echo TERM >> "$root/packer-cancels"' TERM
echo started > "$root/packer-started"
# Bounded, so that a test that fails early leaves nothing running for long.
for _ in $(seq 3000); do
  [ -e "$root/packer-may-finish" ] && break
  sleep 0.1
done
if [ -s "$root/packer-cancels" ]; then
  echo "Cleanly cancelled builds after being interrupted."
  echo cleaned > "$root/packer-cleaned"
fi
exit 1
"#;

fn host_with_counting_packer() -> HostCopy {
    let host = HostCopy::with_launcher();
    host.stand_in("packer-usual", STAND_IN_PACKER);
    host.stand_in("packer", COUNTING_PACKER);
    host
}

/// An xtask running in the background; on drop (a failed assert) it is killed and its packer
/// let go, so that nothing outlives the test.
struct Running {
    child: Child,
    stderr: BufReader<ChildStderr>,
    may_finish: std::path::PathBuf,
}

impl Running {
    /// Starts `cmd` with stderr piped; `own_group` puts it in a process group of its own, as a
    /// shell does with the job in the terminal's foreground, which Ctrl-C signals.
    /// Its stdout goes to `xtask-stdout` in the host copy.
    fn start(host: &HostCopy, mut cmd: std::process::Command, own_group: bool) -> Running {
        let stdout = std::fs::File::create(host.path("xtask-stdout")).unwrap();
        cmd.stdout(stdout).stderr(Stdio::piped());
        if own_group {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        Running {
            child,
            stderr,
            may_finish: host.path("packer-may-finish"),
        }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn read_until(&mut self, wanted: &str) -> String {
        read_until_line(&mut self.stderr, wanted)
    }

    /// Lets packer end, and waits for the xtask: its exit code and the rest of its stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        std::fs::write(&self.may_finish, "").unwrap();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        let code = self.child.wait().unwrap().code();
        (code, rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.may_finish, "");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kill(signal: &str, target: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {target}");
}

/// Waits for a file a stand-in writes; fails the test only if it never comes.
fn wait_for_file(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cancels(host: &HostCopy) -> Vec<String> {
    std::fs::read_to_string(host.path("packer-cancels"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

// The journeys run the built binary, whose own handlers take each signal: Ctrl-C at the
// terminal, SIGTERM, `kill -9`, a signal among gcloud calls. The scenarios where what matters
// is what the tool does with a signal run in-process and are delivered it, as `kill` of the
// tool alone would.

#[test]
fn sigint_sent_to_the_tool_alone_cancels_packer_once_and_ends_as_ctrl_c_does() {
    let host = host_with_counting_packer();
    // As a CI runner or a supervisor stops a job: `kill -INT <pid>`, not the process group.
    let build = InProcess::start(host.xtask(&["build", "--offline"]));
    build.wait_for("the stand-in packer to start", || {
        host.path("packer-started").exists()
    });
    build.deliver(libc::SIGINT);
    build.wait_for_stderr(
        "Ctrl-C (SIGINT) received: waiting for packer to cancel the build and delete its VM",
    );
    // A second one is answered, and not passed on: packer is busy deleting its VM.
    build.deliver(libc::SIGINT);
    build.wait_for_stderr("still waiting for packer to delete its VM");
    std::fs::write(host.path("packer-may-finish"), "").unwrap();
    let Run { code, stderr, .. } = build.finish();
    assert_eq!(cancels(&host), ["INT"], "{stderr}");
    assert!(host.path("packer-cleaned").exists(), "{stderr}");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("build interrupted by Ctrl-C"), "{stderr}");
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn ctrl_c_at_the_terminal_then_sigterm_still_cancels_packer_once() {
    let host = host_with_counting_packer();
    let mut build = Running::start(&host, host.xtask(&["build", "--offline"]), true);
    wait_for_file(&host.path("packer-started"));
    // Ctrl-C: the terminal signals its foreground process group.
    kill("INT", &format!("-{}", build.pid()));
    let mut seen = build.read_until("Ctrl-C (SIGINT) received: waiting for packer");
    // Then an impatient `kill` of the tool: packer has its cancel already.
    kill("TERM", &build.pid());
    seen += &build.read_until("still waiting for packer to delete its VM");
    let (code, rest) = build.finish();
    let stderr = seen + &rest;
    assert_eq!(cancels(&host), ["INT"], "{stderr}");
    assert!(matches!(code, Some(130 | 143)), "{code:?}\n{stderr}");
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn a_second_build_of_the_same_workload_manager_is_refused_naming_the_running_one() {
    let host = host_with_counting_packer();
    // Both in this process: the build lock is a lock of the file, which the first run's
    // descriptor holds and the second's cannot take.
    let first = InProcess::start(host.xtask(&["build", "--offline"]));
    first.wait_for("the stand-in packer to start", || {
        host.path("packer-started").exists()
    });
    let run = host.run(&["build", "--offline"]).fails_with(&[
        "a slurm build is already running on this machine (build, pid ",
        "one build per workload manager at a time",
    ]);
    assert!(
        run.stderr
            .contains(&format!("pid {}, started 20", std::process::id())),
        "{}",
        run.stderr
    );
    let builds = host
        .packer_calls()
        .iter()
        .filter(|call| call.contains("| build"))
        .count();
    assert_eq!(builds, 1, "the second build reached packer: {}", run.stderr);

    first.deliver(libc::SIGINT);
    first.wait_for_stderr("Ctrl-C (SIGINT) received");
    std::fs::write(host.path("packer-may-finish"), "").unwrap();
    let Run { code, stderr, .. } = first.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("Ctrl-C (SIGINT) received"), "{stderr}");
    // The lock went with the run: the next build is not refused (its packer then fails, as
    // the stand-in runs one build only).
    let run = host.run(&["build", "--offline"]);
    assert!(!run.stderr.contains("already running"), "{}", run.stderr);
}

#[test]
fn a_signal_while_waiting_to_pin_says_the_image_is_not_pinned_and_the_next_build_reuses_it() {
    let host = HostCopy::with_launcher();
    std::fs::create_dir_all(host.state_dir()).unwrap();
    // The test holds the lock, as a build writing images.conf at that moment would; the run
    // in this process takes it through a descriptor of its own, so it waits.
    let lock = std::fs::File::create(host.state_dir().join("images.conf.lock")).unwrap();
    lock.lock().unwrap();
    let build = InProcess::start(host.xtask(&["build", "--offline", "--wm", "pbs"]));
    build.wait_for_stderr(
        "waiting for another build to finish writing tools/slurm/terraform/images.conf",
    );
    build.deliver(libc::SIGTERM);
    let Run { code, stderr, .. } = build.finish();
    assert_eq!(code, Some(143), "{stderr}");
    for wanted in [
        "det-environments-pbs-ci-1800000000 is built but not pinned for pbs",
        "the next `cargo xtask slurm-image build --wm pbs` reuses it",
        "SIGTERM arrived while waiting for another build to finish writing tools/slurm/terraform/images.conf",
    ] {
        assert!(stderr.contains(wanted), "{wanted}\n{stderr}");
    }
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);

    // The word holds: once the lock is free, the next build reuses the image packer built.
    drop(lock);
    let run = host.run(&["build", "--offline", "--wm", "pbs"]).ok();
    assert!(
        run.stdout
            .contains("reusing det-environments-pbs-ci-1800000000"),
        "{}",
        run.stdout
    );
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1800000000\n"
    );
}

#[test]
fn after_kill_9_of_the_tool_its_packer_keeps_the_build_lock_and_a_rerun_names_that_packer() {
    let host = host_with_counting_packer();
    let mut first = Running::start(&host, host.xtask(&["build", "--offline"]), false);
    wait_for_file(&host.path("packer-started"));
    let note = host.state_dir().join("slurm-build.lock");
    let mut packer: Option<u32> = None;
    crate::support::wait_until(
        || {
            packer = std::fs::read_to_string(&note).ok().and_then(|n| {
                n.lines()
                    .find_map(|l| l.strip_prefix("packer: "))
                    .and_then(|p| p.trim().parse().ok())
            });
            packer.is_some()
        },
        || {
            format!(
                "the lock's note never named packer: {:?}",
                std::fs::read_to_string(&note)
            )
        },
    );
    let packer = packer.unwrap();
    // `kill -9`: the tool cannot pass anything on; packer runs on in its own group.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(is_alive(packer));
    let run = host.run(&["build", "--offline"]).fails_with(&[
        &format!("is gone, but its packer (pid {packer}) still runs and holds the lock"),
        &format!("`kill -INT {packer}`"),
    ]);
    let builds = host
        .packer_calls()
        .iter()
        .filter(|call| call.contains("| build"))
        .count();
    assert_eq!(builds, 1, "the rerun reached packer: {}", run.stderr);
    // Once that packer ends, the lock is free.
    std::fs::write(host.path("packer-may-finish"), "").unwrap();
    crate::support::wait_until(
        || !is_alive(packer),
        || format!("packer {packer} never ended"),
    );
    let run = host.run(&["build", "--offline"]);
    assert!(!run.stderr.contains("already running"), "{}", run.stderr);
}

/// Whether process `pid` runs: it exists and is not a zombie, dead and waiting to be reaped
/// (killed children of a tool that ended at once are reaped by init, in its own time).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, after) = stat.rsplit_once(')')?;
            after.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; the command may hold spaces and parentheses.
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(pid) {
            if let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                children.push(child);
            }
        }
    }
    children
}

#[test]
fn a_signal_during_gcloud_calls_ends_every_one_with_the_tool() {
    if crate::support::require_tool("gcloud").is_none() {
        return;
    }
    // `images` with a launcher package makes three calls side by side (the list, and each
    // source family for the fingerprints); a dry run one, and it notes a failed lookup and goes
    // on. SIGTERM to the tool alone, or Ctrl-C at the terminal, which reaches gcloud too: each
    // way the tool stops as interrupted, not as if gcloud had failed, and no gcloud outlives it.
    // As JSON, the last record is still the result, with the signal's exit status.
    for (args, calls, signal, group, name, code) in [
        (
            &["images", "--format", "json"][..],
            3,
            "TERM",
            false,
            "SIGTERM",
            143,
        ),
        (&["images"], 3, "INT", true, "Ctrl-C (SIGINT)", 130),
        (
            &["build", "--dry-run", "--offline"],
            1,
            "INT",
            true,
            "Ctrl-C (SIGINT)",
            130,
        ),
    ] {
        let host = HostCopy::with_launcher();
        host.api().silence();
        let mut cmd = host.xtask(args);
        // Left alone, gcloud would wait this long for the silent API.
        cmd.env("SLURM_IMAGE_GCLOUD_TIMEOUT_S", "600");
        let mut run = Running::start(&host, cmd, group);
        let mut stderr = run.read_until("gcloud: ");
        let started = Instant::now();
        let gcloud = loop {
            let children = children_of(run.child.id());
            if children.len() >= calls {
                break children;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{calls} gcloud calls never ran at once: {children:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let target = if group {
            format!("-{}", run.pid())
        } else {
            run.pid()
        };
        kill(signal, &target);
        let (exit, rest) = run.finish();
        stderr += &rest;
        let alive: Vec<u32> = gcloud.into_iter().filter(|&pid| is_alive(pid)).collect();
        for pid in &alive {
            kill("KILL", &pid.to_string());
        }
        assert!(
            alive.is_empty(),
            "{args:?}: gcloud outlived the tool: {alive:?}\n{stderr}"
        );
        assert_eq!(exit, Some(code), "{args:?}\n{stderr}");
        let error = stderr
            .lines()
            .find(|line| line.starts_with("error: "))
            .unwrap_or_else(|| panic!("{args:?}: no error line\n{stderr}"));
        assert!(
            error.starts_with("error: gcloud compute images ")
                && error.contains(&format!("stopped by {name}")),
            "{args:?}: {error}"
        );
        if args.contains(&"json") {
            let stdout = host.read("xtask-stdout");
            let last: serde_json::Value =
                serde_json::from_str(stdout.lines().last().unwrap_or_default())
                    .unwrap_or_else(|e| panic!("{e}: {stdout}"));
            assert_eq!(last["reason"], "result", "{stdout}");
            assert_eq!(last["exit_code"], code, "{stdout}");
            assert!(
                last["error"].as_str().unwrap_or_default().contains(name),
                "{stdout}"
            );
        }
    }
}

/// A host whose loopback Compute API has packer VMs of these names and ages in minutes.
fn host_with_vms(vms: &[(&str, i64)]) -> Option<HostCopy> {
    crate::support::require_tool("gcloud")?;
    let host = HostCopy::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (name, minutes) in vms {
        host.api()
            .add_instance("us-central1-c", name, now - minutes * 60, "RUNNING", PACKER);
    }
    Some(host)
}

#[test]
fn orphans_refuses_an_older_than_below_the_floor_unless_young_is_allowed() {
    let Some(host) = host_with_vms(&[("packer-young", 3)]) else {
        return;
    };
    host.run(&["orphans", "--older-than", "1m", "--delete", "--yes"])
        .fails_with(&["--older-than 1m is below 30m", "--allow-young"]);
    assert!(host.api().requests().is_empty(), "refused before any call");
    let run = host
        .run(&[
            "orphans",
            "--older-than",
            "1m",
            "--allow-young",
            "--delete",
            "--yes",
        ])
        .ok();
    assert_eq!(
        host.api().instance_deletions(),
        ["us-central1-c/packer-young"],
        "{}",
        run.stdout
    );
}

#[test]
fn orphans_keep_the_vm_of_a_build_running_on_this_machine() {
    let Some(host) = host_with_vms(&[("packer-old", 300), ("packer-mine", 60)]) else {
        return;
    };
    // The test holds the slurm build's lock, as a build started two hours ago would, with the
    // note such a build writes.
    std::fs::create_dir_all(host.state_dir()).unwrap();
    let mut lock = std::fs::File::create(host.state_dir().join("slurm-build.lock")).unwrap();
    lock.lock().unwrap();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 2 * 3600;
    std::io::Write::write_all(
        &mut lock,
        format!("pid: 4242\nstarted: {started} (two hours ago)\ncommand: build\n").as_bytes(),
    )
    .unwrap();
    let run = host
        .run(&["orphans", "--older-than", "30m", "--delete", "--yes"])
        .ok();
    assert_eq!(
        host.api().instance_deletions(),
        ["us-central1-c/packer-old"],
        "{}",
        run.stdout
    );
    let kept = run
        .stdout
        .lines()
        .find(|line| line.starts_with("kept packer-mine"))
        .unwrap_or_else(|| panic!("packer-mine is not said to be kept:\n{}", run.stdout));
    assert!(
        kept.contains(
            "created after the slurm build running on this machine started (build, pid 4242"
        ) && kept.contains("it may be that build's VM"),
        "{kept}"
    );
    drop(lock);
}

/// A packer that, for `build -debug`, notes whether it is in the terminal's foreground process
/// group, then reads one line from the terminal as `-debug` reads Enter.
const STEPPING_PACKER: &str = r#"#!/usr/bin/env bash
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "${1:-}" = build ] || exec "$root/bin/packer-usual" "$@"
ps -o pgid=,tpgid= -p $$ > "$root/packer-groups"
IFS= read -r line
echo "$line" > "$root/packer-read"
exit 1
"#;

#[test]
fn build_debug_at_a_terminal_lets_packer_read_enter() {
    let Some(_) = crate::support::require_tool("script") else {
        return;
    };
    let host = HostCopy::with_launcher();
    host.stand_in("packer-usual", STAND_IN_PACKER);
    host.stand_in("packer", STEPPING_PACKER);
    // `script` gives the xtask a terminal of its own, and types the line it reads on stdin. A
    // packer in a background process group would be stopped reading it: `timeout` ends that.
    let xtask = host.xtask(&["build", "--offline", "--debug"]);
    let line = std::iter::once(xtask.get_program())
        .chain(xtask.get_args())
        .map(|arg| format!("'{}'", arg.to_str().unwrap()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["120", "script", "-qec", &line, "/dev/null"])
        .current_dir(xtask.get_current_dir().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in xtask.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"step\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        std::fs::read_to_string(host.path("packer-read"))
            .ok()
            .as_deref(),
        Some("step\n"),
        "packer could not read the terminal:\n{shown}"
    );
    let groups = host.read("packer-groups");
    let (group, foreground) = groups.trim().split_once(char::is_whitespace).unwrap();
    assert_eq!(
        group,
        foreground.trim(),
        "packer is not in the foreground group"
    );
    assert!(shown.contains("packer build failed"), "{shown}");
}
