//! What the rest of the repository expects of the image, read from its files: the task
//! images' consumers, and calls of what adoption removed.

use xshell::Shell;

use crate::edges::git;
use crate::host::{read_bounded, HostTree};
use crate::model::config::Config;
use crate::model::consumers::{self, Leftover, TagMismatch, Unmatched};

/// What the consumer files say of the task images.
#[derive(Debug, Default)]
pub struct TaskImages {
    pub mismatches: Vec<TagMismatch>,
    /// Keys and variables the config names that hold no task image: the config is stale.
    pub unmatched: Vec<Unmatched>,
    /// Consumer files that are not there, as the config names them.
    pub missing: Vec<String>,
    /// Consumer files that are there but cannot be read as text (a folder, a FIFO, not UTF-8,
    /// far too large), each with why: their task images could not be compared.
    pub unreadable: Vec<(String, String)>,
}

/// The largest consumer file read: determined's CircleCI config, the largest, is 150 KiB.
const CONSUMER_MAX_BYTES: u64 = 16 * 1024 * 1024;

impl TaskImages {
    /// Reads every consumer file the config names.
    pub fn read(host: &HostTree, config: &Config) -> TaskImages {
        let images = config.task_images();
        let mut found = TaskImages::default();
        for consumer in &config.image.task_image_consumers {
            let path = host.root.join(&consumer.file);
            if std::fs::symlink_metadata(&path).is_err() {
                found.missing.push(consumer.file.clone());
                continue;
            }
            match read_bounded(&path, CONSUMER_MAX_BYTES) {
                Ok(text) => {
                    let report = consumer.read(&images, &text);
                    found.mismatches.extend(report.mismatches);
                    found.unmatched.extend(report.unmatched);
                }
                Err(err) => found
                    .unreadable
                    .push((consumer.file.clone(), format!("{:#}", err.root_cause()))),
            }
        }
        found
    }

    /// What stops `check` and `release`, one finding each: the mentions on another tag, then
    /// the keys and variables that hold no task image.
    pub fn problems(&self) -> Vec<String> {
        let unreadable = self.unreadable.iter().map(|(file, why)| {
            format!(
                "{file} cannot be read as text ({why}), so its task images were not compared: put the \
                 consumer file there, or correct its path in image.task_image_consumers"
            )
        });
        self.mismatches
            .iter()
            .map(ToString::to_string)
            .chain(self.unmatched.iter().map(ToString::to_string))
            .chain(unreadable)
            .collect()
    }

    /// The consumer files that are not there: a file the repository dropped no longer uses the
    /// image, so it is named but stops nothing.
    pub fn missing_lines(&self, host: &HostTree) -> Vec<String> {
        self.missing
            .iter()
            .map(|file| {
                format!(
                    "{file} is not there, so its task images were not compared: remove it from \
                     image.task_image_consumers in {} if the repository no longer has it",
                    host.show(&host.config_file)
                )
            })
            .collect()
    }

    /// Says each finding as a warning, as `build` does before it goes on.
    pub fn warn(&self, host: &HostTree) {
        for line in self.problems().into_iter().chain(self.missing_lines(host)) {
            errln!("warning: {line}");
        }
    }

    /// Fails naming every problem on a line of its own, as `check` and `release` do before any
    /// VM starts; a missing consumer file is only warned of.
    pub fn refuse_mismatches(&self, host: &HostTree) -> anyhow::Result<()> {
        for line in self.missing_lines(host) {
            errln!("warning: {line}");
        }
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        anyhow::bail!(
            "the task images the image would cache differ from those the clusters use:\n  {}",
            problems.join("\n  ")
        )
    }
}

/// Every line of the repository that still calls a make target or script adoption removed;
/// empty outside a git checkout. The xtask's folder, whose manual and adoption script name them
/// to say what replaced them, is left out, and so is the top README, which in the tool's own
/// repository explains adoption the same way (determined's names none of them).
pub fn leftovers(sh: &Shell, host: &HostTree) -> anyhow::Result<Vec<Leftover>> {
    let mut texts: Vec<&str> = consumers::REMOVED.iter().map(|(t, _)| *t).collect();
    texts.extend(consumers::MAKE_TARGETS.iter().map(|(t, _)| *t));
    let packer_dir = host.show(&host.packer_dir);
    let found = git::lines_containing(
        sh,
        &host.root,
        &texts,
        &[".", ":(exclude)xtask", ":(top,exclude)README.md"],
    )?;
    Ok(found
        .into_iter()
        .filter_map(|(file, line, text)| {
            let in_template_folder = file.starts_with(&format!("{packer_dir}/"));
            consumers::leftover(&file, line, &text, in_template_folder)
        })
        .collect())
}
