//! One plan: a dry run and then the run on the same state decide the same launcher, source
//! image, variables, reuse or build, and images.conf change.

use crate::support::{require_tool, HostCopy, Run, STAND_IN_PACKER};

const LAUNCHER: &str = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
const PINNED: &str = "det-environments-slurm-ci-1717047568";
const SEED: &str =
    "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";
/// The first image the stand-in packer builds for slurm.
const FIRST: &str = "det-environments-slurm-ci-1800000000";
const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

/// A host copy with a launcher in build/, pinning an older slurm image. `None` (after a loud
/// skip) without gcloud; under CI that is a failure.
fn host() -> Option<HostCopy> {
    require_tool("gcloud")?;
    let host = HostCopy::new();
    host.stand_in("packer", STAND_IN_PACKER);
    host.write(IMAGES_CONF, SEED);
    host.write(
        &format!("tools/slurm/packer/build/{LAUNCHER}"),
        b"launcher package bytes",
    );
    host.api().add_image(
        PINNED,
        1_717_047_568,
        "READY",
        &[],
        "HPC slurm testing VM hpe-hpc-launcher_3.3.0-0_amd64.deb",
    );
    Some(host)
}

/// The line of `out` that starts with `start`, without it.
fn after<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in\n{out}"))
}

/// The variables file a dry run prints between its `would contain:` and `and run` lines.
fn shown_variables(stdout: &str) -> &str {
    let start = stdout
        .find("would contain:\n")
        .unwrap_or_else(|| panic!("no variables in\n{stdout}"));
    let rest = &stdout[start + "would contain:\n".len()..];
    &rest[..rest.find("\n# and run").unwrap()]
}

fn builds(host: &HostCopy) -> usize {
    host.packer_calls()
        .iter()
        .filter(|c| c.contains("| build"))
        .count()
}

/// What the run said, on either stream.
fn said(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

#[test]
fn a_build_does_what_its_dry_run_planned_whether_it_builds_or_reuses() {
    let Some(host) = host() else { return };

    // Building: nothing made from these inputs exists yet.
    let dry = host.run(&["build", "--offline", "--dry-run"]).ok();
    assert_eq!(host.read(IMAGES_CONF), SEED, "a dry run changes nothing");
    assert_eq!(
        after(&dry.stdout, "launcher: "),
        format!("{LAUNCHER} (in tools/slurm/packer/build)")
    );
    let source = after(&dry.stdout, "source image: ").to_string();
    let verdict = after(&dry.stdout, "# building: ").to_string();
    assert_eq!(
        after(&dry.stdout, "# then in tools/slurm/terraform/images.conf: "),
        format!(
            "`slurm: {PINNED}` -> `slurm: det-environments-slurm-ci-<timestamp>, the image packer builds`"
        )
    );
    let variables = shown_variables(&dry.stdout).to_string();

    let run = host.run(&["build", "--offline"]).ok();
    let said = said(&run);
    assert!(said.contains(LAUNCHER), "{said}");
    assert_eq!(after(&said, "source image: "), source);
    assert_eq!(after(&said, "building: "), verdict);
    assert_eq!(
        host.read("target/slurm-image/slurm.pkrvars.hcl").trim_end(),
        variables.trim_end(),
        "the run passes packer the variables its dry run showed"
    );
    assert_eq!(builds(&host), 1);
    assert_eq!(
        host.read(IMAGES_CONF),
        SEED.replace(PINNED, FIRST),
        "the pin the dry run promised, with packer's timestamp"
    );

    // Reusing: back to the old pin, the image just built has the same inputs.
    host.write(IMAGES_CONF, SEED);
    let dry = host.run(&["build", "--offline", "--dry-run"]).ok();
    let verdict = after(&dry.stdout, "# reusing ").to_string();
    assert!(verdict.starts_with(&format!("{FIRST}: ")), "{verdict}");
    assert_eq!(
        after(&dry.stdout, "# then in tools/slurm/terraform/images.conf: "),
        format!("`slurm: {PINNED}` -> `slurm: {FIRST}`")
    );
    assert_eq!(after(&dry.stdout, "source image: "), source);
    let variables = shown_variables(&dry.stdout).to_string();

    let run = host.run(&["build", "--offline"]).ok();
    let said = self::said(&run);
    assert_eq!(after(&said, "reusing "), verdict);
    assert_eq!(after(&said, "source image: "), source);
    assert_eq!(builds(&host), 1, "a reused image needs no packer");
    assert_eq!(host.read(IMAGES_CONF), SEED.replace(PINNED, FIRST));
    // Nothing was written for packer this time: the plan's variables are those of the image
    // reused, which its first run wrote.
    assert_eq!(
        host.read("target/slurm-image/slurm.pkrvars.hcl").trim_end(),
        variables.trim_end()
    );
}
