//! What the rest of the repository expects of the image, read from its files: the task
//! images' consumers, and calls of what adoption removed.

use xshell::Shell;

use crate::edges::git;
use crate::host::HostTree;
use crate::model::config::Config;
use crate::model::consumers::{self, Leftover, TagMismatch};

/// What the consumer files say of the task images.
#[derive(Debug, Default)]
pub struct TaskImages {
    pub mismatches: Vec<TagMismatch>,
    /// Consumer files that are not there, as the config names them.
    pub missing: Vec<String>,
}

impl TaskImages {
    /// Reads every consumer file the config names.
    pub fn read(host: &HostTree, config: &Config) -> TaskImages {
        let images = config.task_images();
        let mut found = TaskImages::default();
        for file in &config.image.task_image_consumers {
            match std::fs::read_to_string(host.root.join(file)) {
                Ok(text) => found
                    .mismatches
                    .extend(consumers::tag_mismatches(&images, file, &text)),
                Err(_) => found.missing.push(file.clone()),
            }
        }
        found
    }

    /// The lines to show: each mismatch, then each missing file.
    pub fn lines(&self, host: &HostTree) -> Vec<String> {
        let missing = self.missing.iter().map(|file| {
            format!(
                "{file} is not there, so its task images were not compared: remove it from \
                 image.task_image_consumers in {} if the repository no longer has it",
                host.show(&host.config_file)
            )
        });
        self.mismatches
            .iter()
            .map(ToString::to_string)
            .chain(missing)
            .collect()
    }

    /// Says each line as a warning.
    pub fn warn(&self, host: &HostTree) {
        for line in self.lines(host) {
            errln!("warning: {line}");
        }
    }

    /// Fails naming every mismatch, as `check` and `release` do before any VM starts.
    pub fn refuse_mismatches(&self, host: &HostTree) -> anyhow::Result<()> {
        for line in self.lines(host).iter().skip(self.mismatches.len()) {
            errln!("warning: {line}");
        }
        if self.mismatches.is_empty() {
            return Ok(());
        }
        let all: Vec<String> = self.mismatches.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "the task images the image would cache differ from those the repository uses: {}",
            all.join("; ")
        )
    }
}

/// Every line of the repository that still calls a make target or script adoption removed;
/// empty outside a git checkout. The xtask's folder and the top README, which name them to
/// explain what replaced them (in this repository the README is the xtask's), are left out.
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
