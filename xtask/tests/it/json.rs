//! `--format json`: stdout carries JSON Lines only, each with its `reason`, the last the
//! `result`; the text goes to stderr. The records' shapes are snapshots, with what changes
//! from run to run (a fingerprint, a duration) redacted.

use serde_json::Value;

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
