//! Hostile input through the built xtask: an images.conf that is symlinked, merge-conflicted,
//! misspelt or oversized, a huge config value, an oversized manifest; each is refused by name, or
//! handled without harm, and nothing is read whole that should not be.

use crate::support::{packer_then, HostCopy, SEED};

const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

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
