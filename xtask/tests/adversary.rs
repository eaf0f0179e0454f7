//! What an adversary tried (issue 16): a hostile Artifactory, pins the tool itself rejects,
//! prune's listing tricks, a symlinked images.conf, the token in packer's environment, oversized
//! inputs; each through the built xtask.

mod support;

use support::{HostCopy, STAND_IN_PACKER};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";
const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

fn host_with_launcher() -> HostCopy {
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(IMAGES_CONF, SEED);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    host
}

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
    let host = host_with_launcher();
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
    let host = host_with_launcher();
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

/// Puts a packer first on PATH that runs the usual stand-in, then renames the image in the
/// manifest it wrote from `from` to `to`, as a template naming its images otherwise would.
fn packer_renaming_its_image(host: &HostCopy, from: &str, to: &str) {
    host.stand_in("packer-stand-in", STAND_IN_PACKER);
    host.stand_in(
        "packer",
        &format!(
            r#"#!/usr/bin/env bash
"$(dirname "$0")/packer-stand-in" "$@" || exit $?
for arg in "$@"; do case "$arg" in -var-file=*) var_file="${{arg#-var-file=}}" ;; esac; done
[ "$1" = build ] || exit 0
manifest=$(sed -n 's/^manifest_path = "\(.*\)"$/\1/p' "$var_file")
sed -i 's/"{from}/"{to}/g' "${{manifest:-build/manifest.json}}"
"#
        ),
    );
}

#[test]
fn a_build_never_pins_an_image_of_another_workload_manager() {
    let host = host_with_launcher();
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
        "not pinning det-environments-slurm-ci-1800000000, the latest build in target/slurm-image/pbs-manifest.json",
        "tools/slurm/packer/main.pkr.hcl line 47: image_name = \"det-environments-slurm-ci-{{timestamp}}\"",
        "det-environments-slurm-ci-1800000000 is not a pbs image",
        "images.conf left as it is",
    ]);
    assert_eq!(host.read(IMAGES_CONF), SEED, "{}", run.stderr);
}

#[test]
fn a_build_never_pins_another_teams_image() {
    let host = host_with_launcher();
    packer_renaming_its_image(
        &host,
        "det-environments-slurm-ci-1800000000",
        "other-team-image-1",
    );
    host.run(&["build", "--offline"]).fails_with(&[
        "not pinning other-team-image-1, the latest build in target/slurm-image/slurm-manifest.json",
        "other-team-image-1 is not a slurm image",
    ]);
    assert_eq!(host.read(IMAGES_CONF), SEED);
    // The images a cluster reads are still the ones the tool accepts.
    host.run(&["build", "--offline", "--dry-run"]).ok();
}
