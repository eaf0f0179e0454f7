//! The prune planner: which images of each workload manager to keep and why, which to
//! deprecate, and which deprecated ones to delete.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use crate::model::image::wm_of_image;
use crate::model::image::{Image, ImageStatus, Verification};
use crate::model::launcher_version::LauncherPackage;
use crate::model::WorkloadManager;

/// Why an image is kept, in the words the plan prints.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    PinnedInImagesConf,
    /// Pinned in images.conf on a release branch, a release tag or `HEAD`, named as the plan
    /// shows it (`release-0.1`, `origin/slurm-images-2024-06-01`, `tag v0.29.0`).
    PinnedOn(String),
    Labelled(String),
    Status(ImageStatus),
    /// One of the `keep` best of its workload manager: verified first, then the newest.
    Newest(usize),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::PinnedInImagesConf => f.write_str("pinned in images.conf"),
            Reason::PinnedOn(place) => write!(f, "pinned on {place}"),
            Reason::Labelled(value) => write!(f, "labelled branch={value}"),
            Reason::Status(status) => write!(f, "status {status}"),
            Reason::Newest(n) => write!(f, "newest {n}"),
        }
    }
}

/// Why an image that nothing protects goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Going {
    /// It is not among the `keep` best: `verification` says how it ranked.
    BeyondKeep {
        keep: usize,
        verification: Verification,
    },
    /// A rollback took it back: no build reuses it, so it takes no keep place.
    Revoked,
    /// Someone deprecated it without recording when: deprecated again, now, so that its grace
    /// has a start.
    UndatedDeprecation,
}

impl fmt::Display for Going {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Going::BeyondKeep {
                keep,
                verification: Verification::Verified,
            } => write!(f, "verified, but older than the {keep} kept"),
            Going::BeyondKeep { keep, verification } => {
                write!(f, "{verification}, not among the {keep} kept")
            }
            Going::Revoked => f.write_str("revoked by a rollback"),
            Going::UndatedDeprecation => {
                f.write_str("deprecated without a date: deprecated again to start its grace")
            }
        }
    }
}

/// What prune does with one image. An image leaves in two steps: it is deprecated first (it
/// still boots, with a warning, for anyone who pins it by name), and deleted by a later prune
/// once it has been deprecated for the grace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Kept, for every reason that applies (never empty).
    Keep(Vec<Reason>),
    /// The first step: deprecated now, `replacement` (the workload manager's pin) named as what
    /// replaces it.
    Deprecate {
        why: Going,
        replacement: Option<String>,
    },
    /// Deprecated, and within its grace until `until` (seconds since the epoch).
    InGrace { until: i64 },
    /// Deprecated at `since`, longer ago than the grace: the second step deletes it.
    Delete { since: i64 },
}

/// One image and what prune does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub image: Image,
    pub decision: Decision,
}

/// What protects images from pruning besides their rank.
#[derive(Debug, Clone, Default)]
pub struct Protections {
    /// The image the working tree's images.conf pins for each workload manager: never pruned,
    /// and the replacement named on the images of its workload manager that prune deprecates.
    pub pinned: BTreeMap<WorkloadManager, String>,
    /// Release branch, release tag or `HEAD` (as the plan shows it) -> the images its
    /// images.conf names.
    pub pinned_on: BTreeMap<String, BTreeSet<String>>,
}

/// How much prune keeps, and when.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// How many unprotected images of each workload manager are kept.
    pub keep: usize,
    /// How long an image stays deprecated before prune deletes it, in seconds.
    pub grace_s: i64,
    /// Seconds since the epoch, now.
    pub now: i64,
}

/// Why a listed image is left out of the plan: it is not this tool's to prune.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeftAlone {
    /// Its name is not `det-environments-<wm>-ci-...`.
    OtherName,
    /// It is in another family than the template builds into (`None`: in no family).
    OtherFamily(Option<String>),
}

/// The workload manager of a listed image this tool may prune: one with a name this tool builds,
/// in a family the template builds into (`families`: the template's literal `image_family`
/// values; when it has none, its images have no family). Anything else is left alone.
pub fn ours(
    name: &str,
    family: Option<&str>,
    families: &BTreeSet<String>,
) -> Result<WorkloadManager, LeftAlone> {
    let wm = wm_of_image(name).ok_or(LeftAlone::OtherName)?;
    let belongs = match family {
        Some(family) => families.contains(family),
        None => families.is_empty(),
    };
    if belongs {
        Ok(wm)
    } else {
        Err(LeftAlone::OtherFamily(family.map(str::to_string)))
    }
}

/// What the plan leaves alone, for a note under it; `None` when it leaves nothing alone.
/// `families` are the ones the template builds into, `duplicates` the names listed more than
/// once.
pub fn left_alone_note(
    left: &[LeftAlone],
    families: &BTreeSet<String>,
    duplicates: usize,
) -> Option<String> {
    let mut parts = Vec::new();
    let names = left.iter().filter(|l| **l == LeftAlone::OtherName).count();
    if names > 0 {
        parts.push(format!(
            "{names} image(s) whose names this tool does not build (det-environments-<wm>-ci-...)"
        ));
    }
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    for left in left {
        if let LeftAlone::OtherFamily(family) = left {
            let shown = family.as_deref().unwrap_or("no family").to_string();
            *others.entry(shown).or_default() += 1;
        }
    }
    if !others.is_empty() {
        let target = if families.is_empty() {
            "no family".to_string()
        } else {
            families
                .iter()
                .map(|f| {
                    if f.is_empty() {
                        "an unreadable image_family"
                    } else {
                        f
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let listed = others
            .iter()
            .map(|(family, n)| format!("{n} in {family}"))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "images named like this tool's but of another family than the template builds into ({target}): {listed}"
        ));
    }
    if duplicates > 0 {
        parts.push(format!(
            "{duplicates} image name(s) listed more than once by gcloud, each counted once"
        ));
    }
    (!parts.is_empty()).then(|| format!("left alone: {}", parts.join("; ")))
}

/// The images with each name once, and how many names were listed more than once. Copies of a
/// name that disagree are merged towards keeping: a copy that is not READY, or that carries a
/// label, protects the name.
pub fn unique(images: Vec<Image>) -> (Vec<Image>, usize) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut duplicated = BTreeSet::new();
    let mut out: Vec<Image> = Vec::new();
    for image in images {
        match seen.get(&image.name) {
            Some(&at) => {
                duplicated.insert(image.name.clone());
                let first = &mut out[at];
                if !image.is_ready() {
                    first.status = image.status;
                }
                for (key, value) in image.labels {
                    first.labels.entry(key).or_insert(value);
                }
            }
            None => {
                seen.insert(image.name.clone(), out.len());
                out.push(image);
            }
        }
    }
    (out, duplicated.len())
}

/// Every name of one of our images that appears anywhere in `text` (an images.conf of a
/// branch). Reading words instead of parsing the file means that a branch whose images.conf is
/// broken by a hand edit still protects the images it names: protection errs towards keeping.
pub fn image_names_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        .filter(|word| wm_of_image(word).is_some())
        .map(str::to_string)
        .collect()
}

/// Plans a prune. Never touched: images pinned in images.conf here, on a release branch, a
/// release tag or `HEAD`, `branch`-labelled images and images that are not READY. Of the rest,
/// per workload manager, the `keep` best stay (verified before unverified before failed, then
/// the newest); the others are deprecated with the workload manager's pin as replacement. An
/// image already deprecated takes no keep place: it is deleted once deprecated for the grace.
///
/// The result is grouped by workload manager (SLURM first), newest first; images created in
/// the same second are ordered by name, descending, so the plan never depends on the order the
/// API answered in.
pub fn plan(images: Vec<Image>, protections: &Protections, policy: Policy) -> Vec<Planned> {
    // An image listed twice must take one of the `keep` places, not two.
    let (mut images, _) = unique(images);
    images.sort_by(|a, b| {
        (
            a.wm(),
            std::cmp::Reverse(a.created),
            std::cmp::Reverse(&a.name),
        )
            .cmp(&(
                b.wm(),
                std::cmp::Reverse(b.created),
                std::cmp::Reverse(&b.name),
            ))
    });
    let kept = best(&images, protections, policy.keep);
    images
        .into_iter()
        .map(|image| {
            let decision = decide(&image, protections, policy, &kept);
            Planned { image, decision }
        })
        .collect()
}

/// The reasons nothing may deprecate or delete `image`; empty when it is not protected.
fn protected(image: &Image, protections: &Protections) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if protections.pinned.values().any(|pin| *pin == image.name) {
        reasons.push(Reason::PinnedInImagesConf);
    }
    for (place, names) in &protections.pinned_on {
        if names.contains(&image.name) {
            reasons.push(Reason::PinnedOn(place.clone()));
        }
    }
    if let Some(value) = image.labels.get("branch") {
        reasons.push(Reason::Labelled(value.clone()));
    }
    if !image.is_ready() {
        reasons.push(Reason::Status(image.status.clone()));
    }
    reasons
}

/// The names of the images that keep a place: per workload manager, the `keep` best of those
/// nothing protects, which are neither deprecated nor revoked.
fn best(images: &[Image], protections: &Protections, keep: usize) -> BTreeSet<String> {
    let mut ranked: Vec<&Image> = images
        .iter()
        .filter(|image| {
            protected(image, protections).is_empty()
                && image.deprecation.is_none()
                && !image.is_revoked()
        })
        .collect();
    // Verified first, then the newest; the name settles a tie, as in the plan's order.
    ranked.sort_by(|a, b| {
        (
            a.wm(),
            std::cmp::Reverse(a.verification()),
            std::cmp::Reverse(a.created),
            std::cmp::Reverse(&a.name),
        )
            .cmp(&(
                b.wm(),
                std::cmp::Reverse(b.verification()),
                std::cmp::Reverse(b.created),
                std::cmp::Reverse(&b.name),
            ))
    });
    let mut taken: BTreeMap<Option<WorkloadManager>, usize> = BTreeMap::new();
    ranked
        .into_iter()
        .filter(|image| {
            let seen = taken.entry(image.wm()).or_default();
            *seen += 1;
            *seen <= keep
        })
        .map(|image| image.name.clone())
        .collect()
}

fn decide(
    image: &Image,
    protections: &Protections,
    policy: Policy,
    kept: &BTreeSet<String>,
) -> Decision {
    let reasons = protected(image, protections);
    if !reasons.is_empty() {
        return Decision::Keep(reasons);
    }
    let replacement = image
        .wm()
        .and_then(|wm| protections.pinned.get(&wm))
        .cloned();
    if let Some(deprecation) = &image.deprecation {
        return match deprecation.since {
            Some(since) if policy.now - since >= policy.grace_s => Decision::Delete { since },
            Some(since) => Decision::InGrace {
                until: since + policy.grace_s,
            },
            None => Decision::Deprecate {
                why: Going::UndatedDeprecation,
                replacement,
            },
        };
    }
    if image.is_revoked() {
        return Decision::Deprecate {
            why: Going::Revoked,
            replacement,
        };
    }
    if kept.contains(&image.name) {
        return Decision::Keep(vec![Reason::Newest(policy.keep)]);
    }
    Decision::Deprecate {
        why: Going::BeyondKeep {
            keep: policy.keep,
            verification: image.verification(),
        },
        replacement,
    }
}

/// The names a plan deletes, in plan order.
pub fn deletions(plan: &[Planned]) -> Vec<String> {
    plan.iter()
        .filter(|p| matches!(p.decision, Decision::Delete { .. }))
        .map(|p| p.image.name.clone())
        .collect()
}

/// The images a plan deprecates with their replacement, in plan order.
pub fn deprecations(plan: &[Planned]) -> Vec<(String, Option<String>)> {
    plan.iter()
        .filter_map(|p| match &p.decision {
            Decision::Deprecate { replacement, .. } => {
                Some((p.image.name.clone(), replacement.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The launcher version an image was baked with, from its description
/// (`HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb` -> `3.3.1-2`).
pub fn launcher_version(description: &str) -> Option<String> {
    description
        .split_whitespace()
        .find_map(LauncherPackage::from_file_name)
        .map(|package| package.version.to_string())
}

/// The launcher an image was built with: its `launcher` label (`3_3_1-2`), else its
/// description, which names the package even on a template without labels.
pub fn launcher_of(labels: &BTreeMap<String, String>, description: &str) -> Option<String> {
    labels
        .get(crate::model::provenance::LAUNCHER)
        .map(|value| crate::model::provenance::from_label_value(value))
        .or_else(|| launcher_version(description))
}

/// Whether a branch name matches a pattern where `*` stands for any run of characters
/// (including none) and every other character for itself, as in `release-*`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Greedy matching with backtracking to the last `*`: linear in practice, and no regex.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::image::{Deprecation, DeprecationState, REVOKED};
    use WorkloadManager::{Pbs, Slurm};

    fn image(name: &str, created: i64) -> Image {
        Image {
            name: name.to_string(),
            family: None,
            creation_timestamp: String::new(),
            created: Some(created),
            status: ImageStatus::Ready,
            labels: BTreeMap::new(),
            description: None,
            deprecation: None,
        }
    }

    fn slurm(n: i64) -> Image {
        image(&format!("det-environments-slurm-ci-{n}"), n)
    }

    fn pbs(n: i64) -> Image {
        image(&format!("det-environments-pbs-ci-{n}"), n)
    }

    fn decisions(plan: &[Planned]) -> Vec<(String, Decision)> {
        plan.iter()
            .map(|p| (p.image.name.clone(), p.decision.clone()))
            .collect()
    }

    fn keep(reasons: &[Reason]) -> Decision {
        Decision::Keep(reasons.to_vec())
    }

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn policy(keep: usize) -> Policy {
        Policy {
            keep,
            grace_s: 14 * DAY,
            now: NOW,
        }
    }

    fn pins(slurm: &str, pbs: &str) -> Protections {
        Protections {
            pinned: [
                (Slurm, format!("det-environments-slurm-ci-{slurm}")),
                (Pbs, format!("det-environments-pbs-ci-{pbs}")),
            ]
            .into(),
            pinned_on: BTreeMap::new(),
        }
    }

    fn deprecate(keep: usize, verification: Verification, replacement: &str) -> Decision {
        Decision::Deprecate {
            why: Going::BeyondKeep { keep, verification },
            replacement: Some(replacement.to_string()),
        }
    }

    fn verified(mut image: Image, how: &str) -> Image {
        image.labels.insert("verification".into(), how.into());
        image
    }

    fn deprecated(mut image: Image, since: Option<i64>) -> Image {
        image.deprecation = Some(Deprecation {
            state: DeprecationState::Deprecated,
            replacement: None,
            since,
        });
        image
    }

    #[test]
    fn beyond_the_newest_n_of_each_workload_manager_images_are_deprecated_first() {
        let images = vec![
            slurm(1),
            pbs(1),
            slurm(3),
            slurm(2),
            pbs(2),
            pbs(3),
            slurm(9),
        ];
        let plan = plan(images, &pins("9", "3"), policy(2));
        let unverified = Verification::Unverified;
        assert_eq!(
            decisions(&plan),
            vec![
                (
                    "det-environments-slurm-ci-9".into(),
                    keep(&[Reason::PinnedInImagesConf])
                ),
                (
                    "det-environments-slurm-ci-3".into(),
                    keep(&[Reason::Newest(2)])
                ),
                (
                    "det-environments-slurm-ci-2".into(),
                    keep(&[Reason::Newest(2)])
                ),
                (
                    "det-environments-slurm-ci-1".into(),
                    deprecate(2, unverified, "det-environments-slurm-ci-9")
                ),
                (
                    "det-environments-pbs-ci-3".into(),
                    keep(&[Reason::PinnedInImagesConf])
                ),
                (
                    "det-environments-pbs-ci-2".into(),
                    keep(&[Reason::Newest(2)])
                ),
                (
                    "det-environments-pbs-ci-1".into(),
                    keep(&[Reason::Newest(2)])
                ),
            ]
        );
        assert!(deletions(&plan).is_empty());
        assert_eq!(
            deprecations(&plan),
            [(
                "det-environments-slurm-ci-1".to_string(),
                Some("det-environments-slurm-ci-9".to_string())
            )]
        );
    }

    #[test]
    fn a_deprecated_image_is_deleted_once_its_grace_has_passed() {
        let images = vec![
            deprecated(slurm(1), Some(NOW - 60 * DAY)),
            deprecated(slurm(2), Some(NOW - 3 * DAY)),
            deprecated(slurm(3), None),
            slurm(4),
        ];
        let plan = plan(images, &Protections::default(), policy(6));
        assert_eq!(
            decisions(&plan),
            vec![
                (
                    "det-environments-slurm-ci-4".into(),
                    keep(&[Reason::Newest(6)])
                ),
                (
                    "det-environments-slurm-ci-3".into(),
                    Decision::Deprecate {
                        why: Going::UndatedDeprecation,
                        replacement: None
                    }
                ),
                (
                    "det-environments-slurm-ci-2".into(),
                    Decision::InGrace {
                        until: NOW + 11 * DAY
                    }
                ),
                (
                    "det-environments-slurm-ci-1".into(),
                    Decision::Delete {
                        since: NOW - 60 * DAY
                    }
                ),
            ]
        );
        assert_eq!(deletions(&plan), ["det-environments-slurm-ci-1"]);
    }

    #[test]
    fn verified_images_keep_their_places_first_and_failed_ones_go_first() {
        let images = vec![
            verified(slurm(1), "verified"),
            verified(slurm(2), "verified"),
            slurm(3),
            verified(slurm(4), "failed"),
            slurm(5),
        ];
        let plan = plan(images, &pins("0", "0"), policy(3));
        let replacement = "det-environments-slurm-ci-0";
        assert_eq!(
            decisions(&plan),
            vec![
                (
                    "det-environments-slurm-ci-5".into(),
                    keep(&[Reason::Newest(3)])
                ),
                (
                    "det-environments-slurm-ci-4".into(),
                    deprecate(3, Verification::Failed, replacement)
                ),
                (
                    "det-environments-slurm-ci-3".into(),
                    deprecate(3, Verification::Unverified, replacement)
                ),
                (
                    "det-environments-slurm-ci-2".into(),
                    keep(&[Reason::Newest(3)])
                ),
                (
                    "det-environments-slurm-ci-1".into(),
                    keep(&[Reason::Newest(3)])
                ),
            ]
        );
    }

    #[test]
    fn with_no_verification_labels_the_newest_are_kept_as_before() {
        let plan = plan(
            (1..=8).map(slurm).collect(),
            &Protections::default(),
            policy(6),
        );
        let going: Vec<String> = deprecations(&plan).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            going,
            ["det-environments-slurm-ci-2", "det-environments-slurm-ci-1"]
        );
    }

    #[test]
    fn a_revoked_image_takes_no_keep_place() {
        let mut revoked = slurm(3);
        revoked.labels.insert(REVOKED.into(), "true".into());
        let plan = plan(
            vec![slurm(1), slurm(2), revoked],
            &pins("1", "1"),
            policy(1),
        );
        assert_eq!(
            decisions(&plan)[0],
            (
                "det-environments-slurm-ci-3".into(),
                Decision::Deprecate {
                    why: Going::Revoked,
                    replacement: Some("det-environments-slurm-ci-1".into())
                }
            )
        );
        assert_eq!(plan[1].decision, keep(&[Reason::Newest(1)]));
    }

    #[test]
    fn fewer_images_than_n_deprecates_nothing() {
        let plan = plan(vec![slurm(1), slurm(2)], &Protections::default(), policy(6));
        assert!(deprecations(&plan).is_empty() && deletions(&plan).is_empty());
        assert!(plan
            .iter()
            .all(|p| p.decision == keep(&[Reason::Newest(6)])));
        assert!(super::plan(Vec::new(), &Protections::default(), policy(6)).is_empty());
    }

    #[test]
    fn ties_in_creation_time_are_broken_by_name_whatever_the_input_order() {
        let a = image("det-environments-slurm-ci-a", 100);
        let b = image("det-environments-slurm-ci-b", 100);
        let c = image("det-environments-slurm-ci-c", 100);
        for images in [
            vec![a.clone(), b.clone(), c.clone()],
            vec![c.clone(), a.clone(), b.clone()],
            vec![b.clone(), c.clone(), a.clone()],
        ] {
            let plan = plan(images, &Protections::default(), policy(2));
            let going: Vec<String> = deprecations(&plan).into_iter().map(|(n, _)| n).collect();
            assert_eq!(going, ["det-environments-slurm-ci-a"]);
            assert_eq!(plan[0].image.name, "det-environments-slurm-ci-c");
        }
    }

    #[test]
    fn protected_images_are_kept_with_every_reason_even_when_deprecated_long_ago() {
        let mut labelled = slurm(2);
        labelled
            .labels
            .insert("branch".into(), "release-0-1".into());
        labelled.labels.insert("other".into(), "x".into());
        let mut pending = slurm(3);
        pending.status = ImageStatus::Pending;
        let mut failed = slurm(4);
        failed.status = ImageStatus::Failed;
        let protections = Protections {
            pinned: [(Slurm, "det-environments-slurm-ci-1".to_string())].into(),
            pinned_on: [
                (
                    "release-0.1".to_string(),
                    ["det-environments-slurm-ci-1".to_string()].into(),
                ),
                (
                    "origin/slurm-images-2024-06-01".to_string(),
                    ["det-environments-slurm-ci-5".to_string()].into(),
                ),
                (
                    "tag v0.29.0".to_string(),
                    ["det-environments-slurm-ci-8".to_string()].into(),
                ),
            ]
            .into(),
        };
        let images = vec![
            slurm(1),
            labelled,
            pending,
            failed,
            slurm(5),
            slurm(6),
            slurm(7),
            deprecated(slurm(8), Some(NOW - 400 * DAY)),
        ];
        let plan = plan(images, &protections, policy(1));
        assert_eq!(
            decisions(&plan),
            vec![
                (
                    "det-environments-slurm-ci-8".into(),
                    keep(&[Reason::PinnedOn("tag v0.29.0".into())])
                ),
                (
                    "det-environments-slurm-ci-7".into(),
                    keep(&[Reason::Newest(1)])
                ),
                (
                    "det-environments-slurm-ci-6".into(),
                    deprecate(1, Verification::Unverified, "det-environments-slurm-ci-1")
                ),
                (
                    "det-environments-slurm-ci-5".into(),
                    keep(&[Reason::PinnedOn("origin/slurm-images-2024-06-01".into())])
                ),
                (
                    "det-environments-slurm-ci-4".into(),
                    keep(&[Reason::Status(ImageStatus::Failed)])
                ),
                (
                    "det-environments-slurm-ci-3".into(),
                    keep(&[Reason::Status(ImageStatus::Pending)])
                ),
                (
                    "det-environments-slurm-ci-2".into(),
                    keep(&[Reason::Labelled("release-0-1".into())])
                ),
                (
                    "det-environments-slurm-ci-1".into(),
                    keep(&[
                        Reason::PinnedInImagesConf,
                        Reason::PinnedOn("release-0.1".into())
                    ])
                ),
            ]
        );
    }

    #[test]
    fn all_protected_changes_nothing() {
        let mut images: Vec<Image> = (1..=4).map(slurm).collect();
        for image in &mut images {
            image.labels.insert("branch".into(), "main".into());
        }
        let plan = plan(images, &Protections::default(), policy(1));
        assert!(deletions(&plan).is_empty() && deprecations(&plan).is_empty());
    }

    #[test]
    fn an_image_listed_twice_takes_one_keep_place() {
        let mut images: Vec<Image> = (1..=8).map(slurm).collect();
        images.extend((3..=8).map(slurm));
        let plan = plan(images, &Protections::default(), policy(6));
        assert_eq!(plan.len(), 8);
        let going: Vec<String> = deprecations(&plan).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            going,
            ["det-environments-slurm-ci-2", "det-environments-slurm-ci-1"]
        );
    }

    #[test]
    fn copies_that_disagree_are_merged_towards_keeping() {
        let mut labelled = slurm(1);
        labelled.labels.insert("branch".into(), "release-1".into());
        let mut pending = slurm(2);
        pending.status = ImageStatus::Pending;
        let (images, duplicates) = unique(vec![slurm(1), slurm(2), labelled, pending, slurm(3)]);
        assert_eq!(duplicates, 2);
        assert_eq!(images.len(), 3);
        assert_eq!(
            images[0].labels.get("branch").map(String::as_str),
            Some("release-1")
        );
        assert_eq!(images[1].status, ImageStatus::Pending);
    }

    #[test]
    fn only_our_names_in_the_templates_family_are_ours() {
        let family: BTreeSet<String> = ["det-environments-slurm-ci".to_string()].into();
        let name = "det-environments-pbs-ci-1";
        assert_eq!(
            ours(name, Some("det-environments-slurm-ci"), &family),
            Ok(Pbs)
        );
        assert_eq!(
            ours(name, Some("someone-elses-family"), &family),
            Err(LeftAlone::OtherFamily(Some("someone-elses-family".into())))
        );
        assert_eq!(ours(name, None, &family), Err(LeftAlone::OtherFamily(None)));
        assert_eq!(
            ours("ubuntu-2004", Some("det-environments-slurm-ci"), &family),
            Err(LeftAlone::OtherName)
        );
        // A template without image_family makes images of no family.
        assert_eq!(ours(name, None, &BTreeSet::new()), Ok(Pbs));
        assert!(ours(name, Some("x"), &BTreeSet::new()).is_err());

        let note = left_alone_note(
            &[
                LeftAlone::OtherName,
                LeftAlone::OtherFamily(Some("someone-elses-family".into())),
                LeftAlone::OtherFamily(None),
            ],
            &family,
            1,
        )
        .unwrap();
        assert_eq!(
            note,
            "left alone: 1 image(s) whose names this tool does not build (det-environments-<wm>-ci-...); \
             images named like this tool's but of another family than the template builds into \
             (det-environments-slurm-ci): 1 in no family, 1 in someone-elses-family; \
             1 image name(s) listed more than once by gcloud, each counted once"
        );
        assert_eq!(left_alone_note(&[], &family, 0), None);
    }

    #[test]
    fn not_ready_images_do_not_take_a_newest_place() {
        let mut pending = slurm(3);
        pending.status = ImageStatus::Pending;
        let plan = plan(
            vec![slurm(1), slurm(2), pending],
            &Protections::default(),
            policy(1),
        );
        let going: Vec<String> = deprecations(&plan).into_iter().map(|(n, _)| n).collect();
        assert_eq!(going, ["det-environments-slurm-ci-1"]);
    }

    #[test]
    fn reasons_read_as_the_user_says_them() {
        let shown: Vec<String> = [
            Reason::PinnedInImagesConf,
            Reason::PinnedOn("release-1.2".into()),
            Reason::Labelled("release-1-2".into()),
            Reason::Status(ImageStatus::Pending),
            Reason::Newest(6),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            shown,
            [
                "pinned in images.conf",
                "pinned on release-1.2",
                "labelled branch=release-1-2",
                "status PENDING",
                "newest 6"
            ]
        );
        let going: Vec<String> = [
            Going::BeyondKeep {
                keep: 6,
                verification: Verification::Verified,
            },
            Going::BeyondKeep {
                keep: 6,
                verification: Verification::Failed,
            },
            Going::Revoked,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            going,
            [
                "verified, but older than the 6 kept",
                "FAILED, not among the 6 kept",
                "revoked by a rollback"
            ]
        );
    }

    #[test]
    fn image_names_are_read_from_any_images_conf_text() {
        let names = image_names_in(
            "slurm: det-environments-slurm-ci-1\r\ndet-environments-pbs-ci-2\n# note\npbs:det-environments-pbs-ci-3",
        );
        let expected: BTreeSet<String> = [
            "det-environments-pbs-ci-2",
            "det-environments-pbs-ci-3",
            "det-environments-slurm-ci-1",
        ]
        .map(String::from)
        .into();
        assert_eq!(names, expected);
    }

    #[test]
    fn launcher_versions_from_descriptions() {
        assert_eq!(
            launcher_version("HPC slurm testing VM hpe-hpc-launcher_3.3.1-2_amd64.deb").as_deref(),
            Some("3.3.1-2")
        );
        assert_eq!(launcher_version("HPC pbs testing VM"), None);
        assert_eq!(launcher_version(""), None);
        assert_eq!(
            launcher_version("HPC slurm testing VM hpe-hpc-launcher_3.3.1-rc1_amd64.deb"),
            None
        );
    }

    #[test]
    fn branch_globs() {
        assert!(glob_match("release-*", "release-0.1"));
        assert!(glob_match("release-*", "release-"));
        assert!(!glob_match("release-*", "xrelease-0.1"));
        assert!(!glob_match("release-*", "release"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("main", "main"));
        assert!(!glob_match("main", "mainline"));
        assert!(glob_match("rel*-*.x", "release-1.x"));
        assert!(!glob_match("rel*-*.x", "release-1.y"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        // Regex characters are plain characters in a glob.
        assert!(!glob_match("release-1.2", "release-1x2"));
    }
}
