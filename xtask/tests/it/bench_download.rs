//! The launcher download against `curl -o f URL && sha256sum f`, from the same loopback server.
//! Run with `cargo test -p xtask --test it -- --ignored --nocapture bench_download::`; it reports,
//! it never asserts a timing.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::artifactory::Server;
use crate::support::HostCopy;

const NAME: &str = "hpe-hpc-launcher_3.10.1-12_amd64.deb";
const SIZE: usize = 256 * 1024 * 1024;
const ROUNDS: usize = 5;

/// The peak resident memory (`VmHWM`) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Runs the xtask to its end, polling its peak memory; the wall time and the last peak seen.
fn xtask_round(host: &HostCopy, server: &Server) -> (Duration, u64) {
    let _ = std::fs::remove_file(host.build_dir().join(NAME));
    let mut cmd = host.xtask(&["launcher", "--fetch", "--yes"]);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", server.folder_url())
        .env("NO_PROXY", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("starting the xtask");
    let mut peak = 0;
    // The tool's own lines are few (no terminal: a start and an end line), so the pipe never fills.
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("waiting for the xtask") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut stderr)
        .expect("reading the xtask's stderr");
    assert!(status.success(), "the xtask download failed:\n{stderr}");
    if std::env::var_os("BENCH_VERBOSE").is_some() {
        eprint!("{stderr}");
    }
    let got = std::fs::metadata(host.build_dir().join(NAME)).expect("the downloaded package");
    assert_eq!(got.len(), SIZE as u64);
    (elapsed, peak)
}

fn curl_round(server: &Server, dir: &std::path::Path) -> Duration {
    let file = dir.join("curl.deb");
    let _ = std::fs::remove_file(&file);
    let script = format!(
        "curl -s -o '{}' '{}' && sha256sum '{}' >/dev/null",
        file.display(),
        server.url_of(NAME),
        file.display()
    );
    let started = Instant::now();
    let status = Command::new("bash")
        .args(["-c", &script])
        .env("NO_PROXY", "127.0.0.1")
        .status()
        .expect("running curl");
    let elapsed = started.elapsed();
    assert!(status.success(), "curl or sha256sum failed");
    elapsed
}

fn summary(label: &str, times: &[Duration]) {
    let mut secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let rate = SIZE as f64 / 1024.0 / 1024.0 / median;
    println!(
        "{label:<28} median {median:.3} s  min {:.3} s  max {:.3} s  ({rate:.0} MiB/s at the median)",
        secs[0],
        secs[secs.len() - 1]
    );
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn launcher_download_against_curl_and_sha256sum() {
    if crate::support::require_tool("curl").is_none()
        || crate::support::require_tool("sha256sum").is_none()
    {
        return;
    }
    let server = Server::start();
    // Bytes that do not compress or repeat in a short period, generated quickly.
    let mut bytes = vec![0u8; SIZE];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for chunk in bytes.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    server.add(NAME, bytes);
    let host = HostCopy::new();
    let scratch = crate::support::temp_dir("bench-curl");

    // One untimed round of each warms the page cache and the binaries.
    xtask_round(&host, &server);
    curl_round(&server, scratch.path());
    let (mut xtask_times, mut curl_times, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (elapsed, peak) = xtask_round(&host, &server);
        xtask_times.push(elapsed);
        peaks.push(peak);
        curl_times.push(curl_round(&server, scratch.path()));
    }
    println!(
        "\nlauncher download, {} MiB from a loopback server, {ROUNDS} rounds each (after one warm-up):",
        SIZE / 1024 / 1024
    );
    summary("xtask launcher --fetch --yes", &xtask_times);
    summary("curl -o f && sha256sum f", &curl_times);
    let max_peak = peaks.iter().max().copied().unwrap_or(0);
    println!(
        "xtask peak RSS (VmHWM): max {:.1} MiB over the rounds ({:?} KiB)",
        max_peak as f64 / 1024.0,
        peaks
    );
}
