//! `prune`: deletes old images of both workload managers, never a protected one.

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::commands::{HelpFooter, GCLOUD_ENVIRONMENT};
use crate::edges::gcloud::Gcloud;
use crate::host::HostTree;
use crate::model::prune_plan;
use crate::model::WorkloadManager;
use crate::steps::host_files::load_config;
use crate::steps::survey::Survey;
use crate::term;

/// Delete old images, never pinned, release-branch, labelled or not-READY ones.
///
/// Keeps per workload manager the newest N, the images pinned in images.conf here and on
/// release branches, `branch`-labelled images and images not READY. The plan is always printed
/// first; nothing is deleted without --yes or a yes at the terminal.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("prune", "show the plan, then ask before deleting"),
        ("prune --keep 3 --yes", "keep the newest 3 of each, delete the rest without asking"),
    ],
    environment: &[GCLOUD_ENVIRONMENT],
    config: &["gcp.project", "prune.keep", "prune.release_branches"],
}.render())]
pub struct Prune {
    /// How many of the newest READY images of each workload manager to keep (default: prune.keep
    /// in slurm-image.toml).
    // Negative numbers reach the parser, which says what --keep takes, instead of clap's
    // "unexpected argument '-1'".
    #[arg(long, value_name = "N", value_parser = parse_keep, allow_negative_numbers = true)]
    pub keep: Option<usize>,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
}

impl Prune {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        let config = load_config(host)?;
        let keep = self.keep.unwrap_or(config.prune.keep);
        let survey = Survey::take(sh, host, &config, keep)?;
        survey.print(&WorkloadManager::ALL);
        let doomed = prune_plan::deletions(&survey.plan);
        if doomed.is_empty() {
            outln!("nothing to prune");
            return Ok(());
        }
        outln!(
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
                outln!("nothing deleted: run again with --yes to delete them");
            } else {
                outln!("nothing deleted: run again with --yes in the repository's git checkout to delete them");
            }
            return Ok(());
        }
        Gcloud::new(sh, &config.gcp.project)?.delete_images(&doomed)?;
        outln!("deleted {} image(s): {}", doomed.len(), doomed.join(", "));
        Ok(())
    }
}

/// `--keep N`, with errors in the user's words rather than clap's ranges of Rust integers.
fn parse_keep(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(text) {
        // More images than any project holds keeps them all.
        return match text.parse::<usize>().unwrap_or(usize::MAX) {
            0 => Err("--keep must be at least 1".to_string()),
            n => Ok(n),
        };
    }
    if text.strip_prefix('-').is_some_and(digits) {
        return Err("--keep must be at least 1".to_string());
    }
    Err("--keep takes a whole number of images, e.g. --keep 6".to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_keep;

    #[test]
    fn keep_takes_a_whole_number_from_one() {
        assert_eq!(parse_keep("6"), Ok(6));
        assert_eq!(parse_keep("1"), Ok(1));
        assert_eq!(parse_keep("99999999999999999999999"), Ok(usize::MAX));
        for small in ["0", "-1", "00"] {
            let err = parse_keep(small).unwrap_err();
            assert!(
                err.starts_with("--keep must be at least 1"),
                "{small}: {err}"
            );
        }
        for bad in ["", "six", "2.5", "6 images", "+6", "-"] {
            let err = parse_keep(bad).unwrap_err();
            assert_eq!(
                err, "--keep takes a whole number of images, e.g. --keep 6",
                "{bad}"
            );
        }
    }
}
