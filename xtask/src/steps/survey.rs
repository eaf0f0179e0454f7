//! The survey of the project's images: each with the prune plan's decision, as `images`, `prune`
//! and a build show them.

use std::collections::BTreeMap;

use anyhow::Context;
use xshell::Shell;

use crate::edges::gcloud::Gcloud;
use crate::edges::git;
use crate::host::HostTree;
use crate::model::config::Config;
use crate::model::provenance::{self, from_label_value};
use crate::model::prune_plan::{self, Decision, Planned, Protections};
use crate::model::time::{format_age, parse_rfc3339};
use crate::model::verification;
use crate::model::WorkloadManager;
use crate::steps::host_files::read_images_conf;

/// After a build: the workload manager's images with the prune hint. A failure here only
/// warns: the image is built and pinned already.
pub fn after_build(sh: &Shell, host: &HostTree, config: &Config, wm: WorkloadManager) {
    match Survey::take(sh, host, config, config.prune.keep) {
        Ok(survey) => {
            survey.print(&[wm]);
            let doomed = survey.deletions(wm);
            if doomed.is_empty() {
                println!("nothing to prune for {wm}");
            } else if survey.branches_checked {
                println!(
                    "`cargo xtask slurm-image prune` would delete {} old {wm} image(s): {}",
                    doomed.len(),
                    doomed.join(", ")
                );
            } else {
                println!(
                    "in the repository's git checkout, `cargo xtask slurm-image prune` would delete {} old {wm} image(s): {}",
                    doomed.len(),
                    doomed.join(", ")
                );
            }
        }
        Err(err) => {
            eprintln!("warning: the image is built, but listing the images failed: {err:#}")
        }
    }
}

/// The project's images with the prune plan over them: what `images`, `prune` and a build
/// show.
pub struct Survey {
    pub project: String,
    pub plan: Vec<Planned>,
    notes: Vec<String>,
    /// Whether the release branches could be read; prune deletes nothing without them.
    pub branches_checked: bool,
    /// The input fingerprint a build of each workload manager would have now, where known:
    /// the READY image that carries it is marked as the one a build would reuse.
    pub current: BTreeMap<WorkloadManager, String>,
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
        // Without knowing the pinned images nothing can be planned safely.
        let conf = read_images_conf(host)?;
        let release = git::release_pins(sh, &host.root, &config.prune.release_branches)
            .context("reading images.conf on the release branches")?;
        let protections = Protections {
            pinned: WorkloadManager::ALL
                .into_iter()
                .filter_map(|wm| conf.pinned(wm).map(str::to_string))
                .collect(),
            release_pins: release.pins,
        };
        let gcloud = Gcloud::new(sh, &config.gcp.project)?;
        let listed = gcloud.list_images()?;
        let branches_checked = release.checked;
        let mut notes = release.notes;
        let mut images = Vec::new();
        for image in listed {
            let Some(wm) = prune_plan::wm_of_image(&image.name) else {
                continue;
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
        let plan = prune_plan::plan(images, &protections, keep);
        Ok(Survey {
            project: config.gcp.project.clone(),
            plan,
            notes,
            branches_checked,
            current: BTreeMap::new(),
            now: now(),
        })
    }

    /// The images a prune deletes for one workload manager.
    pub fn deletions(&self, wm: WorkloadManager) -> Vec<String> {
        self.plan
            .iter()
            .filter(|p| p.image.wm == wm && p.decision == Decision::Delete)
            .map(|p| p.image.name.clone())
            .collect()
    }

    /// Prints the plan of the given workload managers, one line per image.
    pub fn print(&self, wms: &[WorkloadManager]) {
        for note in &self.notes {
            println!("note: {note}");
        }
        for &wm in wms {
            let rows: Vec<&Planned> = self.plan.iter().filter(|p| p.image.wm == wm).collect();
            println!("{wm} images in project {} (newest first):", self.project);
            if rows.is_empty() {
                println!("  none");
                continue;
            }
            let width = rows.iter().map(|p| p.image.name.len()).max().unwrap_or(0);
            for planned in rows {
                let image = &planned.image;
                let family = image.family.as_deref().unwrap_or("no family");
                // The label first: the description of an image of a template without labels is
                // the only record there is.
                let launcher = image
                    .labels
                    .get(provenance::LAUNCHER)
                    .map(|v| from_label_value(v))
                    .or_else(|| prune_plan::launcher_version(&image.description))
                    .map_or("launcher ?".to_string(), |v| format!("launcher {v}"));
                let source = image
                    .labels
                    .get(provenance::SOURCE_IMAGE)
                    .map_or("source ?".to_string(), |v| format!("source {v}"));
                // What the image is made from has its own columns; the rest (a release
                // branch's label) is listed.
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
                let reused = self.current.get(&wm).is_some_and(|fingerprint| {
                    image.status == "READY"
                        && image.labels.get(provenance::FINGERPRINT) == Some(fingerprint)
                });
                let reused = if reused {
                    "  <- a build now reuses it (same inputs)"
                } else {
                    ""
                };
                let verdict = match &planned.decision {
                    Decision::Delete if self.branches_checked => "DELETE".to_string(),
                    // prune refuses to delete without the release branches: the mark says
                    // what it would do, and what it needs to do it.
                    Decision::Delete => "would delete; prune needs a git checkout".to_string(),
                    Decision::Keep(reasons) => format!(
                        "keep: {}",
                        reasons
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                println!(
                    "  {:<width$}  {:>8}  {:<7}  {:<18}  {:<14}  {source}  {family}  {labels}  [{verdict}]{reused}",
                    image.name,
                    format_age(self.now - image.created),
                    image.status,
                    launcher,
                    verification::summary(&image.labels, wm.key()),
                );
            }
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
