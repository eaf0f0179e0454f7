//! What the rest of the repository expects of the image: the task images it names, which must
//! carry the tags the image caches, and the make targets and scripts adoption removed.

use std::fmt;

/// One mention of a task image's repository whose tag differs from the one the image caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMismatch {
    pub file: String,
    pub line: usize,
    /// `determinedai/pytorch-ngc-dev`.
    pub repository: String,
    /// The tag the file gives it.
    pub found: String,
    /// The tag slurm-image.toml gives it, which the image caches.
    pub cached: String,
    /// The config key of the task image (`image.cpu_task_image`).
    pub key: String,
}

impl TagMismatch {
    /// What is wrong: the file and line, and both tags.
    pub fn problem(&self) -> String {
        format!(
            "{}:{} names {}:{} but the image caches {}:{} ({} in slurm-image.toml)",
            self.file,
            self.line,
            self.repository,
            self.found,
            self.repository,
            self.cached,
            self.key
        )
    }

    pub fn fix(&self) -> &'static str {
        "make them agree (the line, or the config and a new image), or test jobs pull the task image afresh \
         instead of using the image's cache"
    }
}

impl fmt::Display for TagMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem(), self.fix())
    }
}

/// Every mention of a task image's repository (`REPO:`) in one consumer file whose tag is not
/// the cached one. `images` holds (config key, `REPO:TAG`).
pub fn tag_mismatches(images: &[(&str, &str)], file: &str, text: &str) -> Vec<TagMismatch> {
    let mut out = Vec::new();
    for (key, image) in images {
        let Some((repository, cached)) = split_image(image) else {
            continue;
        };
        let wanted = format!("{repository}:");
        for (index, line) in text.lines().enumerate() {
            let mut rest = line;
            let mut offset = 0;
            while let Some(at) = rest.find(&wanted) {
                let start = offset + at;
                let before = line[..start].chars().next_back();
                let tag: String = line[start + wanted.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                    .collect();
                // `xdeterminedai/...` is another repository; a tag must follow the colon.
                let whole = before.is_none_or(|c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
                });
                if whole && !tag.is_empty() && tag != cached {
                    out.push(TagMismatch {
                        file: file.to_string(),
                        line: index + 1,
                        repository: repository.to_string(),
                        found: tag,
                        cached: cached.to_string(),
                        key: key.to_string(),
                    });
                }
                offset = start + wanted.len();
                rest = &line[offset..];
            }
        }
    }
    out
}

/// `REPO:TAG` as (REPO, TAG); the colon after the last `/`, so a registry's port is not a tag.
fn split_image(image: &str) -> Option<(&str, &str)> {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    let colon = slash + image[slash..].find(':')?;
    Some((&image[..colon], &image[colon + 1..]))
}

/// What replaces each make target and script that adoption removes, found in the repository
/// by the text that calls it.
pub const REMOVED: [(&str, &str); 3] = [
    (
        "make -C tools/slurm/packer",
        "`cargo xtask slurm-image build --wm <slurm|pbs>` (`clean`, `init`, `fmt` for the other targets)",
    ),
    (
        "generate-pkr-vars.sh",
        "`cargo xtask slurm-image build`, which renders the variables (`build --dry-run` shows them)",
    ),
    (
        "update-variables.sh",
        "`cargo xtask slurm-image build`, which pins the image in images.conf",
    ),
];

/// The make targets of the removed Makefile, as the template folder's own files name them.
pub const MAKE_TARGETS: [(&str, &str); 6] = [
    (
        "make build-debug",
        "`cargo xtask slurm-image build --debug`",
    ),
    ("make build", "`cargo xtask slurm-image build [--wm pbs]`"),
    ("make clean", "`cargo xtask slurm-image clean`"),
    ("make init", "`cargo xtask slurm-image init`"),
    ("make fmt", "`cargo xtask slurm-image fmt`"),
    ("make check", "`cargo xtask slurm-image check`"),
];

/// A line that still calls what adoption removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub file: String,
    pub line: usize,
    pub calls: &'static str,
    pub instead: &'static str,
}

impl Leftover {
    pub fn problem(&self) -> String {
        format!(
            "{}:{} still calls `{}`, which adoption removed",
            self.file, self.line, self.calls
        )
    }

    pub fn fix(&self) -> String {
        format!("use {}", self.instead)
    }
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem(), self.fix())
    }
}

/// What a line found by `git grep` still calls; `in_template_folder` says whether the file is
/// in tools/slurm/packer, where a bare `make build` meant the removed Makefile.
pub fn leftover(file: &str, line: usize, text: &str, in_template_folder: bool) -> Option<Leftover> {
    let targets: &[(&str, &str)] = if in_template_folder {
        &MAKE_TARGETS
    } else {
        &[]
    };
    REMOVED
        .iter()
        .chain(targets)
        .find(|(calls, _)| text.contains(calls))
        .map(|&(calls, instead)| Leftover {
            file: file.to_string(),
            line,
            calls,
            instead,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGES: [(&str, &str); 2] = [
        (
            "image.cpu_task_image",
            "determinedai/pytorch-tensorflow-cpu-dev:e960eae",
        ),
        (
            "image.cuda_task_image",
            "determinedai/pytorch-ngc-dev:e960eae",
        ),
    ];

    #[test]
    fn every_mention_of_a_task_image_must_carry_the_cached_tag() {
        let yaml = "          image:\n            cpu: determinedai/pytorch-tensorflow-cpu-dev:0736b6d\n            cuda: determinedai/pytorch-ngc-dev:e960eae\n";
        let found = tag_mismatches(&IMAGES, "tools/slurm/scripts/slurmcluster.yaml", yaml);
        assert_eq!(
            found,
            [TagMismatch {
                file: "tools/slurm/scripts/slurmcluster.yaml".into(),
                line: 2,
                repository: "determinedai/pytorch-tensorflow-cpu-dev".into(),
                found: "0736b6d".into(),
                cached: "e960eae".into(),
                key: "image.cpu_task_image".into(),
            }]
        );
        assert_eq!(
            found[0].to_string(),
            "tools/slurm/scripts/slurmcluster.yaml:2 names determinedai/pytorch-tensorflow-cpu-dev:0736b6d but the \
             image caches determinedai/pytorch-tensorflow-cpu-dev:e960eae (image.cpu_task_image in slurm-image.toml): \
             make them agree (the line, or the config and a new image), or test jobs pull the task image afresh \
             instead of using the image's cache"
        );
        // Two mentions on a line are both read; another repository with the same ending is not one.
        let sh = "A=\"determinedai/pytorch-ngc-dev:e960eae\" B=determinedai/pytorch-ngc-dev:old\nC=xdeterminedai/pytorch-ngc-dev:other\nD=determinedai/pytorch-ngc-dev:\n";
        let found = tag_mismatches(&IMAGES, "a.sh", sh);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].line, found[0].found.as_str()), (1, "old"));
        assert_eq!(
            split_image("registry:5000/team/img:v1"),
            Some(("registry:5000/team/img", "v1"))
        );
        assert_eq!(split_image("img"), None);
    }

    #[test]
    fn leftovers_name_what_replaces_them() {
        let line = "        echo \"   Regenerate base image with: make -C tools/slurm/packer build WORKLOAD_MANAGER=${OPT_WORKLOAD_MANAGER}\"";
        let found = leftover("tools/slurm/scripts/slurmcluster.sh", 216, line, false).unwrap();
        assert_eq!(
            found.to_string(),
            "tools/slurm/scripts/slurmcluster.sh:216 still calls `make -C tools/slurm/packer`, which adoption removed: use \
             `cargo xtask slurm-image build --wm <slurm|pbs>` (`clean`, `init`, `fmt` for the other targets)"
        );
        // A bare `make build` is the removed Makefile only in the template's folder.
        assert_eq!(
            leftover("webui/react/README.md", 119, "make build", false),
            None
        );
        let readme = leftover(
            "tools/slurm/packer/README.md",
            18,
            "run `make build WORKLOAD_MANAGER=[type]`",
            true,
        )
        .unwrap();
        assert_eq!(readme.calls, "make build");
        let debug = leftover(
            "tools/slurm/packer/README.md",
            3,
            "`make build-debug`",
            true,
        )
        .unwrap();
        assert_eq!(debug.calls, "make build-debug");
        assert!(leftover("x", 1, "nothing here", true).is_none());
    }
}
