//! `--format json`: stdout carries JSON Lines only, each with its `reason`, the last the
//! `result`; the text goes to stderr. The records' shapes are snapshots, with what changes
//! from run to run (a fingerprint, a duration) redacted.

use serde_json::Value;

use crate::support::images::{add_packer_vms, now};
use crate::support::{commit_host_tree, HostCopy, Run, STAND_IN_PACKER};

/// Every line of stdout as a record; fails the test on a line that is not one.
fn records(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON record ({e}): {line:?}\n{}", run.stdout));
            assert!(record["reason"].is_string(), "no reason: {line}");
            record
        })
        .collect()
}

fn reasons(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|record| record["reason"].as_str().unwrap())
        .collect()
}

/// The record, pretty, with the values that differ between runs replaced by their kind.
fn redacted(mut record: Value) -> String {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match key.as_str() {
                        "fingerprint" if value.is_string() => *value = "[fingerprint]".into(),
                        "seconds" => *value = "[seconds]".into(),
                        _ => walk(value),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut record);
    serde_json::to_string_pretty(&record).unwrap()
}

#[test]
fn a_build_as_json_ends_with_the_image_built_then_reused_and_its_text_on_stderr() {
    let host = HostCopy::with_launcher();
    let first = host.run(&["build", "--offline", "--format", "json"]).ok();
    let built = records(&first);
    assert_eq!(reasons(&built), ["progress", "result"], "{}", first.stdout);
    assert!(
        first
            .stderr
            .contains("packer built det-environments-slurm-ci-1800000000"),
        "{}",
        first.stderr
    );
    insta::assert_snapshot!("build_progress", redacted(built[0].clone()));
    insta::assert_snapshot!("build_built", redacted(built[1].clone()));

    let second = host.run(&["build", "--offline", "--format", "json"]).ok();
    let reused = records(&second);
    assert_eq!(reasons(&reused), ["result"], "{}", second.stdout);
    let result = &reused[0];
    assert_eq!(result["workload_managers"][0]["how"], "reused");
    assert_eq!(
        result["workload_managers"][0]["image"],
        "det-environments-slurm-ci-1800000000"
    );
    assert_eq!(result["workload_managers"][0]["images_conf"], "unchanged");
}

#[test]
fn a_failed_build_as_json_ends_with_a_result_naming_its_exit_code() {
    let host = HostCopy::with_launcher();
    let run = host
        .run_env(
            &["build", "--offline", "--format", "json"],
            &[("FAKE_PACKER", "fail")],
        )
        .exits_with(4, &["packer build failed (exit 1)"]);
    let all = records(&run);
    let last = all.last().unwrap();
    assert_eq!(last["reason"], "result");
    assert_eq!(last["ok"], false);
    assert_eq!(last["exit_code"], 4);
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .starts_with("packer build failed (exit 1): no new slurm image"),
        "{last}"
    );
}

#[test]
fn a_release_dry_run_as_json_plans_both_workload_managers() {
    let host = HostCopy::with_launcher();
    commit_host_tree(&host);
    let run = host
        .run(&[
            "release",
            "--dry-run",
            "--offline",
            "--branch",
            "slurm-images-json",
            "--format",
            "json",
        ])
        .ok();
    let all = records(&run);
    assert_eq!(reasons(&all), ["plan", "result"], "{}", run.stdout);
    assert!(
        run.stderr.contains("# release plan (dry run"),
        "the plan's text goes to stderr\n{}",
        run.stderr
    );
    insta::assert_snapshot!("release_dry_run_plan", redacted(all[0].clone()));
    insta::assert_snapshot!("release_dry_run_result", redacted(all[1].clone()));
}

#[test]
fn a_build_dry_run_that_lists_a_stop_says_it_in_its_plan_and_result() {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    let run = host
        .run(&["build", "--offline", "--dry-run", "--format", "json"])
        .stops();
    let all = records(&run);
    assert_eq!(reasons(&all), ["plan", "result"], "{}", run.stdout);
    let stops = all[0]["stops"].as_array().unwrap();
    assert!(
        stops.iter().any(|stop| stop
            .as_str()
            .unwrap()
            .starts_with("launcher: no launcher package")),
        "{stops:?}"
    );
    assert_eq!(all[1]["exit_code"], 3);
    assert_eq!(all[1]["dry_run"], true);
}

#[test]
fn doctor_as_json_writes_a_finding_per_check_and_ends_with_its_result() {
    let host = HostCopy::with_launcher();
    let run = host.run(&["doctor", "--format", "json"]);
    let all = records(&run);
    let (last, findings) = all.split_last().unwrap();
    assert_eq!(last["reason"], "result");
    assert_eq!(last["command"], "doctor");
    assert_eq!(last["ok"], run.code == Some(0));
    assert!(findings.len() > 5, "{}", run.stdout);
    for finding in findings {
        assert_eq!(finding["reason"], "finding", "{finding}");
        assert!(finding["check"].is_string() && finding["outcome"].is_string());
    }
}

#[test]
fn images_as_json_has_a_record_per_image_with_its_pin_then_the_result() {
    let host = HostCopy::with_launcher();
    host.run(&["build", "--offline", "--no-verify"]).ok();
    // The older pin, which the build replaced in the working tree; an image of before labels.
    host.api().add_image(
        "det-environments-slurm-ci-1717047568",
        1_717_047_568,
        "READY",
        &[],
        "HPC slurm testing VM hpe-hpc-launcher_3.3.0-0_amd64.deb",
    );
    let run = host.run(&["images", "--format", "json"]).ok();
    let records = records(&run);
    assert_eq!(
        reasons(&records),
        ["image", "image", "result"],
        "{}",
        run.stdout
    );
    let new = &records[0];
    assert_eq!(
        new["image"], "det-environments-slurm-ci-1800000000",
        "{new}"
    );
    assert_eq!(new["workload_manager"], "slurm");
    assert_eq!(new["pinned"], true, "{new}");
    assert_eq!(new["reused"], true, "a build now reuses it: {new}");
    assert_eq!(new["launcher"], "3.3.1-2", "{new}");
    assert_eq!(new["verification"], "unverified", "{new}");
    let old = &records[1];
    assert_eq!(
        old["image"], "det-environments-slurm-ci-1717047568",
        "{old}"
    );
    assert_eq!(
        (&old["pinned"], &old["reused"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
    assert!(old["prune"].as_str().unwrap().starts_with("keep"), "{old}");
    assert_eq!(records[2]["ok"], true);
    // No table on stdout; people read it on a terminal, without --format json.
    assert!(!run.stdout.contains("legend: "), "{}", run.stdout);
}

/// The record of `image` (a `prune` record) or of VM `vm` (a `vm` record) among `records`.
fn record_of<'a>(records: &'a [Value], key: &str, name: &str) -> &'a Value {
    records
        .iter()
        .find(|record| record[key] == name)
        .unwrap_or_else(|| panic!("no record of {name}: {records:?}"))
}

#[test]
fn prune_as_json_has_a_record_per_image_with_what_it_did_then_the_result() {
    const SLURM_PINNED: &str = "det-environments-slurm-ci-1717047568";
    const PBS_PINNED: &str = "det-environments-pbs-ci-1717016272";
    const LONG_DEPRECATED: &str = "det-environments-slurm-ci-1716000000";
    const OLD: &str = "det-environments-slurm-ci-1717300000";
    const NEW: &str = "det-environments-slurm-ci-1717600000";
    let host = HostCopy::new();
    let deb = "HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb";
    let api = host.api();
    for (name, created) in [
        (SLURM_PINNED, 1_717_047_568),
        (LONG_DEPRECATED, 1_716_000_000),
        (OLD, 1_717_300_000),
        (NEW, 1_717_600_000),
    ] {
        api.add_image(name, created, "READY", &[], deb);
    }
    api.add_image(
        PBS_PINNED,
        1_717_016_272,
        "READY",
        &[],
        "HPC pbs testing VM",
    );
    api.set_deprecated(
        LONG_DEPRECATED,
        Some(now() - 60 * 86_400),
        Some(SLURM_PINNED),
    );
    host.write(
        "tools/slurm/terraform/images.conf",
        format!("slurm: {SLURM_PINNED}\npbs: {PBS_PINNED}\n"),
    );
    // prune changes images only where it can read the release branches and tags.
    commit_host_tree(&host);

    let run = host
        .run(&["prune", "--keep", "1", "--yes", "--format", "json"])
        .ok();
    let all = records(&run);
    let (result, images) = all.split_last().unwrap();
    assert_eq!(reasons(images), ["prune"; 5], "{}", run.stdout);
    let pinned = record_of(images, "image", SLURM_PINNED);
    assert_eq!(pinned["action"], "keep", "{pinned}");
    assert!(
        pinned["why"]
            .as_str()
            .unwrap()
            .starts_with("pinned in images.conf"),
        "{pinned}"
    );
    assert_eq!(pinned["done"], false, "{pinned}");
    assert_eq!(pinned["workload_manager"], "slurm", "{pinned}");
    let newest = record_of(images, "image", NEW);
    assert_eq!(
        (&newest["action"], &newest["why"]),
        (&Value::from("keep"), &Value::from("newest 1")),
        "{newest}"
    );
    let old = record_of(images, "image", OLD);
    assert_eq!(old["action"], "deprecate", "{old}");
    assert_eq!(old["replacement"], SLURM_PINNED, "{old}");
    assert_eq!(old["done"], true, "{old}");
    let gone = record_of(images, "image", LONG_DEPRECATED);
    assert_eq!(gone["action"], "delete", "{gone}");
    assert_eq!(gone["done"], true, "{gone}");
    assert!(
        gone["why"].as_str().unwrap().starts_with("deprecated 60d"),
        "{gone}"
    );
    assert_eq!(record_of(images, "image", PBS_PINNED)["action"], "keep");

    assert_eq!(result["reason"], "result");
    assert_eq!(result["command"], "prune");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["deprecated"], serde_json::json!([OLD]), "{result}");
    assert_eq!(
        result["deleted"],
        serde_json::json!([LONG_DEPRECATED]),
        "{result}"
    );
    assert_eq!(api.image_deletions(), [LONG_DEPRECATED]);
    // The plan and what prune did are text, on stderr.
    assert!(!run.stdout.contains("legend: "), "{}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("deleted 1 image(s): {LONG_DEPRECATED}")),
        "{}",
        run.stderr
    );

    // Once more: nothing left to change, every record says so.
    let again = host
        .run(&["prune", "--keep", "1", "--yes", "--format", "json"])
        .ok();
    let all = records(&again);
    let (result, images) = all.split_last().unwrap();
    assert_eq!(reasons(images), ["prune"; 4], "{}", again.stdout);
    let waiting = record_of(images, "image", OLD);
    assert_eq!(waiting["action"], "in_grace", "{waiting}");
    assert!(waiting["delete_from"].is_string(), "{waiting}");
    assert!(images.iter().all(|image| image["done"] == false));
    assert_eq!(result["deprecated"], serde_json::json!([]), "{result}");
    assert_eq!(result["deleted"], serde_json::json!([]), "{result}");
}

#[test]
fn orphans_as_json_has_a_record_per_vm_found_then_the_result() {
    let host = HostCopy::new();
    let api = host.api();
    let now = now();
    add_packer_vms(api, now);
    // A verification's VM, as a killed verification of this image leaves it.
    let verified = "det-environments-pbs-ci-1790000000";
    let verification_vm = format!("verify-{verified}-0a1b2c3d");
    api.add_labelled_instance(
        "us-central1-c",
        &verification_vm,
        now - 6 * 3600,
        &[("slurm-image", "verification"), ("verifies", verified)],
    );

    let run = host.run(&["orphans", "--format", "json"]).ok();
    let all = records(&run);
    assert_eq!(
        reasons(&all),
        ["vm", "vm", "vm", "result"],
        "{}",
        run.stdout
    );
    let names: Vec<&str> = all[..3]
        .iter()
        .map(|vm| vm["vm"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["packer-aaa", verification_vm.as_str(), "packer-bbb"],
        "zone, then name"
    );
    let aaa = &all[0];
    assert_eq!(aaa["zone"], "us-central1-c", "{aaa}");
    assert_eq!(aaa["kind"], "packer", "{aaa}");
    assert_eq!(aaa["orphan"], true, "{aaa}");
    assert_eq!(aaa["why"], "a packer VM older than 4h", "{aaa}");
    assert_eq!(aaa["deleted"], false, "{aaa}");
    let age = aaa["age_seconds"].as_i64().unwrap();
    assert!((5 * 3600..5 * 3600 + 600).contains(&age), "{aaa}");
    assert!(aaa["created"].is_string(), "{aaa}");
    assert_eq!(all[1]["kind"], "verification", "{}", all[1]);
    assert_eq!(all[2]["status"], "TERMINATED", "{}", all[2]);
    assert_eq!(all[3]["command"], "orphans");
    assert_eq!(all[3]["deleted"], serde_json::json!([]), "{}", all[3]);
    assert!(
        run.stderr.contains("packer VMs older than 4h"),
        "{}",
        run.stderr
    );

    let run = host
        .run(&["orphans", "--delete", "--yes", "--format", "json"])
        .ok();
    let all = records(&run);
    let (result, vms) = all.split_last().unwrap();
    assert_eq!(vms.len(), 3, "{}", run.stdout);
    assert!(vms.iter().all(|vm| vm["deleted"] == true), "{}", run.stdout);
    assert_eq!(
        result["deleted"],
        serde_json::json!(["packer-aaa", verification_vm, "packer-bbb"]),
        "{result}"
    );
    assert_eq!(api.instance_deletions().len(), 3);
}
