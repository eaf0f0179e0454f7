//! The contract tier: every distinct gcloud call the tool makes, once, through the real gcloud
//! against a loopback Compute API, beside the same call through the in-process cloud the other
//! tests use. Both must read the same thing, so a test that passes on the fake would pass on
//! gcloud; and what they read is checked, so both cannot be wrong the same way.

use std::ffi::OsString;
use std::path::Path;

use serde_json::Value;
use xshell::Shell;
use xtask::testing::{in_session, Cloud, GcloudCloud, Vm};

use crate::support::compute_api::{ComputeApi, PROJECT};
use crate::support::fake_cloud::FakeCloud;
use crate::support::{require_tool, temp_dir};

const SOURCE_PROJECT: &str = "schedmd-slurm-public";
const FAMILY: &str = "slurm-gcp-6-3-ubuntu-2004-lts";

/// A project as the tool meets it: a pinned image and an older one, labelled; a deprecated
/// one; a VM a build left in each of two zones; a public family in another project.
fn seeded() -> ComputeApi {
    let api = ComputeApi::start();
    api.add_image(
        "det-environments-slurm-ci-2",
        1_800_000_200,
        "READY",
        &[("workload-manager", "slurm"), ("input-fingerprint", "abc")],
        "HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb",
    );
    api.add_image(
        "det-environments-slurm-ci-1",
        1_800_000_100,
        "READY",
        &[("workload-manager", "slurm")],
        "an older one",
    );
    api.add_image("det-environments-pbs-ci-1", 1_800_000_000, "READY", &[], "");
    api.set_deprecated(
        "det-environments-pbs-ci-1",
        Some(1_800_000_050),
        Some("det-environments-slurm-ci-2"),
    );
    api.add_source_image(SOURCE_PROJECT, FAMILY, "slurm-source-v2", 1_704_067_200);
    api.add_instance(
        "us-west1-b",
        "packer-aaa",
        1_800_000_000,
        "RUNNING",
        "packer build",
    );
    api.add_labelled_instance(
        "us-central1-c",
        "verify-det-environments-slurm-ci-1-x",
        1_800_000_000,
        &[("slurm-image-role", "verify")],
    );
    api
}

/// The calls, in groups that touch different things, so that each group's gcloud calls (a
/// second or more each) run beside the others': no group makes more than three.
const GROUPS: [Group; 6] = [account, reads, labels, reactivation, vms, boot];

/// A group of calls made through one cloud: what it read, as lines.
type Group = fn(&dyn Cloud, &Shell, &Path) -> Vec<String>;

/// What a group read through gcloud, what gcloud announced, what it read in-process, and the
/// two copies of the project it ran against.
type Observed = (Vec<String>, String, Vec<String>, ComputeApi, ComputeApi);

/// The account the calls act as, and the project check.
fn account(cloud: &dyn Cloud, sh: &Shell, _script: &Path) -> Vec<String> {
    let compute = cloud.connect(sh, PROJECT).unwrap();
    vec![
        format!("account: {:?}", compute.account().unwrap()),
        format!("project: {:?}", compute.check_project().is_ok()),
    ]
}

/// What one cloud answered to the listing and the family lookup, in the tool's own types.
fn reads(cloud: &dyn Cloud, sh: &Shell, _script: &Path) -> Vec<String> {
    let compute = cloud.connect(sh, PROJECT).unwrap();
    let source = cloud.connect(sh, SOURCE_PROJECT).unwrap();
    vec![
        format!("list: {:?}", compute.list_images().unwrap()),
        format!("family: {:?}", source.image_from_family(FAMILY).unwrap()),
    ]
}

/// Labels and deprecation of an image, read back.
fn labels(cloud: &dyn Cloud, sh: &Shell, _script: &Path) -> Vec<String> {
    let compute = cloud.connect(sh, PROJECT).unwrap();
    compute
        .add_image_labels(
            "det-environments-slurm-ci-1",
            &[("verified".to_string(), "passed".to_string())],
        )
        .unwrap();
    compute
        .deprecate_image(
            "det-environments-slurm-ci-1",
            Some("det-environments-slurm-ci-2"),
            "2027-01-15T10:00:00Z",
        )
        .unwrap();
    vec![format!(
        "labelled and deprecated: {:?}",
        compute
            .describe_image("det-environments-slurm-ci-1")
            .unwrap()
    )]
}

/// A deprecated image made active again, read back, then deleted.
fn reactivation(cloud: &dyn Cloud, sh: &Shell, _script: &Path) -> Vec<String> {
    let compute = cloud.connect(sh, PROJECT).unwrap();
    compute
        .reactivate_image("det-environments-pbs-ci-1")
        .unwrap();
    let seen = vec![format!(
        "reactivated: {:?}",
        compute
            .describe_image("det-environments-pbs-ci-1")
            .unwrap()
            .deprecation
    )];
    // What is left is read from the project itself (below), not by a second listing.
    compute
        .delete_images(&["det-environments-pbs-ci-1".to_string()])
        .unwrap();
    seen
}

/// The VMs: listed, and one deleted.
fn vms(cloud: &dyn Cloud, sh: &Shell, _script: &Path) -> Vec<String> {
    let compute = cloud.connect(sh, PROJECT).unwrap();
    let mut vms = compute.list_instances().unwrap();
    vms.sort_by(|a, b| a.name.cmp(&b.name));
    compute
        .delete_instances("us-west1-b", &["packer-aaa".to_string()])
        .unwrap();
    vec![format!("vms: {vms:?}")]
}

/// A VM booted and its console read.
fn boot(cloud: &dyn Cloud, sh: &Shell, script: &Path) -> Vec<String> {
    let compute = cloud.connect(sh, PROJECT).unwrap();
    let vm = Vm {
        name: "verify-det-environments-slurm-ci-2-y".into(),
        zone: "us-central1-c".into(),
        image: "det-environments-slurm-ci-2".into(),
        machine_type: "e2-standard-2".into(),
        fuse_s: 1800,
        labels: vec![("slurm-image-role".into(), "verify".into())],
    };
    compute.create_instance(&vm, script).unwrap();
    let console = compute.serial_output(&vm.zone, &vm.name, 0).unwrap();
    vec![format!("console: {console:?}")]
}

/// The part of a VM insert that the tool decides.
fn insert(api: &ComputeApi) -> Value {
    let body = api.instance_inserts().pop().expect("an insert");
    serde_json::json!({
        "name": body["name"],
        "labels": body["labels"],
        "sourceImage": body["disks"][0]["initializeParams"]["sourceImage"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next(),
        "script": body["metadata"]["items"][0]["value"],
        "maxRunDuration": body["scheduling"]["maxRunDuration"]["seconds"],
        "terminationAction": body["scheduling"]["instanceTerminationAction"],
    })
}

#[test]
fn every_gcloud_call_reads_as_the_in_process_cloud_answers_it() {
    let Some(_) = require_tool("gcloud") else {
        return;
    };
    let dir = temp_dir("contract");
    let script = dir.path().join("startup.sh");
    std::fs::write(&script, "#!/bin/bash\necho checks\n").unwrap();
    // A configuration folder per group: gcloud writes into it as it starts.
    let config = |group: usize| dir.path().join(format!("gcloud-config-{group}"));

    // Each group against its own two copies of the project: one through gcloud, one in-process.
    let results: Vec<Observed> = std::thread::scope(|scope| {
        let threads: Vec<_> = GROUPS
            .into_iter()
            .enumerate()
            .map(|(number, group)| {
                let (script, config) = (&script, config(number));
                scope.spawn(move || {
                    let through_gcloud = seeded();
                    let env: Vec<(OsString, OsString)> = [
                        ("CLOUDSDK_CONFIG", config.clone().into_os_string()),
                        ("CLOUDSDK_AUTH_DISABLE_CREDENTIALS", "true".into()),
                        ("CLOUDSDK_CORE_DISABLE_PROMPTS", "1".into()),
                        ("CLOUDSDK_CORE_ACCOUNT", "tester@example.com".into()),
                        (
                            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
                            through_gcloud.endpoint().into(),
                        ),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.into(), v))
                    .collect();
                    // gcloud reads its environment from the shell the tool gives it.
                    let sh = Shell::new().unwrap();
                    for (key, value) in &env {
                        sh.set_var(key, value);
                    }
                    let (by_gcloud, said) = in_session(env, Box::new(GcloudCloud), || {
                        group(&GcloudCloud, &sh, script)
                    });
                    let in_process = seeded();
                    let fake = FakeCloud::new(in_process.clone());
                    let (by_fake, _) = in_session(
                        Vec::new(),
                        Box::new(FakeCloud::new(in_process.clone())),
                        || group(&fake, &sh, script),
                    );
                    (by_gcloud, said, by_fake, through_gcloud, in_process)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let mut by_gcloud = Vec::new();
    let mut said = String::new();
    for (gcloud, announced, fake, through_gcloud, in_process) in &results {
        assert_eq!(gcloud.len(), fake.len());
        for (gcloud, fake) in gcloud.iter().zip(fake) {
            assert_eq!(gcloud, fake, "gcloud and the in-process cloud differ");
        }
        let mut left = (through_gcloud.image_names(), in_process.image_names());
        left.0.sort();
        left.1.sort();
        assert_eq!(left.0, left.1, "the images left differ");
        assert_eq!(
            through_gcloud.instance_deletions(),
            in_process.instance_deletions(),
            "the VMs deleted differ"
        );
        if !through_gcloud.image_deletions().is_empty() {
            assert_eq!(
                left.0,
                ["det-environments-slurm-ci-1", "det-environments-slurm-ci-2"],
                "images left"
            );
        }
        if !through_gcloud.instance_inserts().is_empty() {
            assert_eq!(insert(through_gcloud), insert(in_process));
            assert_eq!(insert(through_gcloud)["maxRunDuration"], "1800");
        }
        by_gcloud.extend(gcloud.iter().cloned());
        said.push_str(announced);
    }

    assert!(
        results
            .iter()
            .any(|observed| observed.3.instance_deletions() == ["us-west1-b/packer-aaa"]),
        "no group deleted the VM it asked to"
    );
    // What was read is what the project holds, not two equal mistakes.
    let joined = by_gcloud.join("\n");
    for wanted in [
        "account: Some(\"tester@example.com\")",
        "project: true",
        "name: \"slurm-source-v2\"",
        "\"verified\": \"passed\"",
        "replacement: Some(\"det-environments-slurm-ci-2\")",
        "reactivated: None",
        "name: \"packer-aaa\", zone: \"us-west1-b\"",
        "Linux version",
    ] {
        assert!(joined.contains(wanted), "{wanted}\n{joined}");
    }
    // The gcloud edge announces each wait with its bound; the fake has nothing to wait for.
    assert!(said.contains("(waiting at most 60 s)"), "{said}");
}
