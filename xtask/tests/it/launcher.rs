//! The launcher from Artifactory through the built xtask: `launcher` and `build` against a
//! loopback Artifactory, with no terminal.

use std::process::Command;

use crate::support::artifactory::{Faults, Server};
use crate::support::{HostCopy, Run, Running, STAND_IN_PACKER};

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
    host.stand_in("packer", crate::support::STAND_IN_PACKER);
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
    Run::in_process(xtask(host, server, args))
}

/// The line of stderr that tells why the xtask failed.
fn error_line(run: &Run) -> &str {
    run.stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in\n{}", run.stderr))
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
    // The storage API is asked first; the HTML page only when it gives no listing.
    let requests = server.requests();
    assert!(
        requests[0].path.starts_with("/artifactory/api/storage/"),
        "{requests:?}"
    );

    put_local(&host, OLD);
    let run = self::run(&host, &server, &["launcher"]).ok();
    assert!(run.stdout.contains("local: 3.9.0-0"), "{}", run.stdout);
    assert!(run.stdout.contains("newest release: 3.10.1-12"));
}

#[test]
fn launcher_fetch_downloads_the_newest_verified() {
    let (host, server) = (host(), server());
    let run = run(&host, &server, &["launcher", "--fetch"]).ok();
    // The package alone: no partial file is left beside it.
    assert_eq!(build_files(&host), [NEW]);
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
        "hpe-hpc-launcher_99.0.0-6_amd64.deb/../../x",
        // Not hostile, but not releases either: a pre-release, a checksum file, another tool.
        "hpe-hpc-launcher_99.0.0-7.dev1_amd64.deb",
        "hpe-hpc-launcher_99.0.0-8_amd64.deb.sha256",
        "other-tool_99.0.0-9_amd64.deb",
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
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p == "/artifactory/launchers/hpc/"),
        "the folder's page was not read: {paths:?}"
    );
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
    let sha = crate::support::artifactory::sha256_hex(&new_bytes());
    assert_eq!(host.packer_launchers(), [format!("{NEW} {sha}")]);
}

#[test]
fn build_without_a_terminal_keeps_an_older_local_one_and_says_how_to_take_the_new() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    // With no terminal nothing waits for an answer: the run ends (Run fails one that hangs).
    let run = run(&host, &server, &["build"]).ok();
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
    let mut cmd = xtask(&host, &server, &["build"]);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", closed_port_url());
    Run::in_process(cmd).fails_with(&[
        "cannot reach",
        "VPN",
        "tools/slurm/packer/build",
        "--launcher PATH",
    ]);
    assert!(host.packer_launchers().is_empty());

    let mut cmd = xtask(&host, &server, &["launcher"]);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", closed_port_url());
    Run::in_process(cmd).fails_with(&[
        "cannot reach",
        "VPN",
        "copy a release package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) into tools/slurm/packer/build",
    ]);
}

#[test]
fn an_unknown_host_counts_as_unreachable() {
    let (host, server) = (host(), server());
    let mut cmd = xtask(&host, &server, &["launcher"]);
    // `.invalid` never resolves (RFC 2606), so this needs no network; no proxy may answer
    // for it instead.
    cmd.env(
        "SLURM_IMAGE_ARTIFACTORY_URL",
        "https://arti.invalid/artifactory/launchers/hpc/",
    );
    for proxy in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(proxy);
    }
    Run::in_process(cmd).fails_with(&["cannot reach https://arti.invalid/", "VPN"]);
}

#[test]
fn launcher_off_the_vpn_with_a_local_one_says_builds_use_it() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    let off_vpn = |args: &[&str]| {
        let mut cmd = xtask(&host, &server, args);
        cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", closed_port_url());
        Run::in_process(cmd)
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
    let run = Run::in_process(cmd).ok();
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
    let run = run(&host, &server, &["build"]).fails_with(&["is damaged", "sha256"]);
    assert_eq!(server.downloads_of(NEW), 1, "a mismatch is not retried");
    // Each layer adds what it alone knows: why, which package, what went wrong.
    assert!(
        error_line(&run).starts_with(&format!(
            "error: fetching the newest launcher release: downloading {NEW}: the file is damaged: its sha256 is "
        )),
        "{}",
        run.stderr
    );
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
    run(&host, &server, &["build"]).fails_with(&["offers no sha256", "--launcher PATH"]);
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
    // The cause's last words are the HTTP client's.
    assert!(
        error_line(&run).starts_with(&format!(
            "error: fetching the newest launcher release: downloading {NEW} failed 4 times; the last cause: \
             stopped after 350000 bytes: "
        )),
        "{}",
        run.stderr
    );
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

    // The download itself: three 500s, then the package.
    let (host, server) = (self::host(), self::server());
    server.set_faults(Faults {
        fail_downloads: 3,
        ..Faults::default()
    });
    let run = self::run(&host, &server, &["launcher", "--fetch"]).ok();
    assert!(
        run.stderr.contains("HTTP 500") && run.stderr.contains("trying again"),
        "{}",
        run.stderr
    );
    assert_eq!(server.downloads_of(NEW), 4);
    assert_eq!(build_files(&host), [NEW]);
}

#[test]
fn a_server_that_stops_answering_fails_the_download() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        stall: true,
        ..Faults::default()
    });
    run(&host, &server, &["launcher", "--fetch"]).fails_with(&["sent nothing for 1 s"]);
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
    let run = run(&host, &server, &["build"]).fails_with(&[
        "401",
        "ARTIFACTORY_TOKEN",
        "ARTIFACTORY_USER",
    ]);
    // Refused is not unreachable: nothing sends the user to the VPN.
    assert!(!run.stderr.contains("VPN"), "{}", run.stderr);

    let mut cmd = xtask(&host, &server, &["build"]);
    cmd.env("ARTIFACTORY_TOKEN", "wrong-t0ken-value");
    let run = Run::in_process(cmd).fails_with(&["refused the credentials", "ARTIFACTORY_TOKEN"]);
    assert!(!run.stderr.contains("wrong-t0ken-value") && !run.stdout.contains("wrong-t0ken-value"));

    let mut cmd = xtask(&host, &server, &["build"]);
    cmd.env("ARTIFACTORY_TOKEN", token);
    let run = Run::in_process(cmd).ok();
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
    // In a header only, never in a URL.
    assert!(server.requests().iter().all(|r| !r.path.contains(token)));

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
    let run = Run::in_process(cmd).ok();
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
    let run = Run::in_process(cmd).fails_with(&["credentials in the URL", "ARTIFACTORY_TOKEN"]);
    assert!(!run.stderr.contains("hunter2"));
}

#[test]
fn ctrl_c_during_the_download_leaves_no_partial_file() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        stall: true,
        ..Faults::default()
    });
    // The download's rate floor over its longest window (an hour), so that only Ctrl-C can
    // end this stalled download however slowly a busy machine gets to the signal.
    let config = "tools/slurm/packer/slurm-image.toml";
    let text = host.read(config).replace(
        "[artifactory]\n",
        "[artifactory]\ndownload_rate_window_s = 3600\n",
    );
    assert!(text.contains("download_rate_window_s = 3600"), "{text}");
    host.write(config, text);
    let mut cmd = xtask(&host, &server, &["launcher", "--fetch"]);
    // A stall timeout of an hour, far beyond the test's bound for a hang: an interruption that
    // waited for the blocked read to give up would fail the test.
    cmd.env("SLURM_IMAGE_STALL_TIMEOUT_S", "3600");
    let mut xtask = spawn(cmd);
    // The partial file appears once the first half of the body has arrived.
    xtask.wait_for("a partial file", |_| {
        build_files(&host).iter().any(|n| n.ends_with(".part"))
    });
    signal(&xtask, "INT");
    let run = xtask.finish();
    let stderr = &run.stderr;
    assert!(stderr.contains("interrupted by Ctrl-C"), "{stderr}");
    // 128 + SIGINT, as a shell reports a command Ctrl-C ended.
    assert_eq!(run.code, Some(130), "{stderr}");
    // The fetch made build/, so the tree is left as it was: without it.
    assert!(!host.build_dir().exists(), "{:?}", build_files(&host));
}

/// Starts `cmd` with its output collected, as the tests that signal the xtask need.
fn spawn(cmd: Command) -> Running {
    Running::spawn(cmd)
}

/// Waits until build/ holds a partial download with some bytes in it; returns its name.
fn wait_for_partial_bytes(host: &HostCopy, xtask: &mut Running) -> String {
    let mut found = None;
    xtask.wait_for("a partial file with bytes in it", |_| {
        let partial = build_files(host).into_iter().find(|n| n.ends_with(".part"));
        found = partial.filter(|name| {
            std::fs::metadata(host.build_dir().join(name)).is_ok_and(|m| m.len() > 0)
        });
        found.is_some()
    });
    found.unwrap()
}

fn signal(xtask: &Running, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &xtask.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_silent_artifactory_counts_as_unreachable_within_the_bound() {
    let server = server();
    server.set_faults(Faults {
        silent: true,
        ..Faults::default()
    });
    // A bound of 3 s (the default is 15 s): the bound is what the messages name.
    let xtask_bounded = |host: &HostCopy, args: &[&str]| {
        let mut cmd = xtask(host, &server, args);
        cmd.env("SLURM_IMAGE_STALL_TIMEOUT_S", "3");
        cmd
    };
    let (with_local, without, listing) = (host(), host(), host());
    put_local(&with_local, OLD);
    // The three wait at once, in-process, so the test waits for one bound, not three. It used
    // to wait 254 s and then fail; Run fails a run that hangs long before that.
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let threads: Vec<_> = [
            xtask_bounded(&with_local, &["build"]),
            xtask_bounded(&without, &["build"]),
            xtask_bounded(&listing, &["launcher"]),
        ]
        .into_iter()
        .map(|cmd| scope.spawn(move || Run::in_process(cmd)))
        .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let [built, failed, listed] = <[Run; 3]>::try_from(runs).ok().unwrap();
    let looking = format!("looking up releases at {}", server.folder_url());

    let built = built.ok();
    assert!(built.stderr.contains(&looking), "{}", built.stderr);
    assert!(
        built.stderr.contains("no answer within 3 s")
            && built
                .stderr
                .contains(&format!("building with the local {OLD}")),
        "{}",
        built.stderr
    );
    assert!(with_local.packer_launchers()[0].starts_with(&format!("{OLD} ")));

    let host_port = server.folder_url().split('/').nth(2).unwrap().to_string();
    // The server took the connection: it is slow, not out of reach behind the VPN.
    let failed = failed.fails_with(&[
        "answered, but too slowly",
        &host_port,
        "no answer within 3 s",
        "the VPN is not the cause",
    ]);
    assert!(failed.stderr.contains(&looking), "{}", failed.stderr);
    assert!(without.packer_launchers().is_empty());
    assert!(!without.build_dir().exists());

    listed.fails_with(&["answered, but too slowly", &host_port, &looking]);
    // One bounded request each: no retries of a silent server, no HTML page after it.
    assert_eq!(server.requests().len(), 3, "{:?}", server.requests());
}

#[test]
fn a_body_cut_short_counts_every_byte_that_arrived() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        cut_short: true,
        ..Faults::default()
    });
    // The server sends half of the 700,000 bytes: more than one 256 KiB buffer.
    let run = run(&host, &server, &["launcher", "--fetch"]).fails_with(&["failed 4 times"]);
    assert!(
        run.stderr.contains("stopped after 350000 bytes"),
        "{}",
        run.stderr
    );
}

#[test]
fn sighup_during_the_download_leaves_the_tree_as_it_was() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        stall: true,
        ..Faults::default()
    });
    let mut cmd = xtask(&host, &server, &["launcher", "--fetch"]);
    cmd.env("SLURM_IMAGE_STALL_TIMEOUT_S", "120");
    assert!(!host.build_dir().exists());
    let mut xtask = spawn(cmd);
    wait_for_partial_bytes(&host, &mut xtask);
    // A closed terminal or a dropped SSH session.
    signal(&xtask, "HUP");
    let run = xtask.finish();
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(129), "{stderr}");
    assert!(stderr.contains("interrupted by SIGHUP"), "{stderr}");
    // The fetch made build/, so it goes with the partial file.
    assert!(!host.build_dir().exists(), "{:?}", build_files(&host));
}

#[test]
fn a_partial_file_left_by_kill_9_is_removed_by_the_next_fetch() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    server.set_faults(Faults {
        stall: true,
        ..Faults::default()
    });
    let mut cmd = xtask(&host, &server, &["launcher", "--fetch", "--yes"]);
    cmd.env("SLURM_IMAGE_STALL_TIMEOUT_S", "120");
    let mut xtask = spawn(cmd);
    let partial = wait_for_partial_bytes(&host, &mut xtask);
    signal(&xtask, "KILL");
    xtask.finish();
    let left = std::fs::metadata(host.build_dir().join(&partial))
        .expect("kill -9 leaves the partial file")
        .len();

    server.set_faults(Faults::default());
    let run = run(&host, &server, &["launcher", "--fetch", "--yes"]).ok();
    let freed = format!("{:.1} KiB", left as f64 / 1024.0);
    assert!(
        run.stderr.contains(&format!(
            "removed a partial download left by an earlier run ({freed} freed)"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(build_files(&host), [NEW]);
}

/// A partial download named for process `pid`, `size` bytes long.
fn put_partial(host: &HostCopy, pid: u32, size: usize) -> std::path::PathBuf {
    let path = host.build_dir().join(format!(".{NEW}.{pid}.part"));
    std::fs::create_dir_all(host.build_dir()).unwrap();
    std::fs::write(&path, vec![7u8; size]).unwrap();
    path
}

/// The id of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn clean_removes_stale_partials_saying_so_and_never_a_running_download() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    put_partial(&host, dead_pid(), 3 * 1024 * 1024);
    // A download running now: in this (live) process, and one whose file is locked by a
    // live process although its name's process is gone (a process of another pid namespace).
    let running = std::fs::File::open(put_partial(&host, std::process::id(), 10)).unwrap();
    running.lock().unwrap();
    let locked = std::fs::File::open(put_partial(&host, dead_pid(), 20)).unwrap();
    locked.lock().unwrap();

    let run = host.run(&["clean"]).fails_with(&[
        "a launcher download is running in another process",
        "clean again",
    ]);
    assert!(
        run.stdout
            .contains("removed a partial download left by an earlier run (3.0 MiB freed)"),
        "{}",
        run.stdout
    );
    let partials: Vec<String> = build_files(&host)
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert_eq!(partials.len(), 2, "{partials:?}");
    assert!(launchers(&host).contains(&OLD.to_string()));

    // A fetch leaves them alone too.
    run_fetch_keeps(&host, &server, 2);

    drop((running, locked));
    for name in build_files(&host).iter().filter(|n| n.ends_with(".part")) {
        std::fs::remove_file(host.build_dir().join(name)).unwrap();
    }
    put_partial(&host, dead_pid(), 1024 * 1024);
    let run = host.run(&["clean"]).ok();
    assert!(
        run.stdout
            .contains("removed a partial download left by an earlier run (1.0 MiB freed)")
            && run.stdout.contains("removed tools/slurm/packer/build"),
        "{}",
        run.stdout
    );
    assert!(!host.build_dir().exists());
}

fn run_fetch_keeps(host: &HostCopy, server: &Server, partials: usize) {
    // Its own process: the partial "running in this process" is named with the test's pid,
    // which an in-process fetch would share.
    let run = Run::of(xtask(host, server, &["launcher", "--fetch", "--yes"])).ok();
    assert!(!run.stderr.contains("partial download"), "{}", run.stderr);
    let left = build_files(host)
        .into_iter()
        .filter(|n| n.ends_with(".part"))
        .count();
    assert_eq!(left, partials, "{:?}", build_files(host));
}

#[test]
fn settings_out_of_range_are_named_instead_of_overflowing() {
    let (host, server) = (host(), server());
    for var in ["SLURM_IMAGE_STALL_TIMEOUT_S", "SLURM_IMAGE_RETRY_DELAY_MS"] {
        let mut cmd = xtask(&host, &server, &["launcher"]);
        cmd.env(var, "18446744073709552");
        let run = Run::in_process(cmd).fails_with(&[
            &format!("{var}=\"18446744073709552\" is out of range"),
            "or unset it",
        ]);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    assert!(server.requests().is_empty());
}

#[test]
fn under_nohup_sighup_stays_ignored() {
    let (host, server) = (host(), server());
    server.set_faults(Faults {
        stall: true,
        ..Faults::default()
    });
    let inner = xtask(&host, &server, &["launcher", "--fetch"]);
    let mut cmd = Command::new("nohup");
    cmd.arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(host.root());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    // After the copied environment, which holds the helper's one-second stall timeout: with
    // that, four stalls end the download before a loaded machine lets the test see its bytes.
    cmd.env("SLURM_IMAGE_STALL_TIMEOUT_S", "120");
    let mut xtask = spawn(cmd);
    wait_for_partial_bytes(&host, &mut xtask);
    // The download goes on: whoever started it with nohup asked for that. The kernel says
    // whether SIGHUP is ignored, without waiting to see whether it ends the run.
    let status = std::fs::read_to_string(format!("/proc/{}/status", xtask.id())).unwrap();
    let ignored = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .unwrap();
    assert_ne!(
        ignored & (1 << (libc::SIGHUP - 1)),
        0,
        "SIGHUP is not ignored"
    );
    signal(&xtask, "HUP");
    // A SIGHUP that ended the run would make it exit 129 (or die by the signal) before the
    // Ctrl-C that follows.
    signal(&xtask, "INT");
    let run = xtask.finish();
    let stderr = &run.stderr;
    assert!(stderr.contains("interrupted by Ctrl-C"), "{stderr}");
    assert_eq!(run.code, Some(130), "{stderr}");
    assert!(!host.build_dir().exists(), "{:?}", build_files(&host));
}

/// The old README's own name for a launcher package, which the tool cannot read a version from.
const OLD_STYLE: &str = "hpe-hpc-launcher-3.3.1.deb";

/// Sets a file's modification time `seconds` after the epoch: which `.deb` is newest decides
/// whether a build may guess past one, and a test sets it rather than waiting for a clock.
fn modified_at(host: &HostCopy, name: &str, seconds: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(host.build_dir().join(name))
        .unwrap();
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
        .unwrap();
}

#[test]
fn a_lone_deb_the_tool_cannot_read_stops_the_build_before_any_lookup() {
    let (host, server) = (host(), server());
    put_local(&host, OLD_STYLE);
    run(&host, &server, &["build"]).fails_with(&[
        "tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a launcher package \
         (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) and it is the only package there: rename it to \
         hpe-hpc-launcher_3.3.1-REV_amd64.deb",
        "or pass the package to build with as --launcher PATH",
    ]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(host.packer_calls().iter().all(|c| !c.contains("| build")));
    assert_eq!(launchers(&host), [OLD_STYLE]);
}

#[test]
fn a_newer_deb_the_tool_cannot_read_is_a_stop_in_the_dry_run() {
    let (host, server) = (host(), server());
    put_local(&host, OLD);
    put_local(&host, OLD_STYLE);
    modified_at(&host, OLD, 100);
    modified_at(&host, OLD_STYLE, 200);
    let run = run(&host, &server, &["build", "--dry-run"]).stops();
    assert!(
        run.stdout.contains(
            "#   launcher: tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a launcher \
             package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) and no package there is newer, so it may be the \
             one meant"
        ) && run
            .stdout
            .contains("if it is not a launcher package, remove it (builds then use hpe-hpc-launcher_3.9.0-0_amd64.deb)"),
        "{}",
        run.stdout
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn an_older_deb_the_tool_cannot_read_is_named_and_the_build_goes_on() {
    let (host, server) = (host(), server());
    put_local(&host, NEW);
    put_local(&host, OLD_STYLE);
    modified_at(&host, OLD_STYLE, 100);
    modified_at(&host, NEW, 200);
    let run = run(&host, &server, &["build"]).ok();
    assert!(
        run.stderr.contains(
            "warning: tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a launcher package \
             (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb), so builds leave it alone: if it is one, rename it to \
             hpe-hpc-launcher_3.3.1-REV_amd64.deb"
        ),
        "{}",
        run.stderr
    );
    assert!(host.packer_launchers()[0].starts_with(&format!("{NEW} ")));
}

#[test]
fn launcher_shows_a_deb_it_cannot_read_and_that_builds_stop_at_it() {
    let (host, server) = (host(), server());
    put_local(&host, OLD_STYLE);
    let run = run(&host, &server, &["launcher"]).ok();
    for wanted in [
        "local: tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a launcher package \
         (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) and may be the one meant: builds stop until it is renamed to \
         hpe-hpc-launcher_3.3.1-REV_amd64.deb or removed",
        "builds stop: tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named",
    ] {
        assert!(run.stdout.contains(wanted), "{wanted}\n{}", run.stdout);
    }
}

#[test]
fn launcher_given_a_name_it_cannot_read_refuses_with_the_same_fix() {
    let (host, server) = (host(), server());
    let given = host.path("downloads/hpe-hpc-launcher-3.3.1-2.deb");
    std::fs::create_dir_all(given.parent().unwrap()).unwrap();
    std::fs::write(&given, "a launcher").unwrap();
    let given = given.to_string_lossy().into_owned();
    let run = run(&host, &server, &["build", "--launcher", &given]).fails_with(&[
        "the tool reads a launcher package's version from its name, hpe-hpc-launcher_X.Y.Z-REV_amd64.deb",
        "rename it to hpe-hpc-launcher_3.3.1-2_amd64.deb",
    ]);
    assert!(error_line(&run).contains(&given), "{}", run.stderr);
    assert!(launchers(&host).is_empty());
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn doctor_fails_on_a_deb_builds_stop_at_and_warns_of_one_they_leave_alone() {
    let (host, server) = (host(), server());
    put_local(&host, OLD_STYLE);
    let run = run(&host, &server, &["doctor"]);
    assert_ne!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "FAIL  launcher package: tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a \
             launcher package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb), and may be the package meant, so builds \
             stop at it; fix: if it is one, rename it to hpe-hpc-launcher_3.3.1-REV_amd64.deb"
        ),
        "{}",
        run.stdout
    );

    put_local(&host, NEW);
    modified_at(&host, OLD_STYLE, 100);
    modified_at(&host, NEW, 200);
    let run = self::run(&host, &server, &["doctor"]);
    assert!(
        run.stdout.contains(
            "warn  launcher package: tools/slurm/packer/build/hpe-hpc-launcher-3.3.1.deb is not named as a \
             launcher package (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb), so builds leave it alone; fix: if it is \
             one, rename it"
        ),
        "{}",
        run.stdout
    );
}

/// Puts a packer first on PATH that writes its whole environment to `packer-environment.log`,
/// then runs the usual stand-in.
fn record_packer_environment(host: &HostCopy) {
    host.stand_in("packer-stand-in", STAND_IN_PACKER);
    host.stand_in(
        "packer",
        "#!/usr/bin/env bash\nhere=\"$(dirname \"$0\")\"\nenv >> \"$here/../packer-environment.log\"\nexec \"$here/packer-stand-in\" \"$@\"\n",
    );
}

#[test]
fn the_artifactory_credentials_never_reach_packer() {
    let host = HostCopy::with_launcher();
    record_packer_environment(&host);
    host.run_env(
        &["build", "--offline"],
        &[
            ("ARTIFACTORY_TOKEN", "secret-token-1"),
            ("ARTIFACTORY_USER", "secret-user-2"),
            ("ARTIFACTORY_PASSWORD", "secret-password-3"),
        ],
    )
    .ok();
    let environment = host.read("packer-environment.log");
    // The recording ran for version, plugins and build at least.
    assert!(environment.matches("PATH=").count() >= 3, "{environment}");
    for secret in [
        "ARTIFACTORY_",
        "secret-token-1",
        "secret-user-2",
        "secret-password-3",
    ] {
        assert!(
            !environment.contains(secret),
            "packer got {secret}:\n{environment}"
        );
    }
}

/// The xtask pointed at the loopback Artifactory `server`, with retries made quick.
fn with_artifactory(host: &HostCopy, server: &Server, args: &[&str]) -> std::process::Command {
    let mut cmd = host.xtask(args);
    cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", server.folder_url())
        .env("SLURM_IMAGE_RETRY_DELAY_MS", "10")
        .env("SLURM_IMAGE_STALL_TIMEOUT_S", "5")
        .env("NO_PROXY", "127.0.0.1,127.0.0.2");
    cmd
}

#[test]
fn a_redirect_to_another_host_cannot_vouch_for_the_package_it_serves() {
    let server = Server::start();
    server.add(NEW, b"the real launcher".to_vec());
    // Another host serves other bytes under the name, with a header that matches them.
    let other = Server::start_on("127.0.0.2");
    other.add(NEW, b"EVIL\n".to_vec());
    server.set_faults(Faults {
        redirect_downloads_to: Some(other.folder_url()),
        ..Faults::default()
    });
    let host = HostCopy::new();
    let mut cmd = with_artifactory(&host, &server, &["launcher", "--fetch", "--yes"]);
    cmd.env("ARTIFACTORY_TOKEN", "t0k");
    let run = Run::in_process(cmd).fails_with(&[
        &format!(
            "note: {} redirects to another host, {}",
            server.url_of(NEW),
            other.url_of(NEW)
        ),
        "the file is damaged",
    ]);
    assert!(!run.stdout.contains("verified"), "{}", run.stdout);
    assert_eq!(build_files(&host), Vec::<String>::new(), "{}", run.stderr);
    // The credentials went to the configured server only.
    let sent = other.requests();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|r| r.authorization.is_none()), "{sent:?}");
    assert!(server
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer t0k")));
}

/// A host copy whose config sets the download's rate floor window to one second.
fn host_with_a_short_rate_window() -> HostCopy {
    let host = HostCopy::new();
    let config = "tools/slurm/packer/slurm-image.toml";
    let text = host.read(config).replace(
        "[artifactory]\n",
        "[artifactory]\ndownload_rate_window_s = 1\n",
    );
    host.write(config, text);
    host
}

#[test]
fn a_server_dripping_bytes_is_given_up_below_the_rate_floor() {
    let server = Server::start();
    server.add(NEW, vec![7u8; 4000]);
    server.set_faults(Faults {
        drip_ms: Some(5),
        ..Faults::default()
    });
    let host = host_with_a_short_rate_window();
    let run = Run::in_process(with_artifactory(
        &host,
        &server,
        &["launcher", "--fetch", "--yes"],
    ));
    run.fails_with(&[
        "in the last 1 s, below the floor of 64 KiB/s (artifactory.min_download_rate_kib_s",
        "the partial file removed",
    ]);
    assert_eq!(build_files(&host), Vec::<String>::new());
}

#[test]
fn bytes_beyond_the_listed_size_are_refused() {
    let server = Server::start();
    server.add(NEW, b"the real launcher".to_vec());
    server.set_faults(Faults {
        too_long_by: 1024 * 1024,
        ..Faults::default()
    });
    let host = HostCopy::new();
    let run = Run::in_process(with_artifactory(
        &host,
        &server,
        &["launcher", "--fetch", "--yes"],
    ));
    run.fails_with(&[&format!(
        "the server sent more than the 17 bytes it listed for {NEW}: the rest was refused and nothing was kept"
    )]);
    assert_eq!(build_files(&host), Vec::<String>::new());
}

#[test]
fn a_slow_artifactory_is_called_slow_not_off_the_vpn() {
    let server = crate::support::artifactory::Server::start();
    server.set_faults(crate::support::artifactory::Faults {
        silent: true,
        ..crate::support::artifactory::Faults::default()
    });
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    let slow = |args: &[&str]| {
        let mut cmd = host.xtask(args);
        cmd.env("SLURM_IMAGE_ARTIFACTORY_URL", server.folder_url())
            .env("SLURM_IMAGE_STALL_TIMEOUT_S", "1")
            .env("NO_PROXY", "127.0.0.1");
        Run::in_process(cmd)
    };
    let listed = slow(&["launcher"]).fails_with(&[
        "answered, but too slowly (no answer within 1 s)",
        "Artifactory is reachable but answered too slowly (so the VPN is not the cause); retry later",
    ]);
    assert!(
        !listed.stderr.contains("reachable only on the company VPN"),
        "{}",
        listed.stderr
    );

    let doctor = slow(&["doctor"]);
    let line = doctor
        .stdout
        .lines()
        .find(|line| line.contains(" artifactory: "))
        .unwrap_or_else(|| panic!("no artifactory line\n{}", doctor.stdout));
    assert!(
        line.contains("answered, but too slowly")
            && line.contains("fix: retry later")
            && !line.contains("connect to the company VPN"),
        "{line}"
    );
}
