//! Features of different issues met in one run: verification inside a release, the labels of a
//! build beside those of its verification, the dry run of a release, the images table.

use std::io::BufReader;
use std::process::Stdio;

use crate::support::commit_host_tree;
use crate::support::GIT_IDENTITY as IDENTITY;
use crate::support::{read_until_line, HostCopy};
use crate::verify::{host, sandbox_available, vm_of, SEED};

const CONF: &str = "tools/slurm/terraform/images.conf";
const NEW_SLURM: &str = "det-environments-slurm-ci-1800000000";
const NEW_PBS: &str = "det-environments-pbs-ci-1800000000";

/// A host tree that verifies with the default checks, committed on `main` so that a release
/// may branch from it.
fn release_host(timeout: &str) -> HostCopy {
    let host = host(timeout);
    commit_host_tree(&host);
    host
}

fn head(host: &HostCopy) -> String {
    let out = std::process::Command::new("git")
        .args(["log", "--all", "--format=%s"])
        .current_dir(host.root())
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

const RELEASE: [&str; 5] = ["release", "--yes", "--offline", "--branch", "qa-release"];

#[test]
fn a_release_whose_pbs_image_fails_verification_commits_nothing_and_says_how_to_finish() {
    if !sandbox_available() {
        return;
    }
    let host = release_host("5m");
    host.api().boot_together(2);
    host.api().images_lack("enabled/pbs");
    let run = host.run_env(&RELEASE, &IDENTITY).exits_with(5, &[
        &format!("{NEW_PBS} failed its verification: pbs-service"),
        "the pbs image failed verification (see above): nothing was committed",
        "to finish the release on qa-release: cargo xtask slurm-image release --redo pbs --offline --yes \
         (it verifies the pbs image again (or builds it anew once a fix changes its inputs), then commits)",
    ]);
    // One next step: `verify IMAGE --pin` would pin it but leave the release uncommitted.
    assert!(
        !run.stderr.contains("slurm-image verify "),
        "{}",
        run.stderr
    );
    // packer built both: its log explains nothing here.
    assert!(
        !run.stderr.contains("packer's log is") && !run.stderr.contains("build failed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        host.read(CONF),
        format!("slurm: {NEW_SLURM}\npbs: det-environments-pbs-ci-1717016272\n"),
        "slurm pinned, pbs unchanged\n{}",
        run.stderr
    );
    assert_eq!(head(&host), "The host tree\n", "nothing committed");
    assert_eq!(
        host.api().image(NEW_SLURM).unwrap()["labels"]["verification"],
        "verified"
    );
    assert_eq!(
        host.api().image(NEW_PBS).unwrap()["labels"]["verification"],
        "failed"
    );
    assert!(host.api().instance_names().is_empty());
}

#[test]
fn a_release_whose_builds_fail_in_different_ways_says_each() {
    if !sandbox_available() {
        return;
    }
    let host = release_host("5m");
    host.api().images_lack("enabled/pbs");
    let env: Vec<(&str, &str)> = IDENTITY
        .into_iter()
        .chain([("FAKE_PACKER_SLURM", "fail")])
        .collect();
    let run = host.run_env(&RELEASE, &env).fails_with(&[
        &format!("{NEW_PBS} failed its verification: pbs-service"),
        "the slurm build failed and the pbs image failed verification (see above): nothing was committed",
        "cargo xtask slurm-image release --redo slurm,pbs --offline --yes (it builds slurm again, verifies the \
         pbs image again",
    ]);
    // The log of the build that failed, not of the one that built.
    assert!(
        run.stderr
            .contains("packer's log is target/slurm-image/slurm-packer.log")
            && !run
                .stderr
                .contains("packer's log is target/slurm-image/pbs-packer.log"),
        "{}",
        run.stderr
    );
    assert_eq!(host.read(CONF), SEED, "{}", run.stderr);
    assert_eq!(head(&host), "The host tree\n", "nothing committed");
}

#[test]
fn ctrl_c_while_a_release_verifies_deletes_both_vms_commits_nothing_and_exits_130() {
    if !sandbox_available() {
        return;
    }
    let host = release_host("10m");
    host.api().hang_at_boot();
    let mut cmd = host.xtask(&RELEASE);
    cmd.envs(IDENTITY);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let seen = read_until_line(&mut stderr, "reading the console of");
    if !seen.contains("reading the console of verify-det-environments-pbs")
        || !seen.contains("reading the console of verify-det-environments-slurm")
    {
        read_until_line(&mut stderr, "reading the console of");
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest}");
    // The images carry the build's labels: only the verification's are missing.
    assert!(
        !rest.contains("neither labelled")
            && rest.contains("labels are unchanged and it is not pinned")
            && rest.contains("packer and the verifications were left to delete their VMs"),
        "{rest}"
    );
    assert_eq!(host.read(CONF), SEED, "{rest}");
    assert_eq!(head(&host), "The host tree\n", "{rest}");
    let mut deleted = host.api().instance_deletions();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            format!("us-central1-c/{}", vm_of(&host, NEW_PBS)),
            format!("us-central1-c/{}", vm_of(&host, NEW_SLURM))
        ],
        "{rest}"
    );
    assert!(host.api().instance_names().is_empty(), "{rest}");
}

// The labels of a verified build are checked against these rules, and the narrow images table
// is checked to show its verification, in the one build of a good image that
// `verify::a_good_image_is_verified_labelled_and_pinned_by_a_fused_vm_and_reused_without_booting_again`
// makes: each was a test of its own that built the same image.

/// GCE's rules for labels: at most 64, keys start with a lowercase letter, keys and values at
/// most 63 characters of lowercase letters, digits, `-` and `_`.
pub(crate) fn within_gce_rules(
    labels: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let allowed = |s: &str| {
        s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    if labels.len() > 64 {
        return Err(format!("{} labels", labels.len()));
    }
    for (key, value) in labels {
        let value = value.as_str().ok_or(format!("{key}: not a string"))?;
        if !key.starts_with(|c: char| c.is_ascii_lowercase()) || !allowed(key) || !allowed(value) {
            return Err(format!("{key}={value}"));
        }
    }
    Ok(())
}

#[test]
fn a_release_dry_run_shows_the_verification_and_an_unknown_launcher_honestly() {
    let host = host("5m");
    std::fs::remove_dir_all(host.path("tools/slurm/packer/build")).unwrap();
    let run = host
        .run_env(
            &["release", "--dry-run", "--branch", "qa-release"],
            &[(
                "SLURM_IMAGE_ARTIFACTORY_URL",
                "http://127.0.0.1:9/artifactory",
            )],
        )
        .stops();
    for wanted in [
        "# [slurm] then verify it before the pin: boot verify-det-environments-slurm-ci-<timestamp>-<random>",
        "# [pbs] then verify it before the pin: boot verify-det-environments-pbs-ci-<timestamp>-<random>",
        "launcher_deb_name = <unknown: the newest release: unknown, Artifactory is unreachable",
        "Update the slurm and pbs test cluster images (launcher unknown)",
    ] {
        assert!(run.stdout.contains(wanted), "{wanted}\n{}", run.stdout);
    }
    assert!(
        !run.stdout.contains("hpe-hpc-launcher_3.3.1-2"),
        "no launcher is known: {}",
        run.stdout
    );
    assert!(host.api().only_reads());
}

#[test]
fn orphans_deletes_a_verification_vm_left_behind_and_spares_a_running_builds() {
    let host = host("5m");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let labels = |image| [("slurm-image", "verification"), ("verifies", image)];
    let (old, mine) = ("det-environments-pbs-ci-1790000000", NEW_SLURM);
    let (old_vm, my_vm) = (
        format!("verify-{old}-0a1b2c3d"),
        format!("verify-{mine}-4e5f6071"),
    );
    host.api()
        .add_labelled_instance("us-central1-c", &old_vm, now - 4 * 3600, &labels(old));
    host.api()
        .add_labelled_instance("us-central1-c", &my_vm, now - 3600, &labels(mine));
    // The test holds the slurm build's lock, as a build started two hours ago would.
    std::fs::create_dir_all(host.state_dir()).unwrap();
    let mut lock = std::fs::File::create(host.state_dir().join("slurm-build.lock")).unwrap();
    lock.lock().unwrap();
    std::io::Write::write_all(
        &mut lock,
        format!(
            "pid: 4242\nstarted: {} (two hours ago)\ncommand: build\n",
            now - 2 * 3600
        )
        .as_bytes(),
    )
    .unwrap();
    let run = host
        .run(&["orphans", "--older-than", "30m", "--delete", "--yes"])
        .ok();
    assert_eq!(
        host.api().instance_deletions(),
        [format!("us-central1-c/{old_vm}")],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(&format!("kept {my_vm}"))
                && l.contains("created after the slurm build running on this machine started")),
        "{}",
        run.stdout
    );
    drop(lock);
}

/// Since builds run in staging copies, packer writes its manifest there: build/ holds the
/// launcher packages alone, as the README says, and clean's help must not say otherwise.
#[test]
fn clean_describes_build_as_the_readme_does() {
    let host = HostCopy::new();
    let help = host.run(&["clean", "--help"]).ok().stdout;
    assert!(!help.contains("manifest"), "{help}");
    assert!(help.contains("launcher packages"), "{help}");
}
