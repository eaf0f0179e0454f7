//! The verification between packer and the pin: a VM boots the new image in the loopback
//! Compute API, which runs the team's checks script in a sandbox that plays the image.

use std::io::BufReader;
use std::process::Stdio;

use crate::support::commit_host_tree;
use crate::support::compute_api::CUDA_TASK_IMAGE;
pub(crate) use crate::support::SEED;
use crate::support::{
    read_until_line, repo_root, HostCopy, InProcess, Run, GIT_IDENTITY as IDENTITY, LAUNCHER,
};

const NEW_SLURM: &str = "det-environments-slurm-ci-1800000000";
const CONFIG: &str = "tools/slurm/packer/slurm-image.toml";

/// Whether this machine can give a sandboxed "boot" a mount namespace of its own (root, with
/// unshare); without it a developer's run skips loudly and CI fails.
pub(crate) fn sandbox_available() -> bool {
    let works = std::process::Command::new("unshare")
        .args(["--mount", "--fork", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
            "`unshare --mount` does not work here (it needs root), and CI=true"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {}: `unshare --mount` does not work here (run as root)",
            std::thread::current().name().unwrap_or("a test")
        );
    }
    works
}

/// The name of the one VM a verification of `image` booted, checked to be the name the tool
/// gives: `verify-<image>-<8 random hex digits>`.
pub(crate) fn vm_of(host: &HostCopy, image: &str) -> String {
    let names: Vec<String> = host
        .api()
        .instance_inserts()
        .iter()
        .filter_map(|vm| vm["name"].as_str().map(str::to_string))
        .filter(|name| name.starts_with(&format!("verify-{image}-")))
        .collect();
    assert_eq!(names.len(), 1, "one VM for {image}: {names:?}");
    let suffix = &names[0][format!("verify-{image}-").len()..];
    assert!(
        suffix.len() == 8
            && suffix
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{}",
        names[0]
    );
    names[0].clone()
}

/// [`HostCopy::with_launcher`] with the repository's checks script, verification bounded by
/// `timeout`, and VMs that boot as a good image.
pub(crate) fn host(timeout: &str) -> HostCopy {
    let host = HostCopy::with_launcher();
    host.write(
        "tools/slurm/packer/verify-image.sh",
        std::fs::read(repo_root().join("tools/slurm/packer/verify-image.sh")).unwrap(),
    );
    let config = host
        .read(CONFIG)
        .replace("timeout = \"20m\"", &format!("timeout = \"{timeout}\""));
    host.write(CONFIG, config);
    host.api().boot_instances_in(&host.path("vms"));
    host
}

/// With a sandbox, a host copy ([`host`] with 5 minutes for the checks) after its build of a
/// good image, and that build's run.
fn built_and_verified() -> Option<(HostCopy, Run)> {
    if !sandbox_available() {
        return None;
    }
    let host = host("5m");
    let run = host.run(&["build", "--offline"]).ok();
    Some((host, run))
}

/// One build of a good image: verified, labelled with its bill of materials, pinned, and its VM
/// deleted.
#[test]
fn a_good_image_is_verified_labelled_and_pinned_and_its_vm_deleted() {
    let Some((host, run)) = built_and_verified() else {
        return;
    };
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        format!("slurm: {NEW_SLURM}\npbs: det-environments-pbs-ci-1717016272\n")
    );
    for line in [
        "ok   launcher: hpe-hpc-launcher 3.3.1-2 is installed",
        "ok   slurm-daemons: slurmctld and slurmd are enabled",
        &format!(
            "ok   enroot-cache-cuda: /srv/enroot/{}.sqsh",
            CUDA_TASK_IMAGE.replace(['/', ':'], "+")
        ),
        "verified det-environments-slurm-ci-1800000000: every check passed",
    ] {
        assert!(
            run.stderr.contains(line) || run.stdout.contains(line),
            "lacks {line:?}\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    let labels = &host.api().image(NEW_SLURM).unwrap()["labels"];
    assert_eq!(labels["verification"], "verified", "{labels}");
    assert_eq!(labels["bom-slurm"], "23_11_4", "{labels}");
    assert_eq!(labels["bom-launcher"], "3_3_1-2", "{labels}");
    assert_eq!(labels["bom-nvidia"], "525_147_05", "{labels}");
    assert_eq!(
        labels["launcher"], "3_3_1-2",
        "the build's labels stay: {labels}"
    );
    let vm = format!("us-central1-c/{}", vm_of(&host, NEW_SLURM));
    assert_eq!(host.api().instance_deletions(), [vm]);
    assert!(host.api().instance_names().is_empty());
}

/// The VM has a fuse, its labels and no external address.
#[test]
fn the_verification_vm_has_a_fuse_its_labels_and_no_external_address() {
    let Some((host, _)) = built_and_verified() else {
        return;
    };
    let inserts = host.api().instance_inserts();
    assert_eq!(inserts.len(), 1);
    let vm = &inserts[0];
    assert_eq!(vm["name"], vm_of(&host, NEW_SLURM));
    assert_eq!(
        vm["scheduling"]["instanceTerminationAction"], "DELETE",
        "{vm}"
    );
    assert_eq!(
        vm["scheduling"]["maxRunDuration"]["seconds"], "900",
        "5m + 10m: {vm}"
    );
    assert_eq!(vm["labels"]["slurm-image"], "verification", "{vm}");
    assert_eq!(vm["labels"]["verifies"], NEW_SLURM, "{vm}");
    assert!(
        vm["machineType"].as_str().unwrap().ends_with("/e2-medium"),
        "{vm}"
    );
    let interfaces = vm["networkInterfaces"].as_array().unwrap();
    assert!(
        interfaces.iter().all(|i| i
            .get("accessConfigs")
            .is_none_or(|a| a.as_array().unwrap().is_empty())),
        "no external address: {vm}"
    );
    assert!(
        vm["disks"][0]["initializeParams"]["sourceImage"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/global/images/{NEW_SLURM}")),
        "{vm}"
    );
    assert!(
        vm.get("serviceAccounts")
            .is_none_or(|a| a.as_array().unwrap().is_empty()),
        "no service account: {vm}"
    );
    let script = vm["metadata"]["items"][0]["value"].as_str().unwrap();
    assert!(
        script.contains("export VERIFY_LAUNCHER_VERSION='3.3.1-2'"),
        "{script}"
    );
    // The script file carried the run's nonce: it is not left behind.
    let left: Vec<_> = std::fs::read_dir(host.state_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".startup-script.sh"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The labels of the build and of its verification are both kept within GCE's rules.
#[test]
fn the_labels_of_the_build_and_of_its_verification_are_both_kept_within_gces_rules() {
    let Some((host, _)) = built_and_verified() else {
        return;
    };
    let image = host.api().image(NEW_SLURM).unwrap();
    let labels = image["labels"].as_object().unwrap();
    for key in ["launcher", "workload-manager", "verification", "bom-slurm"] {
        assert!(labels.contains_key(key), "{key} missing: {labels:?}");
    }
    within_gce_rules(labels).unwrap_or_else(|bad| panic!("{bad}: {labels:?}"));
}

/// The narrow images table shows the verification within 100 columns.
#[test]
fn the_narrow_images_table_shows_the_verification_within_100_columns() {
    let Some((host, _)) = built_and_verified() else {
        return;
    };
    let narrow = host.run(&["images"]).ok().stdout;
    for line in narrow.lines().filter(|l| !l.starts_with("note: ")) {
        assert!(line.chars().count() <= 100, "{line}\n{narrow}");
    }
    assert!(
        narrow.lines().any(|l| l.contains("CHK")),
        "no CHK column\n{narrow}"
    );
    let row = narrow
        .lines()
        .find(|l| l.contains(NEW_SLURM))
        .unwrap_or_else(|| panic!("{narrow}"));
    assert!(row.contains(" yes "), "{row}\n{narrow}");
}

/// An unchanged rebuild (another checkout, or a reverted images.conf) reuses the verified
/// image without booting it again.
#[test]
fn an_unchanged_rebuild_reuses_the_verified_image_without_booting_it_again() {
    let Some((host, _)) = built_and_verified() else {
        return;
    };
    host.write("tools/slurm/terraform/images.conf", SEED);
    let run = host.run(&["build", "--offline"]).ok();
    assert!(
        run.stderr.contains(&format!(
            "{NEW_SLURM} was verified when it was built: not booting it again"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(host.api().instance_inserts().len(), 1);
    assert!(host
        .read("tools/slurm/terraform/images.conf")
        .contains(NEW_SLURM));
}

/// With a sandbox, a host copy ([`host`] with 5 minutes for the checks) whose VMs lack the
/// enroot cache file of the CUDA task image, after its build, and that build's run (unchecked).
fn built_without_an_enroot_cache_file() -> Option<(HostCopy, Run)> {
    if !sandbox_available() {
        return None;
    }
    let host = host("5m");
    host.api()
        .images_lack(&format!("srv/enroot/{}", cuda_sqsh()));
    let run = host.run(&["build", "--offline"]);
    Some((host, run))
}

#[test]
fn a_missing_enroot_cache_file_fails_that_check_by_name_and_pins_nothing() {
    let Some((host, run)) = built_without_an_enroot_cache_file() else {
        return;
    };
    let sqsh = cuda_sqsh();
    // 5: a failed verification, told apart from a failed packer run (4).
    let run = run.exits_with(5, &[
        &format!("{NEW_SLURM} failed its verification: enroot-cache-cuda (/srv/enroot/{sqsh} is missing)"),
        "its line in images.conf is unchanged",
        "the last lines of the VM's console:",
        &format!("to verify it again (and pin it if it passes): cargo xtask slurm-image verify {NEW_SLURM} --pin"),
        &format!("to pin it anyway: cargo xtask slurm-image pin {NEW_SLURM} --unverified"),
    ]);
    assert!(
        !run.stderr.contains("FAIL enroot-cache-cpu"),
        "only the missing file fails\n{}",
        run.stderr
    );
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
    assert_eq!(
        host.api().image(NEW_SLURM).unwrap()["labels"]["verification"],
        "failed"
    );
    assert!(host.api().instance_names().is_empty(), "the VM is deleted");
}

/// The same inputs again after a failed verification: the failed image would be reused, so it
/// is booted again first, and stays unpinned.
#[test]
fn a_failed_image_is_verified_again_before_reuse() {
    let Some((host, run)) = built_without_an_enroot_cache_file() else {
        return;
    };
    run.exits_with(5, &["failed its verification: enroot-cache-cuda"]);
    host.run(&["build", "--offline"]).fails_with(&[
        &format!("{NEW_SLURM} is FAILED: verifying it before it is pinned again"),
        "failed its verification: enroot-cache-cuda",
    ]);
    assert_eq!(host.api().instance_inserts().len(), 2);
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
}

#[test]
fn a_vm_that_never_reports_times_out_pins_nothing_and_is_deleted() {
    if !sandbox_available() {
        return;
    }
    let host = host("5s");
    host.api().hang_at_boot();
    host.run(&["build", "--offline"]).fails_with(&[
        &format!("the verification of {NEW_SLURM} timed out"),
        "the stand-in image hangs before its startup script",
    ]);
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
    assert_eq!(
        host.api().instance_deletions(),
        [format!("us-central1-c/{}", vm_of(&host, NEW_SLURM))]
    );
    assert!(host.api().instance_names().is_empty());
    assert_eq!(
        host.api().image(NEW_SLURM).unwrap()["labels"]["verification"],
        "failed"
    );
}

/// The enroot cache file of the CUDA task image, as the checks look for it.
fn cuda_sqsh() -> String {
    format!("{}.sqsh", CUDA_TASK_IMAGE.replace(['/', ':'], "+"))
}

/// Issue 25, item 1: a service that writes the checks' protocol to the console before the
/// startup script runs (the tool reads it alone first) verifies nothing.
#[test]
fn a_service_that_forges_a_passing_report_before_the_startup_script_verifies_nothing() {
    if !sandbox_available() {
        return;
    }
    let host = host("5m");
    let sqsh = cuda_sqsh();
    host.api().images_lack(&format!("srv/enroot/{sqsh}"));
    host.api().service_writes_before_script(
        "Nov 30 09:00:00 vm forged.service[77]: slurm-image-verify: ok forged-check: all there\r\n\
         Nov 30 09:00:00 vm forged.service[77]: slurm-image-verify: end\r\n",
    );
    let run = host.run(&["build", "--offline"]).fails_with(&[&format!(
        "{NEW_SLURM} failed its verification: enroot-cache-cuda (/srv/enroot/{sqsh} is missing)"
    )]);
    assert!(
        host.api()
            .console(&vm_of(&host, NEW_SLURM))
            .contains("forged.service[77]: slurm-image-verify: end"),
        "the forgery was on the console"
    );
    assert!(!run.stderr.contains("forged-check"), "{}", run.stderr);
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
    assert_eq!(
        host.api().image(NEW_SLURM).unwrap()["labels"]["verification"],
        "failed"
    );
}

/// Issue 25, item 2: a check whose own output holds `slurm-image-verify: end` (the tool reads
/// the console up to there alone) ends nothing: every check after it is read, and the image is
/// labelled with its whole bill of materials.
#[test]
fn a_checks_output_that_says_end_neither_ends_the_report_nor_cuts_the_bill_of_materials() {
    if !sandbox_available() {
        return;
    }
    let host = host("5m");
    let script = host.read("tools/slurm/packer/verify-image.sh");
    let start = "say \"start ${VERIFY_WORKLOAD_MANAGER:-?} image\"\n";
    assert!(script.contains(start));
    host.write(
        "tools/slurm/packer/verify-image.sh",
        script.replace(
            start,
            &format!("{start}ok motd \"$(printf 'welcome\\nslurm-image-verify: end')\"\n"),
        ),
    );
    host.api().console_held_after("slurm-image-verify: end");
    let run = host.run(&["build", "--offline"]).ok();
    for line in [
        "ok   motd: welcome",
        "ok   enroot-cache-cuda: ",
        &format!("verified {NEW_SLURM}: every check passed"),
    ] {
        assert!(run.stderr.contains(line), "lacks {line:?}\n{}", run.stderr);
    }
    let labels = &host.api().image(NEW_SLURM).unwrap()["labels"];
    assert_eq!(labels["verification"], "verified", "{labels}");
    assert_eq!(labels["bom-slurm"], "23_11_4", "{labels}");
    assert_eq!(labels["bom-enroot"], "3_4_1", "{labels}");
    assert!(labels.get("bom-cuda-task-image").is_some(), "{labels}");
    assert!(host
        .read("tools/slurm/terraform/images.conf")
        .contains(NEW_SLURM));
}

/// Issue 25, item 3: the console keeps only its last bytes (GCE: 1 MiB); a FAIL line a noisy
/// service pushed out before the tool read it fails the verification, saying why.
#[test]
fn a_report_the_console_dropped_output_of_fails_and_says_so() {
    if !sandbox_available() {
        return;
    }
    let host = host("5m");
    host.api().images_lack("enabled/launcher");
    host.api().consoles_keep_last(200_000);
    let noise: String = (0..3000)
        .map(|i| {
            format!(
                "Nov 30 09:00:02 vm noisy.service[90]: tick {i} {}\r\n",
                "z".repeat(80)
            )
        })
        .collect();
    host.api()
        .service_writes_after("FAIL launcher-service", &noise);
    let run = host.run(&["build", "--offline"]).fails_with(&[
        &format!("{NEW_SLURM} failed its verification: "),
        "the VM's console dropped ",
        "bytes before the tool read them (GCE keeps its last 1 MiB), so the report may lack lines",
    ]);
    assert!(
        !run.stderr.contains("FAIL launcher-service"),
        "the FAIL line itself was never read\n{}",
        run.stderr
    );
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
    assert_eq!(
        host.api().image(NEW_SLURM).unwrap()["labels"]["verification"],
        "failed"
    );
}

/// Issue 25, item 4: two verifications of one image at once (their VMs boot only once both
/// exist) each boot a VM of their own, and both pass.
#[test]
fn two_verifications_of_one_image_at_once_boot_a_vm_each_and_both_pass() {
    if !sandbox_available() {
        return;
    }
    let host = host("2m");
    with_older_pbs_image(&host);
    host.api().boot_together(2);
    // Side by side in this process, each VM waiting for the other to boot.
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| host.run(&["verify", OLDER_PBS]));
        let second = host.run(&["verify", OLDER_PBS]);
        (first.join().unwrap(), second)
    });
    for run in [first, second] {
        let run = run.ok();
        assert!(
            run.stdout
                .contains(&format!("{OLDER_PBS} passed every check")),
            "{}",
            run.stdout
        );
    }
    let mut names: Vec<String> = host
        .api()
        .instance_inserts()
        .iter()
        .map(|vm| vm["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 2, "a VM each: {names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(&format!("verify-{OLDER_PBS}-")) && n.len() <= 63),
        "{names:?}"
    );
    assert_eq!(host.api().most_instances_at_once(), 2);
    assert!(host.api().instance_names().is_empty());
    assert_eq!(
        host.api().image(OLDER_PBS).unwrap()["labels"]["verification"],
        "verified"
    );
}

/// Issue 25, item 5: control sequences on the console (a window title, a clear screen, a
/// colour) never reach the user's terminal, and a 500,000-character line is shown cut.
#[test]
fn control_sequences_and_a_huge_console_line_reach_the_user_stripped_and_cut() {
    if !sandbox_available() {
        return;
    }
    let host = host("5m");
    let sqsh = cuda_sqsh();
    host.api().images_lack(&format!("srv/enroot/{sqsh}"));
    host.api().service_writes_after(
        "FAIL enroot-cache-cuda",
        &format!(
            "Nov 30 09:00:02 vm evil.service[66]: \u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[31mred\r\n{}\r\n",
            "y".repeat(500_000)
        ),
    );
    let run = host.run(&["build", "--offline"]).fails_with(&[
        "failed its verification: enroot-cache-cuda",
        "the last lines of the VM's console:",
        "evil.service[66]: ]0;owned[2J[31mred",
        "… (499700 more characters)",
    ]);
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(['\u{1b}', '\u{7}']),
            "{stream} carries a control character"
        );
        let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(
            longest < 1000,
            "{stream} has a line of {longest} characters"
        );
    }
}

/// Sends `signal` to the xtask while it waits for the checks of a VM that never reports; its
/// exit code and what it said after the signal.
fn interrupt_verification(signal: &str) -> (HostCopy, Option<i32>, String) {
    let host = host("10m");
    host.api().hang_at_boot();
    let (code, rest) = interrupt_while_verifying(&host, &["build", "--offline"], signal);
    (host, code, rest)
}

/// Runs the xtask with `args` in-process and delivers it `signal` once it reads a verification
/// VM's console (of a VM that never reports); its exit code and what it said after the signal.
fn deliver_while_verifying(host: &HostCopy, args: &[&str], signal: i32) -> (Option<i32>, String) {
    let run = InProcess::start(host.xtask(args));
    let before = run.wait_for_stderr("reading the console of");
    run.deliver(signal);
    let done = run.finish();
    (done.code, done.stderr[before.len()..].to_string())
}

/// Runs the built xtask with `args` and sends it `signal` once it reads a verification VM's
/// console (of a VM that never reports); its exit code and what it said after the signal.
fn interrupt_while_verifying(
    host: &HostCopy,
    args: &[&str],
    signal: &str,
) -> (Option<i32>, String) {
    let mut child = host
        .xtask(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    read_until_line(&mut stderr, "reading the console of");
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    (child.wait().unwrap().code(), rest)
}

#[test]
fn ctrl_c_during_verification_deletes_the_vm_and_exits_130() {
    if !sandbox_available() {
        return;
    }
    let (host, code, rest) = interrupt_verification("INT");
    assert_eq!(code, Some(130), "{rest}");
    assert!(
        rest.contains("interrupted by Ctrl-C (SIGINT): the verification VM"),
        "{rest}"
    );
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
    assert_eq!(
        host.api().instance_deletions(),
        [format!("us-central1-c/{}", vm_of(&host, NEW_SLURM))]
    );
    assert!(host.api().instance_names().is_empty());
}

// Ctrl-C above is the journey: the built binary, the process's own handler. The other
// signals are delivered to a run in-process; what the run does with each is the same code.

#[test]
fn sigterm_during_verification_deletes_the_vm_too() {
    signal_during_verification_deletes_the_vm(libc::SIGTERM, 143);
}

#[test]
fn sighup_during_verification_deletes_the_vm_too() {
    signal_during_verification_deletes_the_vm(libc::SIGHUP, 129);
}

/// `signal` while a build waits for its verification VM's report: the VM is deleted, nothing
/// is pinned, and the tool ends as the signal would have ended it.
fn signal_during_verification_deletes_the_vm(signal: i32, wanted: i32) {
    if !sandbox_available() {
        return;
    }
    let host = host("10m");
    host.api().hang_at_boot();
    let (code, rest) = deliver_while_verifying(&host, &["build", "--offline"], signal);
    assert_eq!(code, Some(wanted), "{signal}: {rest}");
    assert_eq!(host.read("tools/slurm/terraform/images.conf"), SEED);
    assert_eq!(
        host.api().instance_deletions(),
        [format!("us-central1-c/{}", vm_of(&host, NEW_SLURM))],
        "{signal}"
    );
}

#[test]
fn orphans_lists_a_verification_vm_left_behind_and_no_other_vm() {
    let host = host("5m");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let left = format!("verify-{NEW_SLURM}-0a1b2c3d");
    host.api().add_labelled_instance(
        "us-central1-c",
        &left,
        now - 7200,
        &[("slurm-image", "verification"), ("verifies", NEW_SLURM)],
    );
    host.api()
        .add_labelled_instance("us-central1-c", "someones-vm", now - 7200, &[("team", "x")]);
    // Someone's own VM that carries the label, copied from a verification VM's settings: the
    // name is not one this tool gives, so it is not this tool's to delete.
    host.api().add_labelled_instance(
        "us-central1-c",
        "alice-box",
        now - 7200,
        &[("slurm-image", "verification"), ("verifies", NEW_SLURM)],
    );
    let run = host.run(&["orphans", "--older-than", "1h"]).ok();
    assert!(run.stdout.contains(&left), "{}", run.stdout);
    assert!(!run.stdout.contains("someones-vm"), "{}", run.stdout);
    host.run(&["orphans", "--older-than", "1h", "--delete", "--yes"])
        .ok();
    assert_eq!(
        host.api().instance_deletions(),
        [format!("us-central1-c/{left}")]
    );
}

#[test]
fn no_verify_pins_and_says_the_pin_is_unverified() {
    let host = host("5m");
    let run = host.run(&["build", "--offline", "--no-verify"]).ok();
    assert!(
        run.stderr
            .contains(&format!("pinning {NEW_SLURM} unverified: --no-verify")),
        "{}",
        run.stderr
    );
    assert!(host.api().instance_inserts().is_empty());
    assert!(host
        .read("tools/slurm/terraform/images.conf")
        .contains(NEW_SLURM));
}

#[test]
fn without_a_checks_script_the_pin_says_it_is_unverified_and_how_to_add_one() {
    let host = host("5m");
    std::fs::remove_file(host.path("tools/slurm/packer/verify-image.sh")).unwrap();
    let run = host.run(&["build", "--offline"]).ok();
    assert!(
        run.stderr.contains(&format!(
            "pinning {NEW_SLURM} unverified: there is no checks script at tools/slurm/packer/verify-image.sh"
        )),
        "{}",
        run.stderr
    );
    assert!(host.api().instance_inserts().is_empty());
}

#[test]
fn a_release_verifies_both_images_at_once() {
    if !sandbox_available() {
        return;
    }
    let host = host("2m");
    // Each VM runs its checks only once both exist: verifications one after the other would
    // time out on the first.
    host.api().boot_together(2);
    // The images pinned before, verified by an earlier release.
    host.api().add_image(
        "det-environments-slurm-ci-1717047568",
        1_717_047_568,
        "READY",
        &[
            ("verification", "verified"),
            ("bom-slurm", "23_11_3"),
            ("bom-launcher", "3_3_0-0"),
        ],
        "HPC slurm testing VM hpe-hpc-launcher_3.3.0-0_amd64.deb",
    );
    commit_host_tree(&host);
    let run = host
        .run_env(
            &[
                "release",
                "--yes",
                "--offline",
                "--branch",
                "slurm-images-test",
            ],
            &IDENTITY,
        )
        .ok();
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        "slurm: det-environments-slurm-ci-1800000000\npbs: det-environments-pbs-ci-1800000000\n"
    );
    assert_eq!(host.api().most_instances_at_once(), 2);
    for image in [
        "det-environments-slurm-ci-1800000000",
        "det-environments-pbs-ci-1800000000",
    ] {
        let labels = &host.api().image(image).unwrap()["labels"];
        assert_eq!(labels["verification"], "verified", "{image}: {labels}");
        assert!(
            run.stderr
                .contains(&format!("verified {image}: every check passed")),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        host.api()
            .image("det-environments-pbs-ci-1800000000")
            .unwrap()["labels"]["bom-pbs"],
        "22_05_11"
    );
    assert!(host.api().instance_names().is_empty());
    let message = std::process::Command::new("git")
        .args(["log", "-1", "--format=%B"])
        .current_dir(host.root())
        .output()
        .unwrap();
    let message = String::from_utf8(message.stdout).unwrap();
    assert!(
        message.contains("What changed inside the images (their bills of materials):\n- slurm: ")
            && message.contains("launcher 3.3.0-0 -> 3.3.1-2")
            && message.contains("slurm 23.11.3 -> 23.11.4"),
        "{message}"
    );
    assert!(
        run.stdout.contains("inside the images: slurm: "),
        "{}",
        run.stdout
    );
}

/// An image of PBS made earlier and never verified.
const OLDER_PBS: &str = "det-environments-pbs-ci-1790000000";

fn with_older_pbs_image(host: &HostCopy) {
    host.add_ci_image(OLDER_PBS, LAUNCHER, &[("workload-manager", "pbs")]);
}

#[test]
fn verify_checks_a_named_image_on_demand_pins_it_when_asked_and_images_shows_it() {
    if !sandbox_available() {
        return;
    }
    let host = host("5m");
    with_older_pbs_image(&host);
    let listed = host.run(&["images", "--wide"]).ok();
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.contains(OLDER_PBS) && l.contains("never verified")),
        "{}",
        listed.stdout
    );
    let run = host.run(&["verify", OLDER_PBS, "--pin"]).ok();
    // Each check is said once, as it arrives.
    assert_eq!(
        run.stderr.matches("ok   pbs-programs: qsub, qstat").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("ok   pbs-programs"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("{OLDER_PBS} passed every check; it holds: "))
            && run.stdout.contains("pbs 22.05.11"),
        "{}",
        run.stdout
    );
    assert_eq!(
        host.read("tools/slurm/terraform/images.conf"),
        format!("slurm: det-environments-slurm-ci-1717047568\npbs: {OLDER_PBS}\n")
    );
    assert!(host.api().instance_names().is_empty());
    let listed = host.run(&["images", "--wide"]).ok();
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.contains(OLDER_PBS) && l.contains("verified 22.05.11")),
        "{}",
        listed.stdout
    );
    let described = host.run(&["images", OLDER_PBS]).ok();
    for line in [
        "  verification: verified",
        "  bill of materials:",
        "    pbs                  22.05.11",
        "    launcher             3.3.1-2",
    ] {
        assert!(
            described.stdout.contains(line),
            "lacks {line:?}\n{}",
            described.stdout
        );
    }
}

#[test]
fn pin_unverified_pins_without_a_vm_and_says_so() {
    let host = host("5m");
    with_older_pbs_image(&host);
    let run = host.run(&["verify", OLDER_PBS, "--pin-unverified"]).ok();
    assert!(
        run.stdout.contains(&format!(
            "pinning {OLDER_PBS} without verifying it (its labels say: never verified)"
        )),
        "{}",
        run.stdout
    );
    assert!(host
        .read("tools/slurm/terraform/images.conf")
        .contains(&format!("pbs: {OLDER_PBS}")));
    assert!(host.api().instance_inserts().is_empty());
}

#[test]
fn dry_runs_show_the_verification_step() {
    let host = host("5m");
    let run = host.run(&["build", "--offline", "--dry-run"]).ok();
    assert!(
        run.stdout.contains(
            "# then verify it before the pin: boot verify-det-environments-slurm-ci-<timestamp>-<random> (e2-medium, \
             us-central1-c, project determined-ai, no external address, deleted by GCE after 900 s at the latest), \
             run tools/slurm/packer/verify-image.sh at boot, wait at most 300 s for its report"
        ),
        "{}",
        run.stdout
    );
    let run = host
        .run(&["build", "--offline", "--dry-run", "--no-verify"])
        .ok();
    assert!(
        run.stdout
            .contains("# then no verification: the pin would be unverified (--no-verify"),
        "{}",
        run.stdout
    );
    assert!(host.api().only_reads());
}

#[test]
fn doctor_says_whether_the_checks_script_is_there_and_passes_bash_n() {
    let host = host("5m");
    let line = |run: &crate::support::Run| {
        run.stdout
            .lines()
            .find(|l| l.contains("checks script: "))
            .unwrap_or_else(|| panic!("no checks script line\n{}", run.stdout))
            .to_string()
    };
    let run = host.run(&["doctor"]);
    assert!(
        line(&run).starts_with(
            "ok    checks script: tools/slurm/packer/verify-image.sh passes `bash -n`"
        ),
        "{}",
        run.stdout
    );
    host.write(
        "tools/slurm/packer/verify-image.sh",
        "#!/bin/bash\nif then\n",
    );
    let run = host.run(&["doctor"]);
    assert!(
        line(&run).starts_with("FAIL  checks script: `bash -n "),
        "{}",
        run.stdout
    );
    std::fs::remove_file(host.path("tools/slurm/packer/verify-image.sh")).unwrap();
    let run = host.run(&["doctor"]);
    assert!(
        line(&run).starts_with(
            "warn  checks script: no checks script at tools/slurm/packer/verify-image.sh, so builds pin their images unverified"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn ctrl_c_while_verifying_an_image_verified_before_says_its_earlier_verdict_stays() {
    if !sandbox_available() {
        return;
    }
    let host = host("10m");
    host.api().add_image(
        NEW_SLURM,
        1_800_000_000,
        "READY",
        &[
            ("workload-manager", "slurm"),
            ("launcher", "3_3_1-2"),
            ("verification", "verified"),
        ],
        "HPC slurm testing VM, launcher hpe-hpc-launcher_3.3.1-2_amd64.deb",
    );
    host.api().hang_at_boot();
    let (code, rest) = deliver_while_verifying(&host, &["verify", NEW_SLURM], libc::SIGINT);
    assert_eq!(code, Some(130), "{rest}");
    assert!(
        rest.contains(
            "labels are unchanged (it still carries verification=verified from an earlier verification)"
        ),
        "{rest}"
    );
    assert_eq!(
        host.api().image(NEW_SLURM).unwrap()["labels"]["verification"],
        "verified"
    );
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
