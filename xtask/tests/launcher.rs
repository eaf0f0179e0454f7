//! The launcher from Artifactory through the built xtask: `launcher` and `build` against a
//! loopback Artifactory, with no terminal.

#[path = "support/artifactory.rs"]
mod artifactory;
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use artifactory::{Faults, Server};
use support::{HostCopy, Run};

const OLD: &str = "hpe-hpc-launcher_3.9.0-0_amd64.deb";
const NEW: &str = "hpe-hpc-launcher_3.10.1-12_amd64.deb";

fn new_bytes() -> Vec<u8> {
    (0..700_000u32).map(|i| (i % 253) as u8).collect()
}

/// A server holding an old and a new release, among things that are not releases.
fn server() -> Server {
    let server = Server::start();
    server.add(OLD, b"old launcher".to_vec());
    server.add(NEW, new_bytes());
    server.add(
        "hpe-hpc-launcher_3.11.0-1.dev4_amd64.deb",
        b"pre-release".to_vec(),
    );
    server.add("other-package_9.0.0-0_amd64.deb", b"other".to_vec());
    server.list_only("hpe-hpc-launcher_3.10.1-12_amd64.deb.sha256");
    server
}

fn host() -> HostCopy {
    let host = HostCopy::new();
    host.stand_in("packer", support::STAND_IN_PACKER);
    host
}

/// The xtask pointed at `server`, with retries made quick.
fn xtask(host: &HostCopy, server: &Server, args: &[&str]) -> Command {
    let mut cmd = host.xtask(args);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", server.folder_url())
        .env("SLURM_IMAGE_RETRY_DELAY_MS", "10")
        .env("SLURM_IMAGE_STALL_TIMEOUT_S", "1")
        .env("NO_PROXY", "127.0.0.1");
    cmd
}

fn run(host: &HostCopy, server: &Server, args: &[&str]) -> Run {
    Run::of(xtask(host, server, args))
}

/// The files in build/, sorted.
fn build_files(host: &HostCopy) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(host.build_dir())
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn launchers(host: &HostCopy) -> Vec<String> {
    build_files(host)
        .into_iter()
        .filter(|n| n.contains("launcher"))
        .collect()
}

fn put_local(host: &HostCopy, name: &str) {
    host.write(
        &format!("tools/slurm/packer/build/{name}"),
        format!("local {name}"),
    );
}

#[test]
fn launcher_shows_local_packages_and_the_newest_release() {
    let (host, server) = (host(), server());
    let run = run(&host, &server, &["launcher"]).ok();
    assert!(run.stdout.contains("no launcher package"), "{}", run.stdout);
    assert!(
        run.stdout.contains("newest release: 3.10.1-12"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("--fetch"), "{}", run.stdout);
    assert!(launchers(&host).is_empty());
    assert_eq!(server.downloads_of(NEW), 0);

    put_local(&host, OLD);
    let run = self::run(&host, &server, &["launcher"]).ok();
    assert!(run.stdout.contains("local: 3.9.0-0"), "{}", run.stdout);
    assert!(run.stdout.contains("newest release: 3.10.1-12"));
}

#[test]
fn launcher_fetch_downloads_the_newest_verified() {
    let (host, server) = (host(), server());
    let run = run(&host, &server, &["launcher", "--fetch"]).ok();
    assert_eq!(launchers(&host), [NEW]);
    assert_eq!(
        std::fs::read(host.build_dir().join(NEW)).unwrap(),
        new_bytes()
    );
    // Without a terminal: a line at the start and one at the end, no bar.
    assert!(
        run.stderr.contains("downloading 683.6 KiB"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("sha256 verified"), "{}", run.stderr);
    assert!(!run.stderr.contains('\r'), "{}", run.stderr);

    let run = self::run(&host, &server, &["launcher", "--fetch"]).ok();
    assert!(run.stdout.contains("already holds"), "{}", run.stdout);
    assert_eq!(server.downloads_of(NEW), 1);
}

#[test]
fn launcher_fetch_replaces_an_older_one_only_with_yes_when_no_one_can_answer() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    run(&host, &server, &["launcher", "--fetch"]).fails_with(&["--yes", OLD, NEW]);
    assert_eq!(launchers(&host), [OLD]);
    assert_eq!(server.downloads_of(NEW), 0);

    run(&host, &server, &["launcher", "--fetch", "--yes"]).ok();
    assert_eq!(launchers(&host), [NEW]);
}

#[test]
fn a_hostile_listing_never_writes_outside_build() {
    let (host, server) = (host(), server());
    for name in [
        "../hpe-hpc-launcher_99.0.0-0_amd64.deb",
        "../../../../hpe-hpc-launcher_99.0.0-1_amd64.deb",
        "..\\hpe-hpc-launcher_99.0.0-2_amd64.deb",
        "sub/hpe-hpc-launcher_99.0.0-3_amd64.deb",
        "/etc/hpe-hpc-launcher_99.0.0-4_amd64.deb",
        "hpe-hpc-launcher_99.0.0-5_amd64.deb/..",
    ] {
        server.list_only(name);
    }
    for listing in [
        Faults::default(),
        Faults {
            no_storage_api: true,
            ..Faults::default()
        },
    ] {
        server.set_faults(listing);
        let run = run(&host, &server, &["launcher", "--fetch", "--yes"]).ok();
        assert!(
            run.stdout.contains("newest release: 3.10.1-12"),
            "{}",
            run.stdout
        );
        assert_eq!(launchers(&host), [NEW]);
    }
    let stray: Vec<_> = walk(host.root())
        .into_iter()
        .filter(|p| p.contains("99.0.0"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert!(server.requests().iter().all(|r| !r.path.contains("99.0.0")));
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        }
        found.push(path.display().to_string());
    }
    found
}

#[test]
fn the_html_page_serves_when_the_storage_api_does_not() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        no_storage_api: true,
        ..Faults::default()
    });
    let run = run(&host, &server, &["launcher", "--fetch"]).ok();
    assert!(
        run.stdout.contains("newest release: 3.10.1-12"),
        "{}",
        run.stdout
    );
    assert_eq!(launchers(&host), [NEW]);
    // A note, not a fault to fix: nothing in it points at the config.
    assert!(
        run.stderr.contains(
            "note: no storage API listing of the folder; reading the folder's HTML page instead"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("artifactory.url"), "{}", run.stderr);
}

#[test]
fn build_fetches_the_newest_when_build_holds_none() {
    let (host, server) = (host(), server());
    let run = run(&host, &server, &["build"]).ok();
    assert!(
        run.stdout.contains("det-environments-slurm-ci-1800000000"),
        "{}",
        run.stdout
    );
    assert_eq!(launchers(&host), [NEW]);
    let sha = artifactory::sha256_hex(&new_bytes());
    assert_eq!(host.packer_launchers(), [format!("{NEW} {sha}")]);
}

#[test]
fn build_without_a_terminal_keeps_an_older_local_one_and_says_how_to_take_the_new() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    let started = Instant::now();
    let run = run(&host, &server, &["build"]).ok();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(run.stderr.contains(NEW), "{}", run.stderr);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(launchers(&host), [OLD]);
    assert_eq!(server.downloads_of(NEW), 0);
    assert!(host.packer_launchers()[0].starts_with(&format!("{OLD} ")));
}

#[test]
fn build_with_yes_replaces_an_older_local_one() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    let run = run(&host, &server, &["build", "--yes"]).ok();
    assert!(run.stderr.contains("removed the older"), "{}", run.stderr);
    assert_eq!(launchers(&host), [NEW]);
    assert!(host.packer_launchers()[0].starts_with(&format!("{NEW} ")));
}

#[test]
fn build_uses_a_local_one_that_is_the_newest_or_newer() {
    let (host, server) = (host(), server());
    put_local(&host, NEW);
    let run = run(&host, &server, &["build"]).ok();
    assert!(run.stderr.contains("the newest release"), "{}", run.stderr);
    assert_eq!(server.downloads_of(NEW), 0);

    let (host, newer) = (self::host(), "hpe-hpc-launcher_4.0.0-0_amd64.deb");
    put_local(&host, newer);
    let run = self::run(&host, &server, &["build"]).ok();
    assert!(
        run.stderr.contains("newer than the newest release"),
        "{}",
        run.stderr
    );
    assert_eq!(launchers(&host), [newer]);
}

#[test]
fn build_dry_run_decides_but_downloads_nothing() {
    let (host, server) = (host(), server());
    let run = run(&host, &server, &["build", "--dry-run"]).ok();
    assert!(run.stderr.contains("would fetch"), "{}", run.stderr);
    assert!(run.stdout.contains(NEW), "{}", run.stdout);
    assert_eq!(server.downloads_of(NEW), 0);
    assert!(launchers(&host).is_empty());

    put_local(&host, OLD);
    let run = self::run(&host, &server, &["build", "--dry-run", "--yes"]).ok();
    assert!(run.stderr.contains("would replace"), "{}", run.stderr);
    assert_eq!(launchers(&host), [OLD]);
    assert_eq!(server.downloads_of(NEW), 0);
}

#[test]
fn build_offline_never_asks_the_server() {
    let (host, server) = (host(), server());
    run(&host, &server, &["build", "--offline"]).fails_with(&["--offline", "--launcher PATH"]);
    put_local(&host, OLD);
    run(&host, &server, &["build", "--offline"]).ok();
    assert!(server.requests().is_empty());
}

/// A loopback port nobody listens on: refused at once, like a host off the VPN.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/artifactory/launchers/hpc/")
}

#[test]
fn unreachable_without_a_local_one_fails_fast_and_says_what_to_do() {
    let (host, server) = (host(), server());
    let started = Instant::now();
    let mut cmd = xtask(&host, &server, &["build"]);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", closed_port_url());
    Run::of(cmd).fails_with(&[
        "cannot reach",
        "VPN",
        "tools/slurm/packer/build",
        "--launcher PATH",
    ]);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(host.packer_launchers().is_empty());

    let mut cmd = xtask(&host, &server, &["launcher"]);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", closed_port_url());
    Run::of(cmd).fails_with(&[
        "cannot reach",
        "VPN",
        "copy a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) into tools/slurm/packer/build",
    ]);
}

#[test]
fn launcher_off_the_vpn_with_a_local_one_says_builds_use_it() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    let off_vpn = |args: &[&str]| {
        let mut cmd = xtask(&host, &server, args);
        cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", closed_port_url());
        Run::of(cmd)
    };

    // Listing: what is here is shown, and the gap is a warning.
    let run = off_vpn(&["launcher"]).ok();
    assert!(run.stdout.contains("local: 3.9.0-0"), "{}", run.stdout);
    assert!(
        run.stderr.contains("warning: ")
            && run.stderr.contains("cannot reach")
            && run
                .stderr
                .contains("the newest release could not be checked")
            && run
                .stderr
                .contains(&format!("builds use the {OLD} in tools/slurm/packer/build")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("copy a release package"),
        "{}",
        run.stderr
    );

    // Fetching: nothing was fetched, so it fails, still without suggesting a copy.
    let run = off_vpn(&["launcher", "--fetch"]).fails_with(&[
        "nothing fetched",
        "cannot reach",
        &format!("builds use the {OLD}"),
    ]);
    assert!(
        !run.stderr.contains("copy a release package"),
        "{}",
        run.stderr
    );
    assert_eq!(launchers(&host), [OLD]);

    // Two packages: a build would stop, and the warning says so.
    put_local(&host, NEW);
    let run = off_vpn(&["launcher"]).ok();
    assert!(
        run.stderr
            .contains("holds 2 packages, so builds stop until only one is left"),
        "{}",
        run.stderr
    );
}

#[test]
fn unreachable_with_a_local_one_warns_and_builds_with_it() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    let mut cmd = xtask(&host, &server, &["build"]);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", closed_port_url());
    let run = Run::of(cmd).ok();
    assert!(
        run.stderr.contains("warning: ") && run.stderr.contains("cannot reach"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("building with the local {OLD}")),
        "{}",
        run.stderr
    );
    assert!(host.packer_launchers()[0].starts_with(&format!("{OLD} ")));
}

#[test]
fn a_wrong_checksum_fails_the_build_before_packer_runs() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        wrong_checksum: true,
        ..Faults::default()
    });
    run(&host, &server, &["build"]).fails_with(&["is damaged", "sha256"]);
    assert!(host.packer_launchers().is_empty());
    assert!(launchers(&host).is_empty(), "{:?}", build_files(&host));
    assert!(build_files(&host).iter().all(|n| !n.ends_with(".part")));
}

#[test]
fn no_checksum_from_the_server_fails_the_build() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        no_checksum: true,
        ..Faults::default()
    });
    run(&host, &server, &["build"]).fails_with(&["no sha256", "--launcher PATH"]);
    assert!(host.packer_launchers().is_empty());
    assert!(build_files(&host).is_empty(), "{:?}", build_files(&host));

    // The storage API's file info is enough when the header is missing.
    server.set_faults(Faults {
        no_checksum_header: true,
        ..Faults::default()
    });
    run(&host, &server, &["launcher", "--fetch"]).ok();
    assert_eq!(launchers(&host), [NEW]);
}

#[test]
fn a_body_cut_short_is_retried_then_fails_leaving_nothing() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        cut_short: true,
        ..Faults::default()
    });
    let run = run(&host, &server, &["launcher", "--fetch"]).fails_with(&["failed 4 times"]);
    assert!(run.stderr.contains("trying again"), "{}", run.stderr);
    assert_eq!(server.downloads_of(NEW), 4);
    assert!(build_files(&host).is_empty(), "{:?}", build_files(&host));
}

#[test]
fn server_errors_are_retried_until_the_server_recovers() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        fail_first: 3,
        ..Faults::default()
    });
    let run = run(&host, &server, &["build"]).ok();
    assert!(run.stderr.contains("HTTP 500"), "{}", run.stderr);
    assert_eq!(launchers(&host), [NEW]);
    assert_eq!(host.packer_launchers().len(), 1);
}

#[test]
fn a_server_that_stops_answering_fails_the_download() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        stall: true,
        ..Faults::default()
    });
    let started = Instant::now();
    run(&host, &server, &["launcher", "--fetch"]).fails_with(&["sent nothing for 1 s"]);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(build_files(&host).is_empty(), "{:?}", build_files(&host));
}

#[test]
fn credentials_are_required_sent_and_never_shown() {
    let (host, server) = (host(), server());
    let token = "s3cret-t0ken-value";
    server.set_faults(Faults {
        required_auth: Some(format!("Bearer {token}")),
        ..Faults::default()
    });
    run(&host, &server, &["build"]).fails_with(&["401", "ARTIFACTORY_TOKEN", "ARTIFACTORY_USER"]);

    let mut cmd = xtask(&host, &server, &["build"]);
    cmd.env("ARTIFACTORY_TOKEN", "wrong-t0ken-value");
    let run = Run::of(cmd).fails_with(&["refused the credentials", "ARTIFACTORY_TOKEN"]);
    assert!(!run.stderr.contains("wrong-t0ken-value") && !run.stdout.contains("wrong-t0ken-value"));

    let mut cmd = xtask(&host, &server, &["build"]);
    cmd.env("ARTIFACTORY_TOKEN", token);
    let run = Run::of(cmd).ok();
    assert!(!run.stderr.contains(token) && !run.stdout.contains(token));
    assert_eq!(launchers(&host), [NEW]);
    let downloads: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(NEW))
        .collect();
    assert!(downloads
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&*format!("Bearer {token}"))));

    // Basic auth: user and password.
    let (host, server) = (self::host(), self::server());
    server.set_faults(Faults {
        // "user:pa55word" in base64.
        required_auth: Some("Basic dXNlcjpwYTU1d29yZA==".into()),
        ..Faults::default()
    });
    let mut cmd = xtask(&host, &server, &["launcher", "--fetch"]);
    cmd.env("ARTIFACTORY_USER", "user")
        .env("ARTIFACTORY_PASSWORD", "pa55word");
    let run = Run::of(cmd).ok();
    assert!(!run.stderr.contains("pa55word"));
    assert_eq!(launchers(&host), [NEW]);
}

#[test]
fn credentials_in_the_url_are_refused_without_showing_them() {
    let (host, server) = (host(), server());
    let mut cmd = xtask(&host, &server, &["launcher"]);
    cmd.env(
        "SLURM_IMAGE_ARTIFACTORY_URL",
        "http://me:hunter2@127.0.0.1:9/artifactory/launchers/hpc/",
    );
    let run = Run::of(cmd).fails_with(&["credentials in the URL", "ARTIFACTORY_TOKEN"]);
    assert!(!run.stderr.contains("hunter2"));
}

#[test]
fn ctrl_c_during_the_download_leaves_no_partial_file() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        stall: true,
        ..Faults::default()
    });
    let mut cmd = xtask(&host, &server, &["launcher", "--fetch"]);
    // A long stall timeout: Ctrl-C must not wait for it.
    cmd.env("SLURM_IMAGE_STALL_TIMEOUT_S", "120")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // The partial file appears once the first half of the body has arrived.
    let started = Instant::now();
    while !build_files(&host).iter().any(|n| n.ends_with(".part")) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no partial file appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let interrupted = Instant::now();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted by Ctrl-C"), "{stderr}");
    // Far below the 120 s stall timeout: the blocked read did not hold up the interruption.
    assert!(
        interrupted.elapsed() < Duration::from_secs(20),
        "{:?}",
        interrupted.elapsed()
    );
    assert!(build_files(&host).is_empty(), "{:?}", build_files(&host));
}
