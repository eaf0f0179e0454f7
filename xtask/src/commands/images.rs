//! `images`: the images of both workload managers, what they are made from, which one a build
//! now would reuse, and what prune would delete.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::commands::flags::FormatFlags;
use crate::commands::{HelpFooter, GCLOUD_ENVIRONMENT};
use crate::edges::compute;
use crate::host::HostTree;
use crate::model::image_diff;
use crate::model::launcher_choice::Launcher;
use crate::model::records::{self, Record};
use crate::model::verification;
use crate::model::WorkloadManager;
use crate::output;
use crate::steps::build::{resolve_source, Inputs, Plan};
use crate::steps::host_files::load_config;
use crate::steps::launcher;
use crate::steps::survey::Survey;

/// List the images of both workload managers, newest first, with their launcher and source
/// image, marking pinned and prunable ones and the one a build now would reuse.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("images", "every image of both workload managers, with what prune would do to it"),
        ("images --wide", "the same with each image's source image, family and labels"),
        ("images det-environments-slurm-ci-1717047568", "one image in full: its verification and bill of materials"),
        ("images diff det-environments-slurm-ci-1717047568 det-environments-slurm-ci-1800000000", "what differs between two images, one line each"),
    ],
    environment: &[GCLOUD_ENVIRONMENT],
    config: &["gcp.project", "prune.keep", "prune.grace", "prune.release_branches", "prune.release_tags"],
}.render())]
#[command(args_conflicts_with_subcommands = true)]
pub struct Images {
    /// Also show each image's source image, family and other labels (rows then pass 100
    /// columns).
    #[arg(long)]
    pub wide: bool,
    /// Describe this one image in full instead: its verification, bill of materials and labels.
    pub image: Option<String>,
    #[command(subcommand)]
    pub compare: Option<Compare>,
    #[command(flatten)]
    pub output: FormatFlags,
}

/// Comparisons of images.
#[derive(clap::Subcommand)]
pub enum Compare {
    /// What differs between two images, one line each: launcher, slurm or PBS, NVIDIA driver,
    /// kernel, task images, source image, input fingerprint, packer and its plugins.
    Diff {
        /// The image compared from (the older one, usually).
        a: String,
        /// The image compared to.
        b: String,
    },
}

impl Images {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        self.output.start();
        let config = load_config(host)?;
        if let Some(Compare::Diff { a, b }) = &self.compare {
            return diff(sh, &config.gcp.project, a, b);
        }
        if let Some(name) = &self.image {
            return describe(sh, &config.gcp.project, name);
        }
        // Which image the current inputs would reuse needs the source families resolved: a
        // gcloud call each, made beside the listing rather than after it.
        let (survey, current) = std::thread::scope(|scope| {
            let current = crate::session::spawn_scoped(scope, || current_fingerprints(host));
            let survey = Survey::take(sh, host, &config, config.prune.keep);
            let current = current
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("working them out panicked")));
            (survey, current)
        });
        let mut survey = survey?;
        survey.wide = self.wide;
        match current {
            Ok(current) => survey.mark_reuse(&current),
            Err(err) => {
                errln!("note: cannot tell which image a build now would reuse: {err:#}")
            }
        }
        if output::writes_records() {
            // One record per image, then the result; the table is for people.
            for image in survey.records() {
                output::record(&Record::Image(image));
            }
            output::record(&Record::Result(records::Outcome::done("images")));
        } else {
            survey.print(&WorkloadManager::ALL);
        }
        Ok(())
    }
}

/// What differs between images `a` and `b`, read in one listing.
fn diff(sh: &Shell, project: &str, a: &str, b: &str) -> anyhow::Result<()> {
    let images =
        compute::connect(sh, project)?.list_images_for(&format!("reading images {a} and {b}"))?;
    let find = |name: &str| {
        images.iter().find(|image| image.name == name).with_context(|| {
            format!(
                "{name} is not an image of project {project}: `cargo xtask slurm-image images` lists them"
            )
        })
    };
    for line in image_diff::render(find(a)?, find(b)?) {
        outln!("{line}");
    }
    Ok(())
}

/// One image in full: its verification, what it holds and every other label.
fn describe(sh: &Shell, project: &str, name: &str) -> anyhow::Result<()> {
    let image = compute::connect(sh, project)?.describe_image(name)?;
    outln!(
        "{} ({}, created {})",
        image.name,
        image.status,
        image.creation_timestamp
    );
    if let Some(description) = &image.description {
        outln!("  description: {description}");
    }
    outln!("  verification: {}", image.verification());
    let bom = verification::bill_of_materials(&image.labels);
    if bom.is_empty() {
        outln!("  bill of materials: none recorded (`cargo xtask slurm-image verify {name}` records it)");
    } else {
        outln!("  bill of materials:");
        for (what, version) in bom {
            outln!("    {what:<20} {version}");
        }
    }
    let others: Vec<_> = image
        .labels
        .iter()
        .filter(|(k, _)| !verification::is_verification_label(k))
        .collect();
    if !others.is_empty() {
        outln!("  labels:");
        for (key, value) in others {
            outln!("    {key:<20} {value}");
        }
    }
    Ok(())
}

/// The input fingerprint a build of each workload manager would have now, with the launcher
/// package in build/ (nothing is fetched). Runs on a thread of its own, with its own shell.
fn current_fingerprints(host: &HostTree) -> anyhow::Result<BTreeMap<WorkloadManager, String>> {
    let inputs = Inputs::read(host)?;
    let local = launcher::local_packages(host)?;
    let [package] = local.as_slice() else {
        bail!(
            "it needs exactly one launcher package in {}, which holds {}",
            host.show(&host.build_dir),
            local.len()
        );
    };
    std::thread::scope(|scope| {
        let threads: Vec<_> = WorkloadManager::ALL
            .into_iter()
            .map(|wm| {
                let (inputs, package) = (&inputs, package);
                crate::session::spawn_scoped(
                    scope,
                    move || -> anyhow::Result<(WorkloadManager, String)> {
                        let sh = crate::session::shell(&host.root)?;
                        let source = resolve_source(&sh, &inputs.config, wm)?;
                        let launcher = Launcher::Known(package.clone());
                        let plan = Plan::new(host, inputs, wm, &launcher, Some(&source), false)?;
                        let fingerprint = plan
                            .fingerprint
                            .context("the launcher package is not in build/")?;
                        Ok((wm, fingerprint))
                    },
                )
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("working it out panicked")))
            })
            .collect()
    })
}
