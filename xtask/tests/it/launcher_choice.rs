//! One launcher decision seen through every command: `build --dry-run`, `release --dry-run`,
//! `launcher` and `doctor` tell the same story of the same situation, and a dry run never makes
//! a launcher up or says a real build would stop where it would fetch.

use crate::support::artifactory::Server;
use crate::support::commit_host_tree;
use crate::support::{require_tool, HostCopy, Run, GIT_IDENTITY as IDENTITY};

const OLD: &str = "hpe-hpc-launcher_3.9.0-0_amd64.deb";
const NEW: &str = "hpe-hpc-launcher_3.10.1-12_amd64.deb";
const BRANCH: &str = "slurm-images-test";
/// What the old placeholder for an unknown launcher looked like.
const MADE_UP: &str = "0.0.0-0";

/// The identity of the release's commit, as git reads a user's from the environment.
/// A host tree as a git repository with one commit, a stand-in packer, and `local` in build/.
/// `None` (the test skips, saying so) without git.
fn repo(local: Option<&str>) -> Option<HostCopy> {
    require_tool("git")?;
    let host = HostCopy::new();
    host.stand_in("packer", crate::support::STAND_IN_PACKER);
    if let Some(name) = local {
        host.write(
            &format!("tools/slurm/packer/build/{name}"),
            b"local package",
        );
    }
    commit_host_tree(&host);
    Some(host)
}

/// The xtask with `args`, its Artifactory at `url`.
fn run(host: &HostCopy, url: &str, args: &[&str]) -> Run {
    let mut cmd = host.xtask(args);
    cmd.envs(IDENTITY)
        .env("SLURM_IMAGE_ARTIFACTORY_URL", url)
        .env("SLURM_IMAGE_RETRY_DELAY_MS", "10")
        .env("SLURM_IMAGE_STALL_TIMEOUT_S", "1")
        .env("NO_PROXY", "127.0.0.1");
    Run::in_process(cmd)
}

/// A loopback port nobody listens on: refused at once, like Artifactory off the VPN.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/artifactory/launchers/hpc/")
}

fn both(run: &Run) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", run.stdout, run.stderr)
}

/// The lines a dry run lists under what would stop a real run.
fn stops(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|line| !line.contains("would stop here"))
        .skip(1)
        .collect()
}

/// The four commands in one situation, each asserted to succeed or fail as a user would expect
/// (the release's dry run by each test: it exits 3 where it lists a stop).
struct Told {
    build: Run,
    release: Run,
    launcher: Run,
    doctor: Run,
}

impl Told {
    /// `release_stops`: whether the release's dry run lists a stop, and so exits 3.
    fn of(host: &HostCopy, url: &str, release_stops: bool) -> Told {
        let build = run(host, url, &["build", "--dry-run"]).ok();
        let release = run(host, url, &["release", "--dry-run", "--branch", BRANCH]);
        let release = if release_stops {
            release.stops()
        } else {
            release.ok()
        };
        let launcher = run(host, url, &["launcher"]);
        let doctor = run(host, url, &["doctor"]);
        Told {
            build,
            release,
            launcher,
            doctor,
        }
    }

    fn all(&self) -> [(&str, &Run); 4] {
        [
            ("build --dry-run", &self.build),
            ("release --dry-run", &self.release),
            ("launcher", &self.launcher),
            ("doctor", &self.doctor),
        ]
    }

    /// The newest release as `build --dry-run` words it, which every command must say alike.
    fn newest_line(&self) -> String {
        self.build
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix("launcher: the newest release: "))
            .map(|rest| format!("the newest release: {rest}"))
            .unwrap_or_else(|| panic!("no newest release line in\n{}", both(&self.build)))
    }

    /// Every command says `wanted`, and none says any of `never`.
    fn agree(&self, wanted: &str, never: &[&str]) {
        for (command, run) in self.all() {
            let text = both(run);
            assert!(text.contains(wanted), "{command} lacks {wanted:?}\n{text}");
            for word in never {
                assert!(!text.contains(word), "{command} says {word:?}\n{text}");
            }
        }
    }
}

#[test]
fn a_dry_run_off_the_vpn_shows_the_launcher_as_unknown() {
    let Some(host) = repo(None) else {
        return;
    };
    let url = closed_port_url();

    let build = run(&host, &url, &["build", "--dry-run"]).stops();
    let text = both(&build);
    assert!(!text.contains(MADE_UP), "{text}");
    for wanted in [
        "launcher: unknown",
        "launcher: the newest release: unknown, Artifactory is unreachable: ",
        "launcher_deb_name = <unknown: ",
        "# input fingerprint: unknown until the launcher is known",
    ] {
        assert!(build.stdout.contains(wanted), "{wanted}\n{text}");
    }
    // Off the VPN with nothing in build/, a real build does stop, and says how to go on.
    let stopped = stops(&build.stdout);
    assert!(
        stopped
            .iter()
            .any(|l| l.contains("launcher: ") && l.contains("cannot reach") && l.contains("VPN")),
        "{text}"
    );
    assert!(
        !stopped.iter().any(|l| l.contains("not in build/")),
        "{text}"
    );

    let release = run(&host, &url, &["release", "--dry-run", "--branch", BRANCH]).stops();
    let text = both(&release);
    assert!(!text.contains(MADE_UP), "{text}");
    for wanted in [
        "# launcher: unknown",
        "launcher_deb_name = <unknown: ",
        "Update the slurm and pbs test cluster images (launcher unknown)",
    ] {
        assert!(release.stdout.contains(wanted), "{wanted}\n{text}");
    }
    assert!(
        stops(&release.stdout)
            .iter()
            .any(|l| l.contains("a release tests the newest launcher release")),
        "{text}"
    );
}

#[test]
fn a_dry_run_that_would_fetch_the_launcher_does_not_say_the_build_would_stop() {
    let Some(host) = repo(None) else {
        return;
    };
    let server = Server::start();
    server.add(NEW, b"the newest launcher".to_vec());
    let build = run(&host, &server.folder_url(), &["build", "--dry-run"]).ok();
    let text = both(&build);
    for wanted in [
        &format!("launcher: {NEW} (a real build puts it in tools/slurm/packer/build first)"),
        &format!("launcher_deb_name = \"{NEW}\""),
        "# input fingerprint: unknown until the launcher is in build/",
        "# reuse: looked up once the launcher is in build/",
    ] {
        assert!(build.stdout.contains(wanted), "{wanted}\n{text}");
    }
    assert!(build.stderr.contains("would fetch"), "{text}");
    // What the fetch settles is not a reason a real build would stop.
    let stopped = stops(&build.stdout);
    assert!(
        !stopped.iter().any(|l| l.contains("launcher")
            || l.contains("input fingerprint")
            || l.contains("reuse")),
        "{text}"
    );
    assert!(!text.contains("not in build/"), "{text}");
    assert_eq!(server.downloads_of(NEW), 0);
}

#[test]
fn every_command_agrees_when_artifactory_is_unreachable() {
    let Some(host) = repo(Some(OLD)) else {
        return;
    };
    let url = closed_port_url();
    let told = Told::of(&host, &url, true);
    let newest = told.newest_line();
    assert!(
        newest.starts_with("the newest release: unknown, Artifactory is unreachable: ")
            && newest.contains(&format!(
                "cannot reach {}/",
                url.split("/artifactory").next().unwrap()
            )),
        "{newest}"
    );
    told.agree(&newest, &["no launcher release", MADE_UP]);
    // A build goes on with the package here; a release, which tests the newest, stops.
    assert!(
        told.build
            .stdout
            .contains(&format!("launcher_deb_name = \"{OLD}\"")),
        "{}",
        both(&told.build)
    );
    assert!(
        told.launcher.code == Some(0)
            && told
                .launcher
                .stderr
                .contains(&format!("builds use the {OLD}")),
        "{}",
        both(&told.launcher)
    );
    assert!(
        told.doctor
            .stdout
            .contains("builds use the launcher in build/ meanwhile"),
        "{}",
        both(&told.doctor)
    );
    assert_eq!(told.release.code, Some(3), "{}", both(&told.release));
    assert!(
        stops(&told.release.stdout)
            .iter()
            .any(|l| l.contains("a release tests the newest launcher release")),
        "{}",
        both(&told.release)
    );
}

#[test]
fn every_command_agrees_when_artifactory_holds_no_release() {
    let Some(host) = repo(Some(OLD)) else {
        return;
    };
    let server = Server::start();
    server.add("other-package_9.0.0-0_amd64.deb", b"other".to_vec());
    let told = Told::of(&host, &server.folder_url(), true);
    let newest = told.newest_line();
    assert_eq!(
        newest,
        format!(
            "the newest release: none, no launcher release (hpe-hpc-launcher_X.Y.Z-REV_amd64.deb) in {}",
            server.folder_url()
        )
    );
    told.agree(&newest, &["cannot reach", "VPN", MADE_UP]);
    assert!(
        told.build
            .stdout
            .contains(&format!("launcher_deb_name = \"{OLD}\"")),
        "{}",
        both(&told.build)
    );
    // Builds go on with the package here, so listing it is no failure.
    assert_eq!(told.launcher.code, Some(0), "{}", both(&told.launcher));
    assert!(
        told.launcher
            .stderr
            .contains(&format!("builds use the {OLD}")),
        "{}",
        both(&told.launcher)
    );
    assert_eq!(told.release.code, Some(3), "{}", both(&told.release));
    assert!(
        stops(&told.release.stdout)
            .iter()
            .any(|l| l.contains("a release tests the newest one")),
        "{}",
        both(&told.release)
    );
}

#[test]
fn every_command_agrees_when_build_holds_an_older_release() {
    let Some(host) = repo(Some(OLD)) else {
        return;
    };
    let server = Server::start();
    server.add(OLD, b"old".to_vec());
    server.add(NEW, b"new".to_vec());
    let told = Told::of(&host, &server.folder_url(), false);
    assert_eq!(told.newest_line(), "the newest release: 3.10.1-12");
    told.agree("the newest release: 3.10.1-12", &["cannot reach", MADE_UP]);
    // Without a terminal to ask on, a build keeps the older package; `launcher` and doctor
    // say so in the same words; a release fetches the newest in its place.
    let keeps = format!("builds keep the older {OLD} when no terminal can be asked");
    assert!(
        told.build
            .stdout
            .contains(&format!("launcher_deb_name = \"{OLD}\""))
            && told.build.stderr.contains(&format!(
                "the newer release {NEW} exists: no terminal to ask on"
            )),
        "{}",
        both(&told.build)
    );
    for run in [&told.launcher, &told.doctor] {
        assert!(run.stdout.contains(&keeps), "{}", both(run));
    }
    // Fetching the newest is what a release does, not a stop.
    assert_eq!(told.release.code, Some(0), "{}", both(&told.release));
    assert!(
        told.release.stdout.contains(&format!(
            "# launcher: {NEW} (the newest release, to be fetched into build/)"
        )) && told
            .release
            .stdout
            .contains(&format!("launcher_deb_name = \"{NEW}\"")),
        "{}",
        both(&told.release)
    );
    assert_eq!(server.downloads_of(NEW), 0);
}
