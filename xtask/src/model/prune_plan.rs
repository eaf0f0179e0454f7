//! The prune planner: which images of each workload manager to keep, why, and which to delete.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use crate::model::image::wm_of_image;
use crate::model::image::{Image, ImageStatus};
use crate::model::launcher_version::LauncherPackage;
use crate::model::WorkloadManager;

/// Why an image is kept, in the words the plan prints.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    PinnedInImagesConf,
    PinnedOnBranch(String),
    Labelled(String),
    Status(ImageStatus),
    Newest(usize),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::PinnedInImagesConf => f.write_str("pinned in images.conf"),
            Reason::PinnedOnBranch(branch) => write!(f, "pinned on {branch}"),
            Reason::Labelled(value) => write!(f, "labelled branch={value}"),
            Reason::Status(status) => write!(f, "status {status}"),
            Reason::Newest(n) => write!(f, "newest {n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Kept, for every reason that applies (never empty).
    Keep(Vec<Reason>),
    Delete,
}

/// One image and what prune does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub image: Image,
    pub decision: Decision,
}

/// What protects images from pruning besides their age.
#[derive(Debug, Clone, Default)]
pub struct Protections {
    /// The images pinned in the working tree's images.conf.
    pub pinned: BTreeSet<String>,
    /// Release branch (as `git branch -a` would show it) -> the images its images.conf names.
    pub release_pins: BTreeMap<String, BTreeSet<String>>,
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

/// Plans a prune: per workload manager, the newest `keep` READY images are kept, and so is every
/// image that is pinned in images.conf, pinned on a release branch, carries a `branch` label or
/// is not READY; the rest are deleted.
///
/// Only READY images count towards the newest `keep`: a PENDING or FAILED image is kept anyway
/// and cannot stand in for a usable one. The result is grouped by workload manager (SLURM
/// first), newest first; images created in the same second are ordered by name, descending,
/// so the plan never depends on the order the API answered in.
pub fn plan(images: Vec<Image>, protections: &Protections, keep: usize) -> Vec<Planned> {
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
    let mut ready_seen: BTreeMap<Option<WorkloadManager>, usize> = BTreeMap::new();
    images
        .into_iter()
        .map(|image| {
            let mut reasons = Vec::new();
            if protections.pinned.contains(&image.name) {
                reasons.push(Reason::PinnedInImagesConf);
            }
            for (branch, names) in &protections.release_pins {
                if names.contains(&image.name) {
                    reasons.push(Reason::PinnedOnBranch(branch.clone()));
                }
            }
            if let Some(value) = image.labels.get("branch") {
                reasons.push(Reason::Labelled(value.clone()));
            }
            if image.is_ready() {
                let seen = ready_seen.entry(image.wm()).or_default();
                *seen += 1;
                if *seen <= keep {
                    reasons.push(Reason::Newest(keep));
                }
            } else {
                reasons.push(Reason::Status(image.status.clone()));
            }
            let decision = if reasons.is_empty() {
                Decision::Delete
            } else {
                Decision::Keep(reasons)
            };
            Planned { image, decision }
        })
        .collect()
}

/// The names a plan deletes, in plan order.
pub fn deletions(plan: &[Planned]) -> Vec<String> {
    plan.iter()
        .filter(|p| p.decision == Decision::Delete)
        .map(|p| p.image.name.clone())
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
    use WorkloadManager::Pbs;

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

    #[test]
    fn keeps_the_newest_n_of_each_workload_manager() {
        let images = vec![slurm(1), pbs(1), slurm(3), slurm(2), pbs(2), pbs(3)];
        let plan = plan(images, &Protections::default(), 2);
        assert_eq!(
            decisions(&plan),
            vec![
                (
                    "det-environments-slurm-ci-3".into(),
                    keep(&[Reason::Newest(2)])
                ),
                (
                    "det-environments-slurm-ci-2".into(),
                    keep(&[Reason::Newest(2)])
                ),
                ("det-environments-slurm-ci-1".into(), Decision::Delete),
                (
                    "det-environments-pbs-ci-3".into(),
                    keep(&[Reason::Newest(2)])
                ),
                (
                    "det-environments-pbs-ci-2".into(),
                    keep(&[Reason::Newest(2)])
                ),
                ("det-environments-pbs-ci-1".into(), Decision::Delete),
            ]
        );
        assert_eq!(
            deletions(&plan),
            ["det-environments-slurm-ci-1", "det-environments-pbs-ci-1"]
        );
    }

    #[test]
    fn fewer_images_than_n_deletes_nothing() {
        let plan = plan(vec![slurm(1), slurm(2)], &Protections::default(), 6);
        assert!(deletions(&plan).is_empty());
        assert!(plan
            .iter()
            .all(|p| p.decision == keep(&[Reason::Newest(6)])));
        assert!(super::plan(Vec::new(), &Protections::default(), 6).is_empty());
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
            let plan = plan(images, &Protections::default(), 2);
            assert_eq!(deletions(&plan), ["det-environments-slurm-ci-a"]);
            assert_eq!(plan[0].image.name, "det-environments-slurm-ci-c");
        }
    }

    #[test]
    fn protected_images_are_kept_with_every_reason() {
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
            pinned: ["det-environments-slurm-ci-1".to_string()].into(),
            release_pins: [
                (
                    "release-0.1".to_string(),
                    ["det-environments-slurm-ci-1".to_string()].into(),
                ),
                (
                    "origin/release-0.2".to_string(),
                    ["det-environments-slurm-ci-5".to_string()].into(),
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
        ];
        let plan = plan(images, &protections, 1);
        assert_eq!(
            decisions(&plan),
            vec![
                (
                    "det-environments-slurm-ci-7".into(),
                    keep(&[Reason::Newest(1)])
                ),
                ("det-environments-slurm-ci-6".into(), Decision::Delete),
                (
                    "det-environments-slurm-ci-5".into(),
                    keep(&[Reason::PinnedOnBranch("origin/release-0.2".into())])
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
                        Reason::PinnedOnBranch("release-0.1".into())
                    ])
                ),
            ]
        );
    }

    #[test]
    fn all_protected_deletes_nothing() {
        let mut images: Vec<Image> = (1..=4).map(slurm).collect();
        for image in &mut images {
            image.labels.insert("branch".into(), "main".into());
        }
        let plan = plan(images, &Protections::default(), 1);
        assert!(deletions(&plan).is_empty());
    }

    #[test]
    fn an_image_listed_twice_takes_one_keep_place() {
        let mut images: Vec<Image> = (1..=8).map(slurm).collect();
        images.extend((3..=8).map(slurm));
        let plan = plan(images, &Protections::default(), 6);
        assert_eq!(plan.len(), 8);
        assert_eq!(
            deletions(&plan),
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
            1,
        );
        assert_eq!(deletions(&plan), ["det-environments-slurm-ci-1"]);
    }

    #[test]
    fn reasons_read_as_the_user_says_them() {
        let shown: Vec<String> = [
            Reason::PinnedInImagesConf,
            Reason::PinnedOnBranch("release-1.2".into()),
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
