//! What an adversary tried (issue 16): a hostile Artifactory, pins the tool itself rejects,
//! prune's listing tricks, a symlinked images.conf, the token in packer's environment, oversized
//! inputs; each through the built xtask.

use crate::support::artifactory::{Faults, Server};
use crate::support::SEED;
use crate::support::{HostCopy, Run, STAND_IN_PACKER};

const NEW: &str = "hpe-hpc-launcher_3.10.1-12_amd64.deb";
const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

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

#[test]
fn a_symlinked_images_conf_is_written_through_to_its_target() {
    let host = HostCopy::with_launcher();
    host.write("shared/images.conf", SEED);
    std::fs::remove_file(host.images_conf()).unwrap();
    std::os::unix::fs::symlink("../../../shared/images.conf", host.images_conf()).unwrap();
    host.run(&["build", "--offline"]).ok();
    let meta = std::fs::symlink_metadata(host.images_conf()).unwrap();
    assert!(meta.file_type().is_symlink(), "the link was replaced");
    assert_eq!(
        host.read("shared/images.conf"),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1717016272\n"
    );
    let names: Vec<_> = std::fs::read_dir(host.path("shared"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["images.conf"], "a temporary file was left");
}

/// Puts a packer first on PATH that runs the usual stand-in, then, after a build, runs
/// `then` with the manifest's path in `$manifest`.
fn packer_then(host: &HostCopy, then: &str) {
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

/// A packer that renames the image in its manifest from `from` to `to`, as a template naming
/// its images otherwise would.
fn packer_renaming_its_image(host: &HostCopy, from: &str, to: &str) {
    packer_then(host, &format!(r#"sed -i 's/"{from}/"{to}/g' "$manifest""#));
}

#[test]
fn a_build_never_pins_an_image_of_another_workload_manager() {
    let host = HostCopy::with_launcher();
    let template = "tools/slurm/packer/main.pkr.hcl";
    let text = host.read(template).replace(
        "det-environments-${var.workload_manager}-ci-",
        "det-environments-slurm-ci-",
    );
    host.write(template, text);
    packer_renaming_its_image(
        &host,
        "det-environments-pbs-ci-",
        "det-environments-slurm-ci-",
    );
    let run = host.run(&["build", "--offline", "--wm", "pbs"]).fails_with(&[
        "not pinning det-environments-slurm-ci-1800000000, the latest build in target/slurm-image/pbs/build/manifest.json",
        "tools/slurm/packer/main.pkr.hcl line 42: image_name = \"det-environments-slurm-ci-{{timestamp}}\"",
        "det-environments-slurm-ci-1800000000 is not a pbs image",
        "images.conf left as it is",
    ]);
    assert_eq!(host.read(IMAGES_CONF), SEED, "{}", run.stderr);
}

#[test]
fn a_build_never_pins_another_teams_image() {
    let host = HostCopy::with_launcher();
    packer_renaming_its_image(
        &host,
        "det-environments-slurm-ci-1800000000",
        "other-team-image-1",
    );
    host.run(&["build", "--offline"]).fails_with(&[
        "not pinning other-team-image-1, the latest build in target/slurm-image/slurm/build/manifest.json",
        "other-team-image-1 is not a slurm image",
    ]);
    assert_eq!(host.read(IMAGES_CONF), SEED);
    // Another team's image is not this tool's to label or boot.
    let touched: Vec<String> = host
        .api()
        .http_requests()
        .into_iter()
        .filter(|r| r.contains("setLabels") || r.contains("/instances"))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    // The images a cluster reads are still the ones the tool accepts.
    host.run(&["build", "--offline", "--dry-run"]).ok();
}

/// Makes the host copy a git checkout with everything committed on `main`: prune deletes
/// nothing where it cannot read the release branches.
fn commit_host(host: &HostCopy) {
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "tools"],
        &["commit", "-q", "-m", "host"],
    ] {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(host.root())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
}

#[test]
fn prune_counts_a_name_listed_twice_once_and_leaves_other_families_alone() {
    let host = HostCopy::new();
    host.write(IMAGES_CONF, SEED);
    let api = host.api();
    let slurm = |n: i64| format!("det-environments-slurm-ci-{n}");
    let desc = "HPC slurm testing VM";
    api.add_image(&slurm(1_717_047_568), 1_717_047_568, "READY", &[], desc);
    // Seven newer ones, five of them listed twice by gcloud.
    for n in 1..=7 {
        api.add_image(
            &slurm(1_800_000_000 + n),
            1_800_000_000 + n,
            "READY",
            &[],
            desc,
        );
    }
    for n in 3..=7 {
        api.add_image(
            &slurm(1_800_000_000 + n),
            1_800_000_000 + n,
            "READY",
            &[],
            desc,
        );
    }
    // Named like ours, old, but in someone else's family.
    let foreign = slurm(1_700_000_000);
    api.add_image(&foreign, 1_700_000_000, "READY", &[], desc);
    api.set_family(&foreign, "someone-elses-family");
    commit_host(&host);

    let run = host.run(&["prune", "--keep", "6", "--yes"]).ok();
    // The six newest unique names are kept; the oldest unpinned one goes (its first step),
    // and only it.
    let deprecated: Vec<String> = api.deprecations().into_iter().map(|(n, _)| n).collect();
    assert_eq!(deprecated, [slurm(1_800_000_001)], "{}", run.stdout);
    assert!(api.image_deletions().is_empty(), "{}", run.stdout);
    assert!(
        run.stdout.contains("deprecated 1 image(s)"),
        "{}",
        run.stdout
    );
    for wanted in [
        "of another family than the template builds into (det-environments-slurm-ci): 1 in someone-elses-family",
        "5 image name(s) listed more than once by gcloud, each counted once",
    ] {
        assert!(run.stdout.contains(wanted), "{wanted}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains(&foreign), "{}", run.stdout);
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

/// What build/ holds, sorted.
fn build_files(host: &HostCopy) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(host.build_dir())
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
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
fn a_merge_conflict_in_images_conf_is_named_as_one() {
    let host = HostCopy::with_launcher();
    host.write(
        IMAGES_CONF,
        "<<<<<<< HEAD\nslurm: det-environments-slurm-ci-1800000001\n=======\nslurm: det-environments-slurm-ci-1800000002\n>>>>>>> release\npbs: det-environments-pbs-ci-1717016272\n",
    );
    host.run(&["build", "--offline", "--dry-run"]).fails_with(&[
        "tools/slurm/terraform/images.conf is broken: line 1 is a merge-conflict marker (`<<<<<<<`): \
         the file has an unresolved merge conflict",
    ]);
}

#[test]
fn a_misspelt_key_in_images_conf_gets_a_suggestion() {
    let host = HostCopy::with_launcher();
    host.write(
        IMAGES_CONF,
        "slrum: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n",
    );
    let run = host
        .run(&["build", "--offline", "--dry-run"])
        .fails_with(&["line 1: `slrum` is not a workload manager; did you mean `slurm`?"]);
    assert!(!run.stderr.contains("contains `slurm`"), "{}", run.stderr);
}

#[test]
fn an_oversized_images_conf_is_refused_unread() {
    let host = HostCopy::with_launcher();
    host.write(
        IMAGES_CONF,
        format!("{SEED}{}", "# a note\n".repeat(10_000)),
    );
    host.run(&["build", "--offline", "--dry-run"]).fails_with(&[
        "cannot read tools/slurm/terraform/images.conf (",
        "images.conf is larger than 65536 bytes",
    ]);
    assert_eq!(host.read(IMAGES_CONF).len(), SEED.len() + 90_000);
}

#[test]
fn a_huge_config_value_is_refused_by_name() {
    let host = HostCopy::with_launcher();
    let config = "tools/slurm/packer/slurm-image.toml";
    let with_project = |bytes: usize| {
        let huge = "p".repeat(bytes);
        host.read(config).replace(
            "project = \"determined-ai\"",
            &format!("project = \"{huge}\""),
        )
    };
    let original = host.read(config);
    host.write(config, with_project(2 * 1024 * 1024));
    let run = host.run(&["images"]).fails_with(&[
        "tools/slurm/packer/slurm-image.toml is not usable: gcp.project is 2097152 bytes long, more than the 1024",
    ]);
    // A config file far larger than any config is not read whole at all.
    host.write(config, &original);
    host.write(config, with_project(10 * 1024 * 1024));
    host.run(&["images"])
        .fails_with(&["slurm-image.toml is larger than 4194304 bytes"]);
    assert!(
        !run.stderr.contains("Argument list too long"),
        "{}",
        &run.stderr[..2000.min(run.stderr.len())]
    );
    assert!(run.stderr.len() < 10_000, "the value is not repeated");
}

#[test]
fn an_oversized_manifest_is_refused_unread() {
    let host = HostCopy::with_launcher();
    // Still valid JSON: trailing blanks, 17 MiB of them.
    packer_then(
        &host,
        r#"head -c 17825792 /dev/zero | tr '\0' ' ' >> "$manifest""#,
    );
    host.run(&["build", "--offline"])
        .fails_with(&["slurm/build/manifest.json is larger than 16777216 bytes"]);
    assert_eq!(host.read(IMAGES_CONF), SEED);
}
