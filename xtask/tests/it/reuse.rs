//! Reproducible builds, run in-process against the loopback Compute API: the source image pinned
//! from its family, what went in written on the image as labels, an image with the same inputs
//! reused instead of rebuilt, every rebuild explained, and a dry run that changes nothing.
//!
//! The stand-in packer "creates" each image it builds in the host copy's loopback Compute API,
//! with the labels the variables file gives it, as the template would.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::hosts::SLURM_PINNED;
use crate::support::images::reads_side_by_side;
use crate::support::{
    require_tool, HostCopy, Run, LAUNCHER, PBS_SOURCE, SEED, SLURM_SOURCE, SOURCES_CREATED,
};

/// The first image the stand-in packer builds for slurm, then the next ones.
const FIRST: &str = "det-environments-slurm-ci-1800000000";
const SECOND: &str = "det-environments-slurm-ci-1800000001";

/// A host copy with a launcher in build/, pinning a slurm image made before images recorded
/// their inputs.
fn host() -> Option<HostCopy> {
    Some(HostCopy::with_unlabelled_pin())
}

/// [`host`] after its first build, from images.conf's seed, and that build's run.
fn built_once() -> Option<(HostCopy, Run)> {
    let host = host()?;
    let run = host.run(&["build", "--offline"]).ok();
    Some((host, run))
}

fn builds(host: &HostCopy) -> usize {
    host.packer_calls()
        .iter()
        .filter(|c| c.contains("| build"))
        .count()
}

fn pinned(host: &HostCopy, wm: &str) -> String {
    host.read("tools/slurm/terraform/images.conf")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{wm}: ")))
        .unwrap_or_else(|| panic!("no {wm} line"))
        .to_string()
}

/// The line of `out` that starts with `start`.
fn line<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
}

fn labels_of(host: &HostCopy, image: &str) -> BTreeMap<String, String> {
    let image = host
        .api()
        .image(image)
        .unwrap_or_else(|| panic!("{image} is not in the loopback API"));
    image["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The first build, from images.conf's seed.
#[test]
fn the_image_is_built_from_the_familys_current_image_and_labelled_with_its_inputs() {
    let Some((host, run)) = built_once() else {
        return;
    };
    let vars = host.read("last.pkrvars.hcl");
    assert!(
        vars.lines()
            .any(|l| l == format!("source_image = \"{SLURM_SOURCE}\"")),
        "{vars}"
    );
    assert!(
        run.stderr.contains(&format!(
            "source image: {SLURM_SOURCE} (the current image of family slurm-gcp-6-3-ubuntu-2004-lts in project schedmd-slurm-public)"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        line(&run.stdout, "building:"),
        format!(
            "building: against {SLURM_PINNED}, which images.conf pins: no labels (made before images recorded their inputs)"
        )
    );
    assert_eq!(pinned(&host, "slurm"), FIRST);

    let labels = labels_of(&host, FIRST);
    assert_eq!(labels["workload-manager"], "slurm");
    assert_eq!(labels["launcher"], "3_3_1-2");
    assert_eq!(labels["source-image"], SLURM_SOURCE);
    let fingerprint = &labels["input-fingerprint"];
    assert!(
        fingerprint.len() == 32 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fingerprint}"
    );
    for key in [
        "template",
        "playbook",
        "static",
        "variables",
        "launcher-package",
    ] {
        let value = &labels[key];
        assert!(
            value.len() == 12 && value.bytes().all(|b| b.is_ascii_hexdigit()),
            "{key}={value}"
        );
    }
    let image = host.api().image(FIRST).unwrap();
    assert_eq!(
        image["description"],
        format!("HPC slurm testing VM {LAUNCHER}"),
        "the description keeps naming the launcher package"
    );
}

#[test]
fn pbs_starts_from_its_own_family() {
    let Some(host) = host() else { return };
    host.run(&["build", "--offline", "--wm", "pbs"]).ok();
    assert!(host
        .read("last.pkrvars.hcl")
        .contains(&format!("source_image = \"{PBS_SOURCE}\"")));
    assert_eq!(
        labels_of(&host, "det-environments-pbs-ci-1800000000")["source-image"],
        PBS_SOURCE
    );
}

/// After the first build.
#[test]
fn a_second_build_with_unchanged_inputs_runs_no_packer_and_pins_the_existing_image() {
    let Some((host, _)) = built_once() else {
        return;
    };
    assert_eq!(builds(&host), 1);
    // Another checkout, or a reverted images.conf: it pins the old image again.
    host.write("tools/slurm/terraform/images.conf", SEED);
    let requests_before = host.api().requests().len();

    let run = host.run(&["build", "--offline"]).ok();
    assert_eq!(builds(&host), 1, "packer ran again:\n{}", run.stdout);
    assert_eq!(pinned(&host, "slurm"), FIRST);
    let reused = line(&run.stdout, "reusing");
    assert!(
        reused.starts_with(&format!(
            "reusing {FIRST}: it was made from these same inputs"
        )) && reused.contains("--force builds anyway"),
        "{reused}"
    );
    assert!(
        run.stdout
            .contains(&format!("slurm: {SLURM_PINNED} -> {FIRST}")),
        "{}",
        run.stdout
    );
    let requests: Vec<String> = host.api().http_requests()[requests_before..].to_vec();
    assert_eq!(
        reads_side_by_side(requests),
        [
            "GET /compute/v1/projects/determined-ai/global/images",
            "GET /compute/v1/projects/schedmd-slurm-public/global/images/family/slurm-gcp-6-3-ubuntu-2004-lts",
        ],
        "the source, and one listing that finds the image to reuse and is the summary"
    );
    assert!(host.api().only_reads());

    // `images` marks the image a build now would reuse, and says what each is made from.
    let out = host.run(&["images", "--wide"]).ok().stdout;
    let listed = |name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed\n{out}"))
    };
    let first = listed(FIRST);
    assert!(
        first.contains("a build now reuses it")
            && first.contains("launcher 3.3.1-2")
            && first.contains(&format!("source {SLURM_SOURCE}")),
        "{out}"
    );
    let old = listed(SLURM_PINNED);
    assert!(
        !old.contains("reuses") && old.contains("launcher 3.3.0-0") && old.contains("source ?"),
        "{out}"
    );

    // A second build of the same inputs once images.conf pins the image changes nothing.
    let run = host.run(&["build", "--offline"]).ok();
    assert_eq!(builds(&host), 1);
    assert!(
        run.stdout.contains(&format!("already pins {FIRST}")),
        "{}",
        run.stdout
    );

    // --force builds anyway, and says what it could have reused.
    let run = host.run(&["build", "--offline", "--force"]).ok();
    assert_eq!(builds(&host), 2);
    assert_eq!(
        line(&run.stdout, "building"),
        format!(
            "building because of --force, although {FIRST} was made from these same inputs \
             (against {FIRST}, which images.conf pins: inputs unchanged)"
        )
    );
    assert_eq!(pinned(&host, "slurm"), SECOND);
}

/// After a build pinned an image labelled with the current inputs.
#[test]
fn changing_any_one_input_builds_again_and_names_it_as_the_reason() {
    let Some((host, _)) = built_once() else {
        return;
    };
    let builds_before = builds(&host);
    let newer_source = "slurm-gcp-6-3-ubuntu-2004-lts-v20240301";
    type Change<'a> = Box<dyn Fn(&HostCopy) + 'a>;
    let changes: Vec<(Change, String)> = vec![
        (
            Box::new(|h: &HostCopy| h.write("tools/slurm/packer/static/motd", "a new motd\n")),
            "static/ changed".into(),
        ),
        (
            Box::new(|h: &HostCopy| {
                let playbook = h.read("tools/slurm/packer/ansible-playbook.yml");
                h.write(
                    "tools/slurm/packer/ansible-playbook.yml",
                    playbook + "\n# changed\n",
                );
            }),
            "playbook changed".into(),
        ),
        (
            Box::new(|h: &HostCopy| {
                h.write(
                    "tools/slurm/packer/scripts/install-ansible.sh",
                    "#!/bin/sh\napt-get install -y ansible-core\n",
                )
            }),
            "template changed".into(),
        ),
        (
            Box::new(|h: &HostCopy| {
                let config = h.read("tools/slurm/packer/slurm-image.toml").replace(
                    "pytorch-tensorflow-cpu-dev:e960eae",
                    "pytorch-tensorflow-cpu-dev:0123abc",
                );
                h.write("tools/slurm/packer/slurm-image.toml", config);
            }),
            "variables changed".into(),
        ),
        (
            Box::new(|h: &HostCopy| {
                std::fs::remove_file(h.build_dir().join(LAUNCHER)).unwrap();
                h.write(
                    "tools/slurm/packer/build/hpe-hpc-launcher_3.3.2-0_amd64.deb",
                    b"a newer launcher",
                );
            }),
            "launcher 3.3.1-2 -> 3.3.2-0".into(),
        ),
        (
            Box::new(|h: &HostCopy| {
                h.write(
                    "tools/slurm/packer/build/hpe-hpc-launcher_3.3.2-0_amd64.deb",
                    b"other bytes, same name",
                );
            }),
            "launcher package 3.3.2-0 changed (same version, other bytes)".into(),
        ),
        (
            Box::new(move |h: &HostCopy| {
                h.api().add_source_image(
                    "schedmd-slurm-public",
                    "slurm-gcp-6-3-ubuntu-2004-lts",
                    newer_source,
                    SOURCES_CREATED + 60 * 86_400,
                )
            }),
            format!("source image {SLURM_SOURCE} -> {newer_source}"),
        ),
    ];
    for (n, (change, reason)) in changes.iter().enumerate() {
        let before = pinned(&host, "slurm");
        change(&host);
        let run = host.run(&["build", "--offline"]).ok();
        assert_eq!(
            builds(&host),
            builds_before + n + 1,
            "{reason}: packer did not run"
        );
        assert_eq!(
            line(&run.stdout, "building:"),
            format!("building: against {before}, which images.conf pins: {reason}")
        );
        assert_ne!(pinned(&host, "slurm"), before, "{reason}");
    }
    assert!(host
        .read("last.pkrvars.hcl")
        .contains(&format!("source_image = \"{newer_source}\"")));
}

/// Every file of the tree the tool may write to, with its contents.
fn snapshot(host: &HostCopy) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    for dir in ["tools", "target", "compute-images"] {
        walk(&host.path(dir), host.root(), &mut out);
    }
    out
}

/// A dry run that must write nothing, send only reads and run no packer.
fn dry_run(host: &HostCopy) -> Run {
    let before = snapshot(host);
    let requests = host.api().requests().len();
    let builds_before = builds(host);
    let run = host.run(&["build", "--offline", "--dry-run"]).ok();
    assert_eq!(snapshot(host), before, "the dry run wrote files");
    let sent = &host.api().requests()[requests..];
    assert!(
        sent.iter().all(|r| r.method == "GET"),
        "the dry run sent a mutating request: {sent:?}"
    );
    assert_eq!(builds(host), builds_before, "the dry run ran packer");
    run
}

/// After the first build.
#[test]
fn a_dry_run_says_reuse_writes_nothing_and_only_reads() {
    let Some((host, _)) = built_once() else {
        return;
    };
    let fingerprint = labels_of(&host, FIRST)["input-fingerprint"].clone();
    host.write("tools/slurm/terraform/images.conf", SEED);

    let run = dry_run(&host);
    let out = &run.stdout;
    for wanted in [
        format!("source image: {SLURM_SOURCE} (the current image of family"),
        format!("source_image = \"{SLURM_SOURCE}\""),
        format!("\"input-fingerprint\" = \"{fingerprint}\""),
        format!("# input fingerprint: {fingerprint}"),
        "packer build -var-file=target/slurm-image/slurm.pkrvars.hcl .".to_string(),
        format!("# reusing {FIRST}: it was made from these same inputs"),
        format!(
            "# then in tools/slurm/terraform/images.conf: `slurm: {SLURM_PINNED}` -> `slurm: {FIRST}`"
        ),
    ] {
        assert!(out.contains(&wanted), "{wanted}\n{out}");
    }
    assert!(!out.contains("could not find out"), "{out}");
}

/// After the first build: an image is there, but none made from the inputs changed here.
#[test]
fn a_dry_run_says_why_it_builds_and_what_it_could_not_find_out() {
    // Its last run is the built binary's real gcloud, cut off from the network.
    if require_tool("gcloud").is_none() {
        return;
    }
    let Some((host, _)) = built_once() else {
        return;
    };
    host.write("tools/slurm/terraform/images.conf", SEED);
    // Inputs no image was made from, so the dry run builds.
    host.write("tools/slurm/packer/static/motd", "a motd no image has\n");
    let out = dry_run(&host).stdout;
    for wanted in [
        format!("# building: against {SLURM_PINNED}, which images.conf pins: no labels"),
        format!(
            "`slurm: {SLURM_PINNED}` -> `slurm: det-environments-slurm-ci-<timestamp>, the image packer builds`"
        ),
    ] {
        assert!(out.contains(&wanted), "{wanted}\n{out}");
    }

    // Without the network it still shows the plan, says what it could not find out, and
    // exits as the real build would stop.
    let before = snapshot(&host);
    let run = host
        .run_binary_env(
            &["build", "--offline", "--dry-run"],
            &[(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
                "http://127.0.0.1:9/compute/v1/",
            )],
        )
        .stops();
    assert_eq!(snapshot(&host), before);
    let unknown = &run.stdout[run
        .stdout
        .find("# could not find out")
        .unwrap_or_else(|| panic!("{}", run.stdout))..];
    for wanted in [
        "source image: resolving the source image family slurm-gcp-6-3-ubuntu-2004-lts",
        "input fingerprint: it covers the source image, which could not be resolved",
        "reuse: whether an image made from these inputs exists",
    ] {
        assert!(unknown.contains(wanted), "{wanted}\n{}", run.stdout);
    }
}

/// Two images from the same inputs (a build, then `build --force`): a build reuses one of
/// them, and `images` marks that one alone, the one `build --dry-run` names.
#[test]
fn after_a_forced_rebuild_images_marks_the_one_image_a_build_reuses() {
    let Some(host) = host() else { return };
    host.run(&["build", "--offline"]).ok();
    host.run(&["build", "--offline", "--force"]).ok();
    assert_eq!(builds(&host), 2);
    assert_eq!(
        labels_of(&host, FIRST)["input-fingerprint"],
        labels_of(&host, SECOND)["input-fingerprint"]
    );

    let dry = host.run(&["build", "--offline", "--dry-run"]).ok();
    let named = line(&dry.stdout, "# reusing ")
        .strip_prefix("# reusing ")
        .and_then(|rest| rest.split(':').next())
        .unwrap()
        .to_string();
    assert_eq!(named, pinned(&host, "slurm"));

    let images = host.run(&["images"]).ok();
    let marked: Vec<&str> = images
        .stdout
        .lines()
        .filter(|l| l.starts_with('*'))
        .filter_map(|l| l[1..].split_whitespace().next())
        .collect();
    assert_eq!(marked, [named.as_str()], "{}", images.stdout);
}
