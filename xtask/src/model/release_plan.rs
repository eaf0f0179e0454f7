//! A release's plan as data: the branch, the launcher, each workload manager's build, the
//! images.conf change and the commit message, and the text a dry run shows of it.

use crate::model::build_plan::Reuse;
use crate::model::images_conf::ImagesConf;
use crate::model::launcher_choice::Launcher;
use crate::model::provenance::Verdict;
use crate::model::release::{commit_message, pin_preview, LauncherSource, Pin};
use crate::model::WorkloadManager;

/// Where the release commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A new branch, made from HEAD; `from` is the branch HEAD was on.
    New { name: String, from: Option<String> },
    /// `--redo`: the branch checked out now, which the release made earlier.
    Current(String),
}

impl Target {
    pub fn name(&self) -> &str {
        match self {
            Target::New { name, .. } | Target::Current(name) => name,
        }
    }

    pub fn from(&self) -> Option<&str> {
        match self {
            Target::New { from, .. } => from.as_deref(),
            Target::Current(_) => None,
        }
    }
}

/// How the launcher package gets into build/.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The newest release, fetched first.
    Fetched,
    /// `--launcher PATH`, copied first.
    Copied,
    /// It is there already.
    InBuildDir,
}

/// What `ansible-playbook --syntax-check` said of the playbook before any VM runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playbooks {
    /// These playbooks pass it for every workload manager.
    Passed(String),
    /// ansible-playbook is not installed, so only the VMs find a broken playbook; how to
    /// install it.
    NotInstalled(String),
    /// None passed: the template names none by a plain path, or the check failed (the stops
    /// say so).
    NonePassed,
}

/// One workload manager's build as `build --dry-run` decides it, each line behind its tag.
pub struct WmBuild {
    pub wm: WorkloadManager,
    /// The source image and where it came from, when it could be resolved.
    pub source: Option<(String, String)>,
    /// The variables file and the packer command.
    pub preview: String,
    /// The verification step, when its settings could be read.
    pub verification: Option<String>,
    /// The input fingerprint, when the launcher and the source image are known.
    pub fingerprint: Option<String>,
    pub reuse: Reuse,
}

impl WmBuild {
    /// The image a real release would reuse instead of building, when one was found.
    pub fn reused(&self) -> Option<&str> {
        match &self.reuse {
            Reuse::Decided {
                verdict: Verdict::Reuse { image },
                ..
            } => Some(image),
            _ => None,
        }
    }
}

/// What `release` decided before it asks to start. A dry run prints it; a run gathers the same
/// plan with the same steps (`steps::release_plan::gather`) and carries it out.
pub struct ReleasePlan {
    /// The workload managers this release builds: both, or those of `--redo`.
    pub wms: Vec<WorkloadManager>,
    /// `None` when the checkout does not allow a release (`stops` says why).
    pub target: Option<Target>,
    /// HEAD's commit, abbreviated, when the checkout could be read.
    pub head: Option<String>,
    /// packer's version, when it is installed and new enough.
    pub packer: Option<String>,
    pub playbooks: Playbooks,
    pub launcher: Launcher,
    pub arrival: Arrival,
    /// What the lookup of the newest release said, when it was looked up.
    pub newest: Option<String>,
    pub source: LauncherSource,
    pub side_by_side: bool,
    /// Each build's decisions; a run makes them once the launcher is in build/.
    pub builds: Vec<WmBuild>,
    /// images.conf as it is now, and as the user sees its path.
    pub conf: ImagesConf,
    pub images_conf: String,
    /// What would stop a real release before any work, each with why.
    pub stops: Vec<String>,
    /// With `--pr`: what happens after the commit (push and open, or the commands printed).
    pub pull_request: Option<String>,
}

impl ReleasePlan {
    /// The line (and the caveat) a run shows before it asks to start.
    pub fn introduce(&self) -> String {
        let wms = &self.wms;
        let how = if self.side_by_side {
            "side by side"
        } else if wms.len() > 1 {
            "one after the other"
        } else {
            "alone"
        };
        let name = self.launcher.file_name();
        let package = match self.arrival {
            Arrival::Fetched => format!("{name} (the newest release, fetched first)"),
            _ => name,
        };
        let branch = match &self.target {
            Some(Target::New { name, from }) => format!(
                "the new branch {name} (from {})",
                from.as_deref().unwrap_or("the detached HEAD")
            ),
            Some(Target::Current(name)) => format!("the current branch {name}"),
            None => "no branch".to_string(),
        };
        let (images, them) = if wms.len() > 1 {
            ("images", "them")
        } else {
            ("image", "it")
        };
        let mut text = format!(
            "release: build the {} {images} {how} with launcher {package}, pin {them} in {}, and commit it alone \
             on {branch}",
            names(wms),
            self.images_conf
        );
        if let Some(caveat) = self.source.caveat() {
            text.push_str(&format!(
                "\nnote: this release does not carry the newest launcher: {caveat}"
            ));
        }
        text
    }

    /// Every pin the commit would hold: each build's reused image or the new one, and the pin
    /// of a workload manager a redo keeps.
    pub fn planned_pins(&self) -> Vec<Pin> {
        WorkloadManager::ALL
            .into_iter()
            .map(|wm| match self.builds.iter().find(|build| build.wm == wm) {
                Some(build) => Pin {
                    wm,
                    image: build
                        .reused()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("<the new {wm} image>")),
                    launcher: self
                        .launcher
                        .known()
                        .map(|package| package.version.to_string()),
                    changed: build.reused().is_none() || build.reused() != self.conf.pinned(wm),
                },
                // A redo commits the pin the interrupted release made.
                None => Pin {
                    wm,
                    image: self.conf.pinned(wm).unwrap_or("<none>").to_string(),
                    launcher: Some("<read from the image>".to_string()),
                    changed: true,
                },
            })
            .collect()
    }

    /// The commit message over `pins`: the planned ones in a dry run, the built ones in a run.
    pub fn commit_message(&self, pins: &[Pin]) -> String {
        commit_message(pins, &self.launcher, &self.source)
    }

    /// The plan as a dry run shows it, ending with what would stop a real release.
    pub fn render(&self) -> String {
        let mut lines = vec![
            "# release plan (dry run: nothing is written, fetched, built or committed)".into(),
        ];
        lines.push(match (&self.target, &self.head) {
            (Some(Target::New { name, from }), Some(head)) => format!(
                "# branch: a new {name} from {} (at {head})",
                from.as_deref().unwrap_or("the detached HEAD")
            ),
            (Some(Target::Current(name)), _) => format!("# branch: the current {name} (--redo)"),
            _ => "# branch: none (see below)".to_string(),
        });
        if let Some(version) = &self.packer {
            lines.push(format!("# packer: {version} (installed)"));
        }
        match &self.playbooks {
            Playbooks::Passed(checked) => lines.push(format!(
                "# playbook: {checked} passes `ansible-playbook --syntax-check`"
            )),
            Playbooks::NotInstalled(install) => lines.push(format!(
                "# playbook: checked only on the VMs, as ansible-playbook is not installed: {install}"
            )),
            Playbooks::NonePassed => {}
        }
        match &self.launcher {
            Launcher::Known(package) => {
                let how = match self.arrival {
                    Arrival::Fetched => "the newest release, to be fetched into build/",
                    Arrival::Copied => "given with --launcher, to be copied into build/",
                    Arrival::InBuildDir => "in build/",
                };
                lines.push(format!("# launcher: {} ({how})", package.file_name));
            }
            Launcher::Unknown { .. } => lines
                .push("# launcher: unknown (a real release would stop: see the end)".to_string()),
        }
        if let Some(newest) = &self.newest {
            lines.push(format!("# launcher: {newest}"));
        }
        if let (Some(caveat), Launcher::Known(_)) = (self.source.caveat(), &self.launcher) {
            lines.push(format!(
                "# note: this release would not carry the newest launcher: {caveat}"
            ));
        }
        lines.push(format!(
            "# builds: {}",
            if self.side_by_side {
                "side by side, each line of output behind [slurm] or [pbs]"
            } else {
                "one after the other"
            }
        ));
        for build in &self.builds {
            let tag = format!("[{}] ", build.wm);
            if let Some((image, origin)) = &build.source {
                lines.push(format!("# {tag}source image: {image} ({origin})"));
            }
            lines.push(build.preview.clone());
            if let Some(verification) = &build.verification {
                lines.push(verification.clone());
            }
            match &build.reuse {
                Reuse::Decided { explained, .. } => lines.push(format!("# {tag}{explained}")),
                Reuse::AfterLauncherArrives => lines.push(format!(
                    "# {tag}reuse: looked up once the launcher is in build/, before packer runs"
                )),
                Reuse::NotLookedUp => {}
            }
        }
        let new: Vec<(WorkloadManager, Option<String>)> = self
            .builds
            .iter()
            .map(|build| (build.wm, build.reused().map(str::to_string)))
            .collect();
        lines.push(format!(
            "# {} would change:\n{}",
            self.images_conf,
            pin_preview(&self.conf, &new).trim_end()
        ));
        lines.push(format!(
            "# then, when every build succeeded, commit {} alone with the message:\n{}",
            self.images_conf,
            self.commit_message(&self.planned_pins()).trim_end()
        ));
        match &self.pull_request {
            Some(pull_request) => {
                lines.push(format!("# {pull_request}"));
                lines.push(
                    "# and end with the checklist: prune (the plan of `cargo xtask slurm-image images`)"
                        .into(),
                );
            }
            None => lines.push(
                "# and end with the checklist: push, pull request, prune (the plan of `cargo xtask slurm-image images`)"
                    .into(),
            ),
        }
        if !self.stops.is_empty() {
            lines.push("# a real release would stop here, before any work:".into());
            lines.extend(self.stops.iter().map(|stop| format!("#   {stop}")));
        }
        lines.join("\n")
    }
}

/// Workload managers for a message: `slurm and pbs`.
pub fn names(wms: &[WorkloadManager]) -> String {
    wms.iter()
        .map(|wm| wm.key())
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::launcher_version::LauncherPackage;

    fn package() -> LauncherPackage {
        LauncherPackage::from_file_name("hpe-hpc-launcher_3.3.1-2_amd64.deb").unwrap()
    }

    fn plan() -> ReleasePlan {
        ReleasePlan {
            wms: WorkloadManager::ALL.to_vec(),
            target: Some(Target::New {
                name: "slurm-images-2026-11-30".into(),
                from: Some("main".into()),
            }),
            head: Some("a5c23e7".into()),
            packer: Some("1.6.6".into()),
            playbooks: Playbooks::Passed("tools/slurm/packer/ansible-playbook.yml".into()),
            launcher: Launcher::Known(package()),
            arrival: Arrival::Fetched,
            newest: None,
            source: LauncherSource::Newest,
            side_by_side: true,
            builds: WorkloadManager::ALL
                .into_iter()
                .map(|wm| WmBuild {
                    wm,
                    source: None,
                    preview: format!("# [{wm}] the variables"),
                    verification: None,
                    fingerprint: None,
                    reuse: Reuse::NotLookedUp,
                })
                .collect(),
            conf: ImagesConf::parse(
                "slurm: det-environments-slurm-ci-1\npbs: det-environments-pbs-ci-1\n",
            )
            .unwrap(),
            images_conf: "tools/slurm/terraform/images.conf".into(),
            stops: Vec::new(),
            pull_request: None,
        }
    }

    #[test]
    fn a_plan_shows_the_branch_the_launcher_each_build_the_change_and_the_message() {
        let shown = plan().render();
        for wanted in [
            "# branch: a new slurm-images-2026-11-30 from main (at a5c23e7)",
            "# playbook: tools/slurm/packer/ansible-playbook.yml passes `ansible-playbook --syntax-check`",
            "# launcher: hpe-hpc-launcher_3.3.1-2_amd64.deb (the newest release, to be fetched into build/)",
            "# builds: side by side",
            "# [slurm] the variables\n# [pbs] the variables",
            "- pbs: det-environments-pbs-ci-1\n+ pbs: <the new pbs image packer builds>",
            "Update the slurm and pbs test cluster images (launcher 3.3.1-2)",
        ] {
            assert!(shown.contains(wanted), "{wanted}\n{shown}");
        }
        assert!(!shown.contains("would stop here"), "{shown}");
    }

    #[test]
    fn a_redo_keeps_the_other_pin_and_reads_its_launcher_from_the_image() {
        let mut plan = plan();
        plan.wms = vec![WorkloadManager::Pbs];
        plan.builds.retain(|build| build.wm == WorkloadManager::Pbs);
        plan.target = Some(Target::Current("slurm-images-2026-11-30".into()));
        plan.side_by_side = false;
        let shown = plan.render();
        assert!(shown.contains("# branch: the current slurm-images-2026-11-30 (--redo)"));
        assert!(
            shown.contains("slurm: det-environments-slurm-ci-1 (launcher <read from the image>)")
        );
        assert!(!shown.contains("- slurm:"), "{shown}");
        assert!(plan.introduce().starts_with(
            "release: build the pbs image alone with launcher hpe-hpc-launcher_3.3.1-2_amd64.deb (the newest release, fetched first)"
        ));
    }

    #[test]
    fn what_would_stop_a_release_ends_the_plan_and_an_unknown_launcher_stays_unknown() {
        let mut plan = plan();
        plan.target = None;
        plan.launcher = Launcher::Unknown {
            why: "Artifactory cannot be reached".into(),
        };
        plan.stops = vec!["launcher: Artifactory cannot be reached".into()];
        let shown = plan.render();
        assert!(shown.contains("# branch: none (see below)"));
        assert!(shown.contains("# launcher: unknown (a real release would stop: see the end)"));
        assert!(!shown.contains("3.3.1-2"), "{shown}");
        assert!(shown.ends_with(
            "# a real release would stop here, before any work:\n#   launcher: Artifactory cannot be reached"
        ));
    }

    /// The dry runs of the standard releases, whole: any change to what a release engineer
    /// reads before saying yes shows in review as a changed snapshot.
    #[test]
    fn the_standard_release_plans_render_as_their_snapshots() {
        insta::assert_snapshot!("release_both_built_side_by_side", plan().render());

        let mut reuse_and_pr = plan();
        reuse_and_pr.arrival = Arrival::InBuildDir;
        reuse_and_pr.builds[0].source = Some((
            "slurm-gcp-6-3-ubuntu-2004-lts-v20240101".into(),
            "the current image of family slurm-gcp-6-3-ubuntu-2004-lts".into(),
        ));
        reuse_and_pr.builds[0].reuse = Reuse::Decided {
            verdict: Verdict::Reuse {
                image: "det-environments-slurm-ci-1".into(),
            },
            explained: "reusing det-environments-slurm-ci-1: made from the same inputs".into(),
        };
        reuse_and_pr.builds[1].verification =
            Some("# [pbs] then boot it and run tools/slurm/packer/verify-image.sh".into());
        reuse_and_pr.pull_request = Some(
            "then push slurm-images-2026-11-30 to origin and open its pull request into main with gh, \
             printing its address"
                .into(),
        );
        insta::assert_snapshot!("release_reuse_and_pull_request", reuse_and_pr.render());

        let mut redo = plan();
        redo.wms = vec![WorkloadManager::Pbs];
        redo.builds.retain(|build| build.wm == WorkloadManager::Pbs);
        redo.target = Some(Target::Current("slurm-images-2026-11-30".into()));
        redo.side_by_side = false;
        insta::assert_snapshot!("release_redo_pbs", redo.render());

        let mut stopped = plan();
        stopped.target = None;
        stopped.launcher = Launcher::Unknown {
            why: "Artifactory cannot be reached".into(),
        };
        stopped.stops = vec![
            "launcher: Artifactory cannot be reached".into(),
            "playbook: tools/slurm/packer/ansible-playbook.yml fails `ansible-playbook --syntax-check`".into(),
        ];
        insta::assert_snapshot!("release_stopped", stopped.render());
    }
}
