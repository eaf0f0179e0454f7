//! The survey of the project's images: each with the prune plan's decision, as `images`, `prune`
//! and a build show them.

use std::collections::BTreeMap;

use anyhow::Context;
use xshell::Shell;

use crate::edges::compute;
use crate::edges::git;
use crate::host::HostTree;
use crate::model::config::Config;
use crate::model::image::Image;
use crate::model::image::Verification;
use crate::model::provenance;
use crate::model::prune_plan::{self, Decision, Planned, Policy, Protections};
use crate::model::records::{ImageRecord, PruneRecord};
use crate::model::time::{format_age, utc_date};
use crate::model::verification;
use crate::model::WorkloadManager;
use crate::steps::host_files::{read_images_conf, read_template};

/// The project's images with the prune plan over them: what `images`, `prune` and a build
/// show.
pub struct Survey {
    pub project: String,
    pub plan: Vec<Planned>,
    notes: Vec<String>,
    /// Whether the release branches could be read; prune deletes nothing without them.
    pub branches_checked: bool,
    /// The project's images, all of them, as a build lists them: what reuse is decided over.
    listed: Vec<Image>,
    /// The image images.conf pins for each workload manager.
    pinned: BTreeMap<WorkloadManager, String>,
    /// The image a build of each workload manager now reuses, where known: marked in the list.
    pub reused: BTreeMap<WorkloadManager, String>,
    /// `images --wide`: the source image, family and labels too, past [`NARROW`] columns.
    pub wide: bool,
    now: i64,
}

impl Survey {
    /// Lists the images (one gcloud call) and plans the prune with the protections of the
    /// working tree's images.conf and of the release branches.
    pub fn take(
        sh: &Shell,
        host: &HostTree,
        config: &Config,
        keep: usize,
    ) -> anyhow::Result<Survey> {
        Survey::over(sh, host, config, keep, || {
            compute::connect(sh, &config.gcp.project)?.list_images()
        })
    }

    /// [`Survey::take`] over images this run has just listed.
    pub fn of(
        sh: &Shell,
        host: &HostTree,
        config: &Config,
        keep: usize,
        listed: Vec<Image>,
    ) -> anyhow::Result<Survey> {
        Survey::over(sh, host, config, keep, || Ok(listed))
    }

    /// The survey over the images `list` gives, asked for once the protections are read.
    fn over(
        sh: &Shell,
        host: &HostTree,
        config: &Config,
        keep: usize,
        list: impl FnOnce() -> anyhow::Result<Vec<Image>>,
    ) -> anyhow::Result<Survey> {
        // Without knowing the pinned images nothing can be planned safely.
        let conf = read_images_conf(host)?;
        let release = git::release_pins(
            sh,
            &host.root,
            &[
                &config.prune.release_branches,
                git::RELEASE_COMMAND_BRANCHES,
            ],
            &config.prune.release_tags,
        )
        .context("reading images.conf on the release branches and tags")?;
        let now = now();
        let policy = Policy {
            keep,
            grace_s: config.prune.grace_s()?,
            now,
        };
        let pinned: BTreeMap<WorkloadManager, String> = WorkloadManager::ALL
            .into_iter()
            .filter_map(|wm| conf.pinned(wm).map(|image| (wm, image.to_string())))
            .collect();
        let protections = Protections {
            pinned: pinned.clone(),
            pinned_on: release.pins,
        };
        let listed = list()?;
        let for_reuse = listed.clone();
        let branches_checked = release.checked;
        let mut notes = release.notes;
        // Only images of the family the template builds into are this tool's to prune.
        let families = read_template(host)?.image_families;
        let mut left_alone = Vec::new();
        let mut images = Vec::new();
        for image in listed {
            // The workload manager comes from the name, which `ours` has just checked.
            if let Err(why) = prune_plan::ours(&image.name, image.family.as_deref(), &families) {
                left_alone.push(why);
                continue;
            }
            if image.created.is_none() {
                // Unknown age: kept out of the plan, so it is neither counted nor deleted.
                notes.push(format!(
                    "{} has an unreadable creationTimestamp {:?}: left out of the plan",
                    image.name, image.creation_timestamp
                ));
                continue;
            }
            images.push(image);
        }
        let (images, duplicates) = prune_plan::unique(images);
        notes.extend(prune_plan::left_alone_note(
            &left_alone,
            &families,
            duplicates,
        ));
        let plan = prune_plan::plan(images, &protections, policy);
        Ok(Survey {
            project: config.gcp.project.clone(),
            plan,
            notes,
            branches_checked,
            listed: for_reuse,
            pinned,
            reused: BTreeMap::new(),
            wide: false,
            now,
        })
    }

    /// Marks the image a build of each workload manager reuses, given the input fingerprint
    /// each would have now: decided as the build decides it, over the same listing.
    pub fn mark_reuse(&mut self, fingerprints: &BTreeMap<WorkloadManager, String>) {
        self.reused = fingerprints
            .iter()
            .filter_map(|(&wm, fingerprint)| {
                let pinned = self.pinned.get(&wm).map(String::as_str);
                provenance::reused_image(&self.listed, fingerprint, wm, pinned)
                    .map(|image| (wm, image.name.clone()))
            })
            .collect();
    }

    /// The images a prune deletes for one workload manager.
    pub fn deletions(&self, wm: WorkloadManager) -> Vec<String> {
        self.plan
            .iter()
            .filter(|p| p.image.wm() == Some(wm) && matches!(p.decision, Decision::Delete { .. }))
            .map(|p| p.image.name.clone())
            .collect()
    }

    /// The images a prune deprecates for one workload manager.
    pub fn deprecations(&self, wm: WorkloadManager) -> Vec<String> {
        self.plan
            .iter()
            .filter(|p| {
                p.image.wm() == Some(wm) && matches!(p.decision, Decision::Deprecate { .. })
            })
            .map(|p| p.image.name.clone())
            .collect()
    }

    /// Prints the plan of the given workload managers, one line per image under a header, and
    /// a legend of what the columns and marks mean.
    pub fn print(&self, wms: &[WorkloadManager]) {
        for note in &self.notes {
            outln!("note: {note}");
        }
        for line in self.table(wms) {
            outln!("{line}");
        }
    }

    /// The lines `print` prints after the notes: each workload manager's images under a
    /// header, then the legend. Rows fit [`NARROW`] columns unless `wide` is set, which adds
    /// the source image, the family and the other labels.
    pub fn table(&self, wms: &[WorkloadManager]) -> Vec<String> {
        let mut lines = Vec::new();
        // The reuse mark is explained only where a row carries it.
        let mut marked = false;
        for &wm in wms {
            let rows: Vec<&Planned> = self
                .plan
                .iter()
                .filter(|p| p.image.wm() == Some(wm))
                .collect();
            lines.push(format!(
                "{wm} images in project {} (newest first):",
                self.project
            ));
            if rows.is_empty() {
                lines.push("  none".to_string());
                continue;
            }
            let width = rows
                .iter()
                .map(|p| p.image.name.len())
                .max()
                .unwrap_or(0)
                .max("IMAGE".len());
            let cells: Vec<Row> = rows
                .iter()
                .map(|planned| self.row(wm, planned, self.wide))
                .collect();
            marked |= cells.iter().any(|cell| cell.reused);
            let widest = |cell: fn(&Row) -> &str, title: &str| {
                cells
                    .iter()
                    .map(|c| cell(c).chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(title.len())
            };
            let age_width = widest(|c| &c.age, "AGE");
            let status_width = widest(|c| &c.status, "STATUS");
            let launcher_width = widest(|c| &c.launcher, "LAUNCHER");
            let verified_title = if self.wide { "VERIFIED" } else { "CHK" };
            let verified_width = widest(|c| &c.verified, verified_title);
            let head = format!(
                "  {:<width$}  {:>age_width$}  {:<status_width$}  {:<launcher_width$}  {:<verified_width$}",
                "IMAGE", "AGE", "STATUS", "LAUNCHER", verified_title
            );
            if self.wide {
                lines.push(format!("{head}  SOURCE  FAMILY  LABELS  [PRUNE]"));
            } else {
                lines.push(format!("{head}  [PRUNE]"));
            }
            for (planned, cell) in rows.iter().zip(cells) {
                let image = &planned.image;
                let start = format!(
                    "  {:<width$}  {:>age_width$}  {:<status_width$}  {:<launcher_width$}  {:<verified_width$}",
                    image.name, cell.age, cell.status, cell.launcher, cell.verified,
                );
                if self.wide {
                    let family = image.family.as_deref().unwrap_or("no family");
                    lines.push(format!(
                        "{start}  {}  {family}  {}  [{}]{}",
                        cell.source,
                        cell.labels,
                        cell.verdict,
                        if cell.reused {
                            "  <- a build now reuses it (same inputs)"
                        } else {
                            ""
                        }
                    ));
                } else {
                    // The mark goes first, where a long verdict cannot push it out of sight.
                    let mark = if cell.reused { "*" } else { " " };
                    let line = format!("{mark}{}  [{}]", &start[1..], cell.short_verdict);
                    lines.push(fit(&line, NARROW));
                }
            }
        }
        let legend: &[&str] = if self.wide {
            &[
                "legend: LAUNCHER from the image's `launcher` label, else its description (? when neither names one);",
                "  STATUS: READY, REVOKED (a rollback took it back) or its deprecation, with the image that replaces it;",
                "  VERIFIED: whether the image booted and passed the checks script (with its workload manager's version);",
                "  SOURCE: the source image it was built from (`source ?`: no label, made before images recorded",
                "  their inputs); LABELS: labels other than what went in (`-`: none other; `no labels`: none at",
                "  all); [PRUNE]: what `prune` would do (deprecate first, delete once deprecated for the grace);",
                "  `<- a build now reuses it`: made from today's inputs",
            ]
        } else {
            &[
                "legend: LAUNCHER from the image's label or description (? when neither names one);",
                "  CHK: it booted and passed the checks (yes), failed them (FAIL) or was never verified (no);",
                "  STATUS: READY, REVOKED (a rollback took it back), or DEPRECATED: on its way out;",
                "  [PRUNE]: what `prune` would do: keep (pinned: in images.conf; on B: pinned on release",
                "  branch or tag B; newest N, verified first), DEPRECATE, DELETE (deprecated for the grace),",
                "  delete from DATE, or deprecate?/delete? (prune changes images only in a git checkout);",
                "  `*`: the image a build now reuses;",
                "  `images --wide` adds the source image, family and labels",
            ]
        };
        if !self.plan.is_empty() {
            lines.extend(
                legend
                    .iter()
                    .filter(|line| marked || !line.contains("a build now reuses"))
                    .map(|line| line.to_string()),
            );
        }
        lines
    }

    /// One image's cells, in both layouts' words.
    /// Each image of the table as a record of `images --format json`: the table's facts in full
    /// words, whatever the layout.
    pub fn records(&self) -> Vec<ImageRecord> {
        self.plan
            .iter()
            .filter_map(|planned| {
                let wm = planned.image.wm()?;
                let row = self.row(wm, planned, true);
                let image = &planned.image;
                Some(ImageRecord {
                    image: image.name.clone(),
                    workload_manager: Some(wm),
                    created: image.creation_timestamp.clone(),
                    status: row.status.trim().to_string(),
                    verification: match image.verification() {
                        Verification::Verified => "verified",
                        Verification::Failed => "failed",
                        Verification::Unverified => "unverified",
                    }
                    .to_string(),
                    launcher: prune_plan::launcher_of(
                        &image.labels,
                        image.description.as_deref().unwrap_or(""),
                    ),
                    pinned: self.pinned.get(&wm) == Some(&image.name),
                    reused: row.reused,
                    prune: row.verdict,
                })
            })
            .collect()
    }

    /// Each image of the plan as a record of `prune --format json`: what prune does with it
    /// and why, `done` for those of `deprecated` and `deleted` (what this run changed).
    pub fn prune_records(&self, deprecated: &[String], deleted: &[String]) -> Vec<PruneRecord> {
        self.plan
            .iter()
            .map(|planned| {
                let image = &planned.image;
                let (action, why, replacement, delete_from, done) = match &planned.decision {
                    Decision::Keep(reasons) => (
                        "keep",
                        reasons
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                        None,
                        None,
                        false,
                    ),
                    Decision::Deprecate { why, replacement } => (
                        "deprecate",
                        why.to_string(),
                        replacement.clone(),
                        None,
                        deprecated.contains(&image.name),
                    ),
                    Decision::InGrace { until } => (
                        "in_grace",
                        format!("deprecated: a prune deletes it from {}", utc_date(*until)),
                        None,
                        Some(utc_date(*until)),
                        false,
                    ),
                    Decision::Delete { since } => (
                        "delete",
                        format!(
                            "deprecated {} ago, longer than the grace",
                            format_age(self.now - since)
                        ),
                        None,
                        None,
                        deleted.contains(&image.name),
                    ),
                };
                PruneRecord {
                    image: image.name.clone(),
                    workload_manager: image.wm(),
                    created: image.creation_timestamp.clone(),
                    action,
                    why,
                    replacement,
                    delete_from,
                    done,
                }
            })
            .collect()
    }

    /// One image's cells; `wide` as `images --wide` shows them.
    fn row(&self, wm: WorkloadManager, planned: &Planned, wide: bool) -> Row {
        let image = &planned.image;
        // The label first: the description of an image of a template without labels is the
        // only record there is.
        let launcher =
            prune_plan::launcher_of(&image.labels, image.description.as_deref().unwrap_or(""));
        let source = image
            .labels
            .get(provenance::SOURCE_IMAGE)
            .map_or("source ?".to_string(), |v| format!("source {v}"));
        // What the image is made from has its own columns; the rest (a release branch's
        // label) is listed.
        let other: Vec<String> = image
            .labels
            .iter()
            .filter(|(k, _)| {
                !provenance::RECORDED.contains(&k.as_str())
                    && *k != provenance::FINGERPRINT
                    && *k != provenance::WORKLOAD_MANAGER
                    && !verification::is_verification_label(k)
                    && !provenance::is_tool_label(k)
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let labels = if image.labels.is_empty() {
            "no labels".to_string()
        } else if other.is_empty() {
            "-".to_string()
        } else {
            other.join(",")
        };
        let reused = self.reused.get(&wm) == Some(&image.name);
        let deprecated_for = |since: i64| format_age(self.now - since);
        let (verdict, short_verdict) = match &planned.decision {
            Decision::Delete { since } if self.branches_checked => (
                format!("DELETE: deprecated {} ago", deprecated_for(*since)),
                "DELETE".to_string(),
            ),
            // prune refuses to change anything without the release branches and tags: the
            // mark says what it would do, and what it needs to do it.
            Decision::Delete { .. } => (
                "would delete; prune needs a git checkout".to_string(),
                "delete?".to_string(),
            ),
            Decision::Deprecate { why, replacement } if self.branches_checked => (
                format!(
                    "DEPRECATE: {why}; replacement {}",
                    replacement.as_deref().unwrap_or("none")
                ),
                "DEPRECATE".to_string(),
            ),
            Decision::Deprecate { .. } => (
                "would deprecate; prune needs a git checkout".to_string(),
                "deprecate?".to_string(),
            ),
            Decision::InGrace { until } => (
                format!("deprecated: a prune deletes it from {}", utc_date(*until)),
                format!("delete from {}", utc_date(*until)),
            ),
            Decision::Keep(reasons) => (
                format!(
                    "keep: {}",
                    reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "keep: {}",
                    reasons
                        .iter()
                        .map(short_reason)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        let launcher = match (launcher, wide) {
            (Some(version), true) => format!("launcher {version}"),
            (None, true) => "launcher ?".to_string(),
            (Some(version), false) => version,
            (None, false) => "?".to_string(),
        };
        let verified = if wide {
            verification::summary(&image.labels, wm.key())
        } else {
            match image.verification() {
                Verification::Verified => "yes".to_string(),
                Verification::Failed => "FAIL".to_string(),
                Verification::Unverified => "no".to_string(),
            }
        };
        // Days are enough beside a name that carries the build's time, and the narrow layout
        // needs the columns for the verification.
        let age = format_age(self.now - image.created.unwrap_or(0));
        let age = match wide {
            true => age,
            false => age.split(' ').next().unwrap_or_default().to_string(),
        };
        // GCE's own status says READY for a deprecated image: what matters is that it is on
        // its way out, or revoked.
        let mut status = match &image.deprecation {
            _ if image.is_revoked() => "REVOKED".to_string(),
            Some(deprecation) => deprecation.state.to_string(),
            None => image.status.to_string(),
        };
        if let (true, Some(replacement)) = (
            wide,
            image
                .deprecation
                .as_ref()
                .and_then(|d| d.replacement.as_ref()),
        ) {
            status = format!("{status} (replaced by {replacement})");
        }
        Row {
            age,
            status,
            launcher,
            verified,
            source,
            labels,
            verdict,
            short_verdict,
            reused,
        }
    }
}

/// The width `images` keeps to unless `--wide` is given.
pub const NARROW: usize = 100;

/// An image's cells.
struct Row {
    age: String,
    status: String,
    launcher: String,
    verified: String,
    source: String,
    labels: String,
    verdict: String,
    short_verdict: String,
    reused: bool,
}

/// A keep reason in the narrow layout's words, which the legend explains.
fn short_reason(reason: &prune_plan::Reason) -> String {
    use prune_plan::Reason;
    match reason {
        Reason::PinnedInImagesConf => "pinned".to_string(),
        Reason::PinnedOn(place) => format!("on {place}"),
        other => other.to_string(),
    }
}

/// `line` cut to `width` characters, its end marked with `…` when cut (a long branch name).
fn fit(line: &str, width: usize) -> String {
    if line.chars().count() <= width {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(width - 1).collect();
    cut.push('…');
    cut
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_row_is_cut_to_the_width_and_marked() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("exactly 10", 10), "exactly 10");
        let cut = fit("a row that is far too long", 10);
        assert_eq!(cut, "a row tha…");
        assert_eq!(cut.chars().count(), 10);
    }

    #[test]
    fn keep_reasons_have_short_words_in_the_narrow_layout() {
        use prune_plan::Reason;
        assert_eq!(short_reason(&Reason::PinnedInImagesConf), "pinned");
        assert_eq!(
            short_reason(&Reason::PinnedOn("origin/release-0.1".into())),
            "on origin/release-0.1"
        );
        assert_eq!(short_reason(&Reason::Newest(6)), "newest 6");
    }
}
