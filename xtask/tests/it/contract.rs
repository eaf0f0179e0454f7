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

/// What one cloud answered to each call the tool makes, in the tool's own types.
fn exercise(cloud: &dyn Cloud, sh: &Shell, script: &Path) -> Vec<String> {
    let compute = cloud.connect(sh, PROJECT).unwrap();
    let source = cloud.connect(sh, SOURCE_PROJECT).unwrap();
    let mut seen = Vec::new();
    let mut note = |what: &str, value: String| seen.push(format!("{what}: {value}"));
    note("account", format!("{:?}", compute.account().unwrap()));
    note("project", format!("{:?}", compute.check_project().is_ok()));
    note("list", format!("{:?}", compute.list_images().unwrap()));
    note(
        "family",
        format!("{:?}", source.image_from_family(FAMILY).unwrap()),
    );
    note(
        "missing family",
        format!("{:?}", source.image_from_family("no-such-family").is_err()),
    );
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
    note(
        "labelled and deprecated",
        format!(
            "{:?}",
            compute
                .describe_image("det-environments-slurm-ci-1")
                .unwrap()
        ),
    );
    compute
        .reactivate_image("det-environments-pbs-ci-1")
        .unwrap();
    note(
        "reactivated",
        format!(
            "{:?}",
            compute
                .describe_image("det-environments-pbs-ci-1")
                .unwrap()
                .deprecation
        ),
    );
    let mut vms = compute.list_instances().unwrap();
    vms.sort_by(|a, b| a.name.cmp(&b.name));
    note("vms", format!("{vms:?}"));
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
    note("console", format!("{console:?}"));
    compute
        .delete_instances("us-west1-b", &["packer-aaa".to_string()])
        .unwrap();
    compute
        .delete_images(&["det-environments-pbs-ci-1".to_string()])
        .unwrap();
    let mut names: Vec<String> = compute
        .list_images()
        .unwrap()
        .into_iter()
        .map(|image| image.name)
        .collect();
    names.sort();
    note("images left", format!("{names:?}"));
    seen
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

    let through_gcloud = seeded();
    let env: Vec<(OsString, OsString)> = [
        (
            "CLOUDSDK_CONFIG",
            dir.path().join("gcloud-config").into_os_string(),
        ),
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
        exercise(&GcloudCloud, &sh, &script)
    });

    let in_process = seeded();
    let (by_fake, _) = in_session(
        Vec::new(),
        Box::new(FakeCloud::new(in_process.clone())),
        || exercise(&FakeCloud::new(in_process.clone()), &sh, &script),
    );

    for (gcloud, fake) in by_gcloud.iter().zip(&by_fake) {
        assert_eq!(gcloud, fake, "gcloud and the in-process cloud differ");
    }
    assert_eq!(by_gcloud.len(), by_fake.len());
    assert_eq!(insert(&through_gcloud), insert(&in_process));

    // What was read is what the project holds, not two equal mistakes.
    let joined = by_gcloud.join("\n");
    for wanted in [
        "account: Some(\"tester@example.com\")",
        "project: true",
        "name: \"slurm-source-v2\"",
        "missing family: true",
        "\"verified\": \"passed\"",
        "replacement: Some(\"det-environments-slurm-ci-2\")",
        "reactivated: None",
        "name: \"packer-aaa\", zone: \"us-west1-b\"",
        "Linux version",
        "images left: [\"det-environments-slurm-ci-1\", \"det-environments-slurm-ci-2\"]",
    ] {
        assert!(joined.contains(wanted), "{wanted}\n{joined}");
    }
    assert_eq!(insert(&through_gcloud)["maxRunDuration"], "1800");
    // The gcloud edge announces each wait with its bound; the fake has nothing to wait for.
    assert!(said.contains("(waiting at most 60 s)"), "{said}");
}
