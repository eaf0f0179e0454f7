//! `prune`: images leave in two steps: deprecated first, deleted by a later prune once the
//! grace has passed; never a protected one.

use anyhow::{bail, Context};
use clap::Args;
use xshell::Shell;

use crate::commands::flags::FormatFlags;
use crate::commands::{HelpFooter, GCLOUD_ENVIRONMENT};
use crate::edges::compute;
use crate::host::HostTree;
use crate::model::prune_plan;
use crate::model::records::{self, Record};
use crate::model::time::{rfc3339_utc, utc_date};
use crate::model::WorkloadManager;
use crate::steps::host_files::load_config;
use crate::steps::survey::{now, Survey};
use crate::term;

/// Deprecate old images, and delete those deprecated for longer than the grace.
///
/// Never touches an image pinned in images.conf here, at HEAD, on a release branch, a release
/// tag or a branch `release` made (slurm-images-*), a `branch`-labelled image or one not READY.
/// Of the rest it keeps the N best of each workload manager (verified before unverified before
/// failed, then the newest) and deprecates the others, naming the workload manager's pin as
/// their replacement: a deprecated image still boots, with a warning. A later prune deletes
/// an image once it has been deprecated for prune.grace (14 days). The plan is always printed
/// first; nothing changes without --yes or a yes at the terminal.
#[derive(Args)]
#[command(after_help = HelpFooter {
    examples: &[
        ("prune", "show the plan, then ask before deprecating and deleting"),
        ("prune --keep 3 --yes", "keep the best 3 of each, deprecate the rest, delete what has been deprecated long enough"),
    ],
    environment: &[GCLOUD_ENVIRONMENT],
    config: &["gcp.project", "prune.keep", "prune.grace", "prune.release_branches", "prune.release_tags"],
}.render())]
pub struct Prune {
    /// How many READY images of each workload manager to keep beyond the protected ones,
    /// verified first (default: prune.keep in slurm-image.toml).
    // Negative numbers reach the parser, which says what --keep takes, instead of clap's
    // "unexpected argument '-1'".
    #[arg(long, value_name = "N", value_parser = parse_keep, allow_negative_numbers = true)]
    pub keep: Option<usize>,
    /// Deprecate and delete without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub output: FormatFlags,
}

/// With `--format json`: a record per image of the plan, `done` for those this run deprecated
/// or deleted.
fn write_records(survey: &Survey, deprecated: &[String], deleted: &[String]) {
    for record in survey.prune_records(deprecated, deleted) {
        crate::output::record(&Record::Prune(record));
    }
}

/// With `--format json`: the result, naming what this run deprecated and deleted.
fn write_result(deprecated: &[String], deleted: &[String]) {
    crate::output::record(&Record::Result(records::Outcome {
        deprecated: Some(deprecated.to_vec()),
        deleted: Some(deleted.to_vec()),
        ..records::Outcome::done("prune")
    }));
}

impl Prune {
    pub fn run(self, sh: &Shell, host: &HostTree) -> anyhow::Result<()> {
        self.output.start();
        let config = load_config(host)?;
        let keep = self.keep.unwrap_or(config.prune.keep);
        let survey = Survey::take(sh, host, &config, keep)?;
        survey.print(&WorkloadManager::ALL);
        let deprecations = prune_plan::deprecations(&survey.plan);
        let deletions = prune_plan::deletions(&survey.plan);
        if deprecations.is_empty() && deletions.is_empty() {
            outln!("nothing to prune");
            write_records(&survey, &[], &[]);
            write_result(&[], &[]);
            return Ok(());
        }
        let deprecated_names: Vec<String> =
            deprecations.iter().map(|(name, _)| name.clone()).collect();
        if !deprecations.is_empty() {
            outln!(
                "would deprecate {} image(s), each replaced by its workload manager's pin: {}",
                deprecations.len(),
                deprecated_names.join(", ")
            );
        }
        if !deletions.is_empty() {
            outln!(
                "would delete {} image(s) deprecated for longer than {}: {}",
                deletions.len(),
                config.prune.grace,
                deletions.join(", ")
            );
        }
        if !survey.branches_checked && (self.yes || term::is_interactive()) {
            // An image pinned on a release branch or tag looks old from here: pruning without
            // having read them could break a release's clusters.
            write_records(&survey, &[], &[]);
            bail!(
                "nothing changed: the release branches and tags could not be read (see the note above), so \
                 images pinned on them cannot be told apart; run prune in the repository's git checkout"
            );
        }
        let question = format!(
            "Deprecate {} and delete {} image(s) in project {}?",
            deprecations.len(),
            deletions.len(),
            survey.project
        );
        if !term::approved(self.yes, &question)? {
            if survey.branches_checked {
                outln!("nothing changed: run again with --yes to prune");
            } else {
                outln!("nothing changed: run again with --yes in the repository's git checkout to prune");
            }
            write_records(&survey, &[], &[]);
            write_result(&[], &[]);
            return Ok(());
        }
        let gcloud = compute::connect(sh, &config.gcp.project)?;
        let now = now();
        let at = rfc3339_utc(now);
        for (done, (name, replacement)) in deprecations.iter().enumerate() {
            gcloud
                .deprecate_image(name, replacement.as_deref(), &at)
                .inspect_err(|_| write_records(&survey, &deprecated_names[..done], &[]))
                .with_context(|| {
                    format!(
                        "deprecated {}; not deprecated: {}; nothing deleted: run prune again to go on",
                        crate::model::list_or_none(&deprecated_names[..done]),
                        deprecated_names[done..].join(", ")
                    )
                })?;
        }
        if !deprecations.is_empty() {
            let grace_s = config.prune.grace_s()?;
            outln!(
                "deprecated {} image(s): {}; a prune from {} deletes them",
                deprecations.len(),
                deprecated_names.join(", "),
                utc_date(now + grace_s)
            );
        }
        if !deletions.is_empty() {
            gcloud
                .delete_images(&deletions)
                .inspect_err(|_| write_records(&survey, &deprecated_names, &[]))?;
            outln!(
                "deleted {} image(s): {}",
                deletions.len(),
                deletions.join(", ")
            );
        }
        write_records(&survey, &deprecated_names, &deletions);
        write_result(&deprecated_names, &deletions);
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
