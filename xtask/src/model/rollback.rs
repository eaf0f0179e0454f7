//! Which image a rollback restores, and whether an image may be pinned by hand: decisions over
//! images.conf's history and the project's images.

use anyhow::bail;

use crate::model::image::{wm_of_image, DeprecationState, Image, Verification};
use crate::model::prune_plan::image_names_in;
use crate::model::WorkloadManager;

/// A rollback: the image it pins again, and the pinned one it revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    pub wm: WorkloadManager,
    /// The image images.conf pins now, which the rollback revokes; `exists`: it is still in
    /// the project, so it can be labelled and deprecated.
    pub revoked: String,
    pub revoked_exists: bool,
    /// The image pinned again.
    pub restored: String,
    /// The restored image is deprecated (a prune's first step): it is made ACTIVE again.
    pub reactivate: bool,
}

/// The images `wm` had pinned, newest first, from images.conf as each commit left it (newest
/// first), each image once. A version of the file that names no image of `wm`, or two (a
/// broken hand edit), says nothing.
pub fn pins_in_history(history: &[String], wm: WorkloadManager) -> Vec<String> {
    let mut pins: Vec<String> = Vec::new();
    for text in history {
        let named: Vec<String> = image_names_in(text)
            .into_iter()
            .filter(|name| wm_of_image(name) == Some(wm))
            .collect();
        if let [only] = named.as_slice() {
            if !pins.contains(only) {
                pins.push(only.clone());
            }
        }
    }
    pins
}

/// Why `image` cannot be pinned for `wm` whatever the user says: it is not one of this tool's
/// images of `wm`, or it does not boot.
fn unbootable(image: &Image, wm: WorkloadManager) -> Option<String> {
    let name = &image.name;
    if image.wm() != Some(wm) {
        return Some(format!(
            "{name} is not a {wm} image this tool builds (det-environments-{wm}-ci-...)"
        ));
    }
    if !image.is_ready() {
        return Some(format!(
            "{name} is {}, not READY: it cannot boot",
            image.status
        ));
    }
    match image.deprecation.as_ref().map(|d| d.state) {
        Some(state @ (DeprecationState::Obsolete | DeprecationState::Deleted)) => Some(format!(
            "{name} is {state}: GCE boots no VM from it any more"
        )),
        _ => None,
    }
}

/// Decides a rollback of `wm` from `current` (what images.conf pins now): to `to` when given,
/// else to the newest image images.conf pinned before (`history`, newest first) that no
/// rollback revoked. That image must still exist, boot, and not have failed verification; the
/// errors name the fix.
pub fn rollback(
    wm: WorkloadManager,
    current: &str,
    history: &[String],
    images: &[Image],
    to: Option<&str>,
) -> anyhow::Result<Rollback> {
    let find = |name: &str| images.iter().find(|image| image.name == name);
    let target = match to {
        Some(to) => to.to_string(),
        None => {
            let earlier: Vec<String> = pins_in_history(history, wm)
                .into_iter()
                .filter(|name| name != current)
                .collect();
            // An image revoked by an earlier rollback is what that rollback went back from:
            // going back again passes it.
            let Some(previous) = earlier
                .iter()
                .find(|name| !find(name).is_some_and(Image::is_revoked))
            else {
                bail!(
                    "images.conf's git history pins no {wm} image before {current}: name the image to go \
                     back to with `cargo xtask slurm-image rollback --wm {wm} --to IMAGE` (`cargo xtask \
                     slurm-image images` lists them)"
                );
            };
            previous.clone()
        }
    };
    if target == current {
        bail!("{current} is pinned already: name another image with --to IMAGE");
    }
    let older = |why: String| -> anyhow::Error {
        let how = match to {
            Some(_) => "name another image with --to IMAGE".to_string(),
            None => format!(
                "name the image to go back to with `cargo xtask slurm-image rollback --wm {wm} --to IMAGE`"
            ),
        };
        anyhow::anyhow!("cannot roll back {wm} to {target}: {why}; {how}")
    };
    let Some(image) = find(&target) else {
        return Err(older(format!("{target} is no longer in the project")));
    };
    if let Some(why) = unbootable(image, wm) {
        return Err(older(why));
    }
    if image.verification() == Verification::Failed {
        return Err(older(format!("{target} failed verification")));
    }
    if image.is_revoked() {
        return Err(older(format!("{target} was revoked by a rollback")));
    }
    Ok(Rollback {
        wm,
        revoked: current.to_string(),
        revoked_exists: find(current).is_some(),
        restored: target,
        reactivate: image.deprecation.is_some(),
    })
}

/// How a pin by hand goes: what the image is, said with the pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinnedAs {
    Verified,
    /// Pinned with `--unverified`, with what its labels say of it.
    Unverified(Verification),
}

/// Whether `image` may be pinned for `wm` by hand (`pin`, `verify --pin`): a READY image of
/// `wm` that boots; verified, unless `unverified` allows otherwise; not revoked, unless
/// `allow_revoked`. The errors name the fix.
pub fn pinnable(
    image: &Image,
    wm: WorkloadManager,
    unverified: bool,
    allow_revoked: bool,
) -> anyhow::Result<PinnedAs> {
    let name = &image.name;
    if let Some(why) = unbootable(image, wm) {
        bail!("{why}: pin another image");
    }
    if image.is_revoked() && !allow_revoked {
        bail!(
            "{name} was revoked by a rollback: no build reuses it and it is not pinned again unless asked; \
             to pin it all the same, add --allow-revoked"
        );
    }
    match (image.verification(), unverified) {
        (Verification::Verified, _) => Ok(PinnedAs::Verified),
        (verification, true) => Ok(PinnedAs::Unverified(verification)),
        (Verification::Failed, false) => bail!(
            "{name} failed verification: `cargo xtask slurm-image verify {name} --pin` verifies it again and pins \
             it on a pass; `cargo xtask slurm-image pin {name} --unverified` pins it anyway"
        ),
        (Verification::Unverified, false) => bail!(
            "{name} was never verified: `cargo xtask slurm-image verify {name} --pin` boots it, runs the checks \
             and pins it on a pass; `cargo xtask slurm-image pin {name} --unverified` pins it without"
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::image::{Deprecation, ImageStatus, REVOKED};
    use WorkloadManager::{Pbs, Slurm};

    fn image(name: &str, labels: &[(&str, &str)]) -> Image {
        Image {
            name: name.to_string(),
            family: None,
            creation_timestamp: String::new(),
            created: Some(1),
            status: ImageStatus::Ready,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            description: None,
            deprecation: None,
        }
    }

    fn conf(slurm: &str) -> String {
        format!("slurm: det-environments-slurm-ci-{slurm}\npbs: det-environments-pbs-ci-1\n")
    }

    fn slurm(n: &str) -> String {
        format!("det-environments-slurm-ci-{n}")
    }

    #[test]
    fn the_history_gives_each_pin_once_newest_first() {
        let history = [
            conf("3"),
            conf("2"),
            "slurm: det-environments-slurm-ci-9 det-environments-slurm-ci-8\n".to_string(),
            conf("2"),
            conf("1"),
            "pbs: det-environments-pbs-ci-1\n".to_string(),
        ];
        assert_eq!(
            pins_in_history(&history, Slurm),
            [slurm("3"), slurm("2"), slurm("1")]
        );
        assert_eq!(
            pins_in_history(&history, Pbs),
            ["det-environments-pbs-ci-1"]
        );
    }

    #[test]
    fn a_rollback_after_a_build_goes_back_to_the_pin_of_head() {
        // The build pinned 3 in the working tree; HEAD still pins 2.
        let history = [conf("2"), conf("1")];
        let images = [
            image(&slurm("1"), &[]),
            image(&slurm("2"), &[]),
            image(&slurm("3"), &[]),
        ];
        assert_eq!(
            rollback(Slurm, &slurm("3"), &history, &images, None).unwrap(),
            Rollback {
                wm: Slurm,
                revoked: slurm("3"),
                revoked_exists: true,
                restored: slurm("2"),
                reactivate: false,
            }
        );
    }

    #[test]
    fn a_second_rollback_passes_the_image_the_first_revoked() {
        // After a release committed 3 and a rollback pinned 2 in the working tree, 3 is revoked;
        // rolling back again goes to 1, not back to 3.
        let history = [conf("3"), conf("2"), conf("1")];
        let mut deprecated = image(&slurm("1"), &[]);
        deprecated.deprecation = Some(Deprecation {
            state: DeprecationState::Deprecated,
            replacement: None,
            since: None,
        });
        let images = [
            deprecated,
            image(&slurm("2"), &[]),
            image(&slurm("3"), &[(REVOKED, "2024-06-01")]),
        ];
        let back = rollback(Slurm, &slurm("2"), &history, &images, None).unwrap();
        assert_eq!(
            (back.restored.as_str(), back.reactivate),
            (slurm("1").as_str(), true)
        );
    }

    #[test]
    fn a_rollback_refuses_a_gone_or_failed_image_and_names_the_fix() {
        let history = [conf("2"), conf("1")];
        let gone = rollback(
            Slurm,
            &slurm("3"),
            &history,
            &[image(&slurm("3"), &[])],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            gone.starts_with(&format!(
                "cannot roll back slurm to {}: {} is no longer in the project",
                slurm("2"),
                slurm("2")
            )) && gone.ends_with("`cargo xtask slurm-image rollback --wm slurm --to IMAGE`"),
            "{gone}"
        );
        let images = [
            image(&slurm("2"), &[("verification", "failed")]),
            image(&slurm("3"), &[]),
        ];
        let failed = rollback(Slurm, &slurm("3"), &history, &images, None)
            .unwrap_err()
            .to_string();
        assert!(failed.contains("failed verification"), "{failed}");
        // --to goes past it.
        let images = [image(&slurm("1"), &[]), image(&slurm("3"), &[])];
        let to = rollback(Slurm, &slurm("3"), &history, &images, Some(&slurm("1"))).unwrap();
        assert_eq!(to.restored, slurm("1"));
        let pbs = rollback(
            Slurm,
            &slurm("3"),
            &[],
            &[image("det-environments-pbs-ci-1", &[])],
            Some("det-environments-pbs-ci-1"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            pbs.contains("is not a slurm image this tool builds"),
            "{pbs}"
        );
        let nothing = rollback(Slurm, &slurm("3"), &[conf("3")], &[], None)
            .unwrap_err()
            .to_string();
        assert!(nothing.contains("pins no slurm image before"), "{nothing}");
    }

    #[test]
    fn a_pin_by_hand_is_verified_or_says_unverified_and_refuses_a_revoked_image() {
        let verified = image(&slurm("1"), &[("verification", "verified")]);
        assert_eq!(
            pinnable(&verified, Slurm, false, false).unwrap(),
            PinnedAs::Verified
        );
        let never = image(&slurm("2"), &[]);
        let e = pinnable(&never, Slurm, false, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("was never verified")
                && e.contains("pin det-environments-slurm-ci-2 --unverified"),
            "{e}"
        );
        assert_eq!(
            pinnable(&never, Slurm, true, false).unwrap(),
            PinnedAs::Unverified(Verification::Unverified)
        );
        let failed = image(&slurm("3"), &[("verification", "failed")]);
        let e = pinnable(&failed, Slurm, false, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("failed verification")
                && e.contains("verify det-environments-slurm-ci-3 --pin"),
            "{e}"
        );
        let revoked = image(
            &slurm("4"),
            &[("verification", "verified"), (REVOKED, "2024-06-01")],
        );
        let e = pinnable(&revoked, Slurm, true, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("revoked by a rollback") && e.ends_with("add --allow-revoked"),
            "{e}"
        );
        assert_eq!(
            pinnable(&revoked, Slurm, false, true).unwrap(),
            PinnedAs::Verified
        );
        let e = pinnable(&verified, Pbs, true, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a pbs image"), "{e}");
        let mut obsolete = verified.clone();
        obsolete.deprecation = Some(Deprecation {
            state: DeprecationState::Obsolete,
            replacement: None,
            since: None,
        });
        let e = pinnable(&obsolete, Slurm, true, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is OBSOLETE"), "{e}");
    }
}
