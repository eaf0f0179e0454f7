//! A build's plan as data: every decision made before packer, each known or unknown with why,
//! and the text a dry run shows of it.

use crate::model::launcher_choice::Launcher;
use crate::model::provenance::Verdict;
use crate::model::WorkloadManager;

/// What `build` decided before packer runs. A dry run prints it; a run carries out the same
/// decisions, made by the same steps (`steps::build_plan::gather`).
pub struct BuildPlan {
    pub wm: WorkloadManager,
    /// packer's version, when it is installed and new enough.
    pub packer: Option<String>,
    /// The playbooks `ansible-playbook --syntax-check` passed, when any was checked.
    pub playbooks: Option<String>,
    pub launcher: Launcher,
    /// Whether the launcher package reaches build/ only when a real build fetches or copies it.
    pub arrives: bool,
    /// What the lookup of the newest release said, when it was looked up.
    pub newest: Option<String>,
    /// build/ as the user sees it.
    pub build_dir: String,
    /// The source image and where it came from, when it could be resolved.
    pub source: Option<(String, String)>,
    /// The variables file as it would be written, and the packer command.
    pub preview: String,
    /// The verification step (the VM, the checks script, the bound), when it could be read.
    pub verification: Option<String>,
    pub fingerprint: Option<String>,
    pub reuse: Reuse,
    /// The image images.conf pins now.
    pub pinned: Option<String>,
    /// images.conf as the user sees it.
    pub images_conf: String,
    /// What could not be found out, each with why; a real build would stop at the first.
    pub unknown: Vec<String>,
}

/// Reuse or build, as far as it could be decided before packer.
pub enum Reuse {
    /// The verdict and the line that explains it.
    Decided { verdict: Verdict, explained: String },
    /// The fingerprint covers the launcher package's bytes, which a real build fetches first.
    AfterLauncherArrives,
    /// Not looked up; `unknown` says why where it matters.
    NotLookedUp,
}

impl BuildPlan {
    /// The image a real build pins: the one it reuses, else the one packer builds.
    pub fn new_image(&self) -> String {
        match &self.reuse {
            Reuse::Decided {
                verdict: Verdict::Reuse { image },
                ..
            } => image.clone(),
            _ => format!(
                "det-environments-{}-ci-<timestamp>, the image packer builds",
                self.wm
            ),
        }
    }

    /// The plan as a dry run shows it, one line per decision, ending with what could not be
    /// found out.
    pub fn render(&self) -> String {
        let mut lines = Vec::new();
        if let Some(version) = &self.packer {
            lines.push(format!("packer: {version} (installed)"));
        }
        if let Some(checked) = &self.playbooks {
            lines.push(format!(
                "playbook: {checked} passes `ansible-playbook --syntax-check`"
            ));
        }
        lines.push(match &self.launcher {
            Launcher::Known(package) if self.arrives => format!(
                "launcher: {} (a real build puts it in {} first)",
                package.file_name, self.build_dir
            ),
            Launcher::Known(package) => {
                format!("launcher: {} (in {})", package.file_name, self.build_dir)
            }
            Launcher::Unknown { .. } => {
                "launcher: unknown (a real build would stop: see the end)".to_string()
            }
        });
        if let Some(newest) = &self.newest {
            lines.push(format!("launcher: {newest}"));
        }
        if let Some((image, origin)) = &self.source {
            lines.push(format!("source image: {image} ({origin})"));
        }
        lines.push(self.preview.clone());
        if let Some(verification) = &self.verification {
            lines.push(verification.clone());
        }
        match &self.fingerprint {
            Some(fingerprint) => lines.push(format!("# input fingerprint: {fingerprint}")),
            None if self.launcher.known().is_none() => {
                lines.push("# input fingerprint: unknown until the launcher is known".into())
            }
            None if self.arrives => lines.push(
                "# input fingerprint: unknown until the launcher is in build/ (it covers the package's bytes)"
                    .into(),
            ),
            // The source image could not be resolved: `unknown` says so.
            None => {}
        }
        match &self.reuse {
            Reuse::Decided { explained, .. } => lines.push(format!("# {explained}")),
            Reuse::AfterLauncherArrives => lines.push(
                "# reuse: looked up once the launcher is in build/, before packer runs".into(),
            ),
            Reuse::NotLookedUp => {}
        }
        lines.push(images_conf_change(
            &self.images_conf,
            self.wm,
            self.pinned.as_deref(),
            &self.new_image(),
        ));
        if !self.unknown.is_empty() {
            lines.push("# could not find out (a real build would stop here):".into());
            lines.extend(self.unknown.iter().map(|line| format!("#   {line}")));
        }
        lines.join("\n")
    }
}

/// The line that says how images.conf changes when `new` is pinned.
pub fn images_conf_change(
    shown: &str,
    wm: WorkloadManager,
    pinned: Option<&str>,
    new: &str,
) -> String {
    match pinned {
        Some(old) if old == new => format!("# {shown} already pins `{wm}: {old}`: unchanged"),
        Some(old) => format!("# then in {shown}: `{wm}: {old}` -> `{wm}: {new}`"),
        None => format!("# then in {shown}: a new line `{wm}: {new}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown_plan() -> BuildPlan {
        BuildPlan {
            wm: WorkloadManager::Pbs,
            packer: None,
            playbooks: None,
            launcher: Launcher::Unknown {
                why: "Artifactory cannot be reached".into(),
            },
            arrives: false,
            newest: None,
            build_dir: "tools/slurm/packer/build".into(),
            source: None,
            preview: "# the variables".into(),
            verification: None,
            fingerprint: None,
            reuse: Reuse::NotLookedUp,
            pinned: Some("det-environments-pbs-ci-1".into()),
            images_conf: "tools/slurm/terraform/images.conf".into(),
            unknown: vec!["launcher: Artifactory cannot be reached".into()],
        }
    }

    #[test]
    fn an_unknown_launcher_is_shown_as_unknown_never_as_a_made_up_package() {
        let shown = unknown_plan().render();
        assert!(shown.contains("launcher: unknown (a real build would stop: see the end)"));
        assert!(shown.contains("# input fingerprint: unknown until the launcher is known"));
        assert!(!shown.contains("0.0.0"), "{shown}");
        assert!(shown.ends_with(
            "# could not find out (a real build would stop here):\n#   launcher: Artifactory cannot be reached"
        ));
    }

    #[test]
    fn a_reused_image_is_the_pin_a_plan_promises() {
        let mut plan = unknown_plan();
        plan.reuse = Reuse::Decided {
            verdict: Verdict::Reuse {
                image: "det-environments-pbs-ci-1".into(),
            },
            explained: "reusing det-environments-pbs-ci-1".into(),
        };
        assert!(plan.render().contains(
            "# tools/slurm/terraform/images.conf already pins `pbs: det-environments-pbs-ci-1`: unchanged"
        ));
        plan.reuse = Reuse::NotLookedUp;
        assert!(plan.render().contains(
            "`pbs: det-environments-pbs-ci-1` -> `pbs: det-environments-pbs-ci-<timestamp>, the image packer builds`"
        ));
    }

    /// The dry runs of the standard builds, whole (see the release plan's snapshots).
    #[test]
    fn the_standard_build_plans_render_as_their_snapshots() {
        insta::assert_snapshot!("build_new_image", known_plan().render());
        let mut reused = known_plan();
        reused.reuse = Reuse::Decided {
            verdict: Verdict::Reuse {
                image: "det-environments-pbs-ci-1".into(),
            },
            explained: "reusing det-environments-pbs-ci-1: made from the same inputs".into(),
        };
        insta::assert_snapshot!("build_reused", reused.render());
        insta::assert_snapshot!("build_unknown_launcher", unknown_plan().render());
    }

    /// A pbs build whose launcher is in build/ and whose source image is resolved.
    fn known_plan() -> BuildPlan {
        let mut known = unknown_plan();
        known.packer = Some("1.8.6".into());
        known.playbooks = Some("tools/slurm/packer/ansible-playbook.yml".into());
        known.launcher = Launcher::Known(
            crate::model::launcher_version::LauncherPackage::from_file_name(
                "hpe-hpc-launcher_3.3.1-2_amd64.deb",
            )
            .unwrap(),
        );
        known.source = Some((
            "ubuntu-2004-focal-v20240101".into(),
            "the current image of family ubuntu-2004-lts in project ubuntu-os-cloud".into(),
        ));
        known.fingerprint = Some("0f6745a3faf8c451874fb99147150e74".into());
        known.unknown = Vec::new();
        known
    }
}
