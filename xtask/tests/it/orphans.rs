//! orphans in-process through the Compute seam: packer's old VMs only, listed with zone and age
//! and deleted per zone once confirmed; a verification VM left behind deleted, and the VM of a
//! build running on this machine spared. (`signals.rs` holds orphans' floor on `--older-than`
//! and the lock of a running build; `verify.rs` the listing of verification VMs.)

use crate::support::images::{add_packer_vms, now, Cloud};
use crate::verify::host;

const NEW_SLURM: &str = "det-environments-slurm-ci-1800000000";

#[test]
fn orphans_are_packers_old_vms_only_and_deleted_per_zone_when_confirmed() {
    let Some(cloud) = Cloud::new() else { return };
    let (api, now) = (&cloud.api, now());
    add_packer_vms(api, now);
    api.add_instance(
        "us-central1-c",
        "packer-lookalike",
        now - 9 * 86_400,
        "RUNNING",
        "a VM of someone else",
    );

    let out = cloud.run(&["orphans"]).ok().stdout;
    let listed: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(listed.len(), 2, "{out}");
    assert!(
        listed[0].contains("packer-aaa")
            && listed[0].contains("us-central1-c")
            && listed[0].contains("5h 0m"),
        "{out}"
    );
    assert!(
        listed[1].contains("packer-bbb")
            && listed[1].contains("us-west1-b")
            && listed[1].contains("3d 0h")
            && listed[1].contains("TERMINATED"),
        "{out}"
    );

    // --delete without --yes and without a terminal: nothing is deleted.
    let out = cloud.run(&["orphans", "--delete"]).ok().stdout;
    assert!(out.contains("nothing deleted"), "{out}");
    assert!(api.instance_deletions().is_empty());

    api.take_calls();
    let out = cloud
        .run(&["orphans", "--older-than", "30m", "--delete", "--yes"])
        .ok()
        .stdout;
    assert!(out.contains("deleted 3 VM(s)"), "{out}");
    assert_eq!(
        api.instance_deletions(),
        [
            "us-central1-c/packer-aaa",
            "us-central1-c/packer-young",
            "us-west1-b/packer-bbb"
        ]
    );
    assert_eq!(
        api.take_calls(),
        ["list_instances", "delete_instances", "delete_instances"],
        "one list and one delete call per zone"
    );
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
