//! The survey of the project's images: each with the prune plan's decision, as `images`, `prune`
//! and a build show them.

use std::collections::BTreeMap;

use anyhow::Context;
use xshell::Shell;

use crate::edges::gcloud::{Gcloud, Image};
use crate::edges::git;
use crate::host::HostTree;
use crate::model::config::Config;
use crate::model::provenance::{self, Listed};
use crate::model::prune_plan::{self, Decision, Planned, Protections};
use crate::model::time::{format_age, parse_rfc3339};
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
    /// The project's images as reuse sees them, all of them, as a build lists them.
    listed: Vec<Listed>,
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
            Gcloud::new(sh, &config.gcp.project)?.list_images()
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
        let release = git::release_pins(sh, &host.root, &config.prune.release_branches)
            .context("reading images.conf on the release branches")?;
        let pinned: BTreeMap<WorkloadManager, String> = WorkloadManager::ALL
            .into_iter()
            .filter_map(|wm| conf.pinned(wm).map(|image| (wm, image.to_string())))
            .collect();
        let protections = Protections {
            pinned: pinned.values().cloned().collect(),
            release_pins: release.pins,
        };
        let listed = list()?;
        let for_reuse = listed.iter().map(Image::listed).collect();
        let branches_checked = release.checked;
        let mut notes = release.notes;
        // Only images of the family the template builds into are this tool's to prune.
        let families = read_template(host)?.image_families;
        let mut left_alone = Vec::new();
        let mut images = Vec::new();
        for image in listed {
            let wm = match prune_plan::ours(&image.name, image.family.as_deref(), &families) {
                Ok(wm) => wm,
                Err(why) => {
                    left_alone.push(why);
                    continue;
                }
            };
            let Some(created) = parse_rfc3339(&image.creation_timestamp) else {
                // Unknown age: kept out of the plan, so it is neither counted nor deleted.
                notes.push(format!(
                    "{} has an unreadable creationTimestamp {:?}: left out of the plan",
                    image.name, image.creation_timestamp
                ));
                continue;
            };
            images.push(prune_plan::Image {
                name: image.name,
                wm,
                created,
                status: image.status,
                labels: image.labels,
                description: image.description.unwrap_or_default(),
                family: image.family,
            });
        }
        let (images, duplicates) = prune_plan::unique(images);
        notes.extend(prune_plan::left_alone_note(
            &left_alone,
            &families,
            duplicates,
        ));
        let plan = prune_plan::plan(images, &protections, keep);
        Ok(Survey {
            project: config.gcp.project.clone(),
            plan,
            notes,
            branches_checked,
            listed: for_reuse,
            pinned,
            reused: BTreeMap::new(),
            wide: false,
            now: now(),
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
            .filter(|p| p.image.wm == wm && p.decision == Decision::Delete)
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
        for &wm in wms {
            let rows: Vec<&Planned> = self.plan.iter().filter(|p| p.image.wm == wm).collect();
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
            let cells: Vec<Row> = rows.iter().map(|planned| self.row(wm, planned)).collect();
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
                "  VERIFIED: whether the image booted and passed the checks script (with its workload manager's version);",
                "  SOURCE: the source image it was built from (`source ?`: no label, made before images recorded",
                "  their inputs); LABELS: labels other than what went in (`-`: none other; `no labels`: none at",
                "  all); [PRUNE]: what `prune` would do; `<- a build now reuses it`: made from today's inputs",
            ]
        } else {
            &[
                "legend: LAUNCHER from the image's label or description (? when neither names one);",
                "  CHK: it booted and passed the checks (yes), failed them (FAIL) or was never verified (no);",
                "  [PRUNE]: what `prune` would do: keep (pinned: in images.conf; on B: pinned on release",
                "  branch B; newest N), DELETE, or delete? (prune deletes only in a git checkout);",
                "  `*`: the image a build now reuses;",
                "  `images --wide` adds the source image, family and labels",
            ]
        };
        if !self.plan.is_empty() {
            lines.extend(legend.iter().map(|line| line.to_string()));
        }
        lines
    }

    /// One image's cells, in both layouts' words.
    fn row(&self, wm: WorkloadManager, planned: &Planned) -> Row {
        let image = &planned.image;
        // The label first: the description of an image of a template without labels is the
        // only record there is.
        let launcher = prune_plan::launcher_of(&image.labels, &image.description);
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
        let (verdict, short_verdict) = match &planned.decision {
            Decision::Delete if self.branches_checked => {
                ("DELETE".to_string(), "DELETE".to_string())
            }
            // prune refuses to delete without the release branches: the mark says what it
            // would do, and what it needs to do it.
            Decision::Delete => (
                "would delete; prune needs a git checkout".to_string(),
                "delete?".to_string(),
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
        let launcher = match (launcher, self.wide) {
            (Some(version), true) => format!("launcher {version}"),
            (None, true) => "launcher ?".to_string(),
            (Some(version), false) => version,
            (None, false) => "?".to_string(),
        };
        let verified = if self.wide {
            verification::summary(&image.labels, wm.key())
        } else {
            match verification::status_of(&image.labels) {
                "verified" => "yes".to_string(),
                "FAILED" => "FAIL".to_string(),
                _ => "no".to_string(),
            }
        };
        // Days are enough beside a name that carries the build's time, and the narrow layout
        // needs the columns for the verification.
        let age = format_age(self.now - image.created);
        let age = match self.wide {
            true => age,
            false => age.split(' ').next().unwrap_or_default().to_string(),
        };
        Row {
            age,
            status: image.status.clone(),
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
        Reason::PinnedOnBranch(branch) => format!("on {branch}"),
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
            short_reason(&Reason::PinnedOnBranch("origin/release-0.1".into())),
            "on origin/release-0.1"
        );
        assert_eq!(short_reason(&Reason::Newest(6)), "newest 6");
    }
}
