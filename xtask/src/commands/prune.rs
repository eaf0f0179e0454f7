//! `prune`: deletes old images of both workload managers, never a protected one.

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::images::Survey;
use crate::commands::load_config;
use crate::edges::gcloud::Gcloud;
use crate::host::HostTree;
use crate::model::prune_plan;
use crate::model::WorkloadManager;
use crate::term;

/// Delete old images, never pinned, release-branch, labelled or not-READY ones.
///
/// Keeps per workload manager the newest N, the images pinned in images.conf here and on
/// release branches, `branch`-labelled images and images not READY. The plan is always printed
/// first; nothing is deleted without --yes or a yes at the terminal.
#[derive(Args)]
pub struct Prune {
    /// How many of the newest READY images of each workload manager to keep (default: prune.keep
    /// in slurm-image.toml).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: Option<u64>,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
}

impl Prune {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let config = load_config(host)?;
        let keep = self.keep.map_or(config.prune.keep, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
        let survey = Survey::take(sh, host, &config, keep)?;
        survey.print(&WorkloadManager::ALL);
        let doomed = prune_plan::deletions(&survey.plan);
        if doomed.is_empty() {
            println!("nothing to prune");
            return Ok(());
        }
        println!(
            "would delete {} image(s): {}",
            doomed.len(),
            doomed.join(", ")
        );
        if !survey.branches_checked && (self.yes || term::is_interactive()) {
            // An image pinned on a release branch looks old from here: deleting without
            // having read the branches could break a release's clusters.
            bail!(
                "nothing deleted: the release branches could not be read (see the note above), so images \
                 pinned on them cannot be told apart; run prune in the repository's git checkout"
            );
        }
        let question = format!(
            "Delete these {} image(s) from project {}?",
            doomed.len(),
            survey.project
        );
        if !term::approved(self.yes, &question)? {
            if survey.branches_checked {
                println!("nothing deleted: run again with --yes to delete them");
            } else {
                println!("nothing deleted: run again with --yes in the repository's git checkout to delete them");
            }
            return Ok(());
        }
        Gcloud::new(sh, &config.gcp.project)?.delete_images(&doomed)?;
        println!("deleted {} image(s): {}", doomed.len(), doomed.join(", "));
        Ok(())
    }
}
