//! pin, run in-process against the loopback Compute API: an existing image pinned without a VM,
//! verified or only when told, and a revoked image refused by `pin` and `verify --pin` unless
//! allowed.

use crate::support::HostCopy;

const VERIFIED: &str = "det-environments-pbs-ci-1717100000";
const UNVERIFIED: &str = "det-environments-pbs-ci-1717200000";
const REVOKED: &str = "det-environments-slurm-ci-1717300000";

/// A host copy whose project holds a verified and a never-verified PBS image and a revoked
/// SLURM image.
fn host() -> Option<HostCopy> {
    Some(HostCopy::with_images(&[
        (VERIFIED, &[("verification", "verified")]),
        (UNVERIFIED, &[]),
        (
            REVOKED,
            &[("verification", "verified"), ("revoked", "2024-06-01")],
        ),
    ]))
}

fn images_conf(host: &HostCopy) -> String {
    host.read("tools/slurm/terraform/images.conf")
}

#[test]
fn pin_pins_a_verified_image_for_its_workload_manager_and_says_so() {
    let Some(host) = host() else { return };
    let run = host.run(&["pin", VERIFIED]).ok();
    assert!(
        run.stdout
            .contains(&format!("pinning {VERIFIED} for pbs: it is verified")),
        "{}",
        run.stdout
    );
    assert!(images_conf(&host).contains(&format!("pbs: {VERIFIED}")));
    assert!(host.api().instance_inserts().is_empty());
}

#[test]
fn pin_refuses_an_unverified_image_unless_told_and_then_says_unverified() {
    let Some(host) = host() else { return };
    let before = images_conf(&host);
    host.run(&["pin", UNVERIFIED]).fails_with(&[
        &format!("{UNVERIFIED} was never verified"),
        &format!("`cargo xtask slurm-image verify {UNVERIFIED} --pin`"),
        &format!("`cargo xtask slurm-image pin {UNVERIFIED} --unverified`"),
    ]);
    assert_eq!(images_conf(&host), before);
    let run = host.run(&["pin", UNVERIFIED, "--unverified"]).ok();
    assert!(
        run.stdout.contains(&format!(
            "pinning {UNVERIFIED} for pbs unverified, as asked (its labels say: never verified)"
        )),
        "{}",
        run.stdout
    );
    assert!(images_conf(&host).contains(&format!("pbs: {UNVERIFIED}")));
}

#[test]
fn a_revoked_image_is_pinned_by_neither_pin_nor_verify_pin_unless_allowed() {
    let Some(host) = host() else { return };
    let before = images_conf(&host);
    host.run(&["pin", REVOKED]).fails_with(&[
        &format!("{REVOKED} was revoked by a rollback"),
        "add --allow-revoked",
    ]);
    host.run(&["verify", REVOKED, "--pin"]).fails_with(&[
        &format!("{REVOKED} was revoked by a rollback"),
        "add --allow-revoked",
    ]);
    assert_eq!(images_conf(&host), before);
    // Refused before any VM boots.
    assert!(host.api().instance_inserts().is_empty());
    host.run(&["pin", REVOKED, "--allow-revoked"]).ok();
    assert!(images_conf(&host).contains(&format!("slurm: {REVOKED}")));
}
