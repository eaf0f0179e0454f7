//! What the rest of the repository expects of the image: the task images it names where they
//! feed the clusters, which must carry the tags the image caches, and the make targets and
//! scripts adoption removed.

use std::fmt;
use std::ops::Range;

/// A file that uses the cached task images, and where in it: only the lines a selector picks
/// out feed the clusters, so a CI job elsewhere in the same file on its own tag is no concern
/// of the image's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Relative to the repository root.
    pub file: String,
    pub selector: Selector,
}

/// Where in a consumer file the task images are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Every mention in the file counts.
    EveryMention,
    /// YAML: each key's own line and the lines indented deeper below it (a pipeline
    /// parameter's block, a map key's value).
    Keys(Vec<String>),
    /// Shell: the value of each assignment of the variables, with or without `export`,
    /// `local`, `readonly` or `declare`, quoted or not.
    Variables(Vec<String>),
}

impl Selector {
    /// What the selector names, in the words of the file's language.
    fn what(&self) -> &'static str {
        match self {
            Selector::Variables(_) => "variable",
            Selector::Keys(_) | Selector::EveryMention => "key",
        }
    }
}

impl Consumer {
    /// A file whose every mention counts.
    pub fn whole_file(file: &str) -> Consumer {
        Consumer {
            file: file.to_string(),
            selector: Selector::EveryMention,
        }
    }

    pub fn keys(file: &str, keys: &[&str]) -> Consumer {
        Consumer {
            file: file.to_string(),
            selector: Selector::Keys(keys.iter().map(ToString::to_string).collect()),
        }
    }

    pub fn variables(file: &str, variables: &[&str]) -> Consumer {
        Consumer {
            file: file.to_string(),
            selector: Selector::Variables(variables.iter().map(ToString::to_string).collect()),
        }
    }

    /// What the consumer file says of the task images: the mentions with another tag, and
    /// each selector that picks out no mention of a task image. `images` holds (config key,
    /// `REPO:TAG`).
    pub fn read(&self, images: &[(&str, &str)], text: &str) -> ConsumerReport {
        let repositories: Vec<&str> = images
            .iter()
            .filter_map(|(_, image)| split_image(image).map(|(repository, _)| repository))
            .collect();
        let lines: Vec<&str> = text.lines().collect();
        let mut report = ConsumerReport::default();
        for (name, spans) in select(&self.selector, &lines) {
            let names_an_image = spans.iter().any(|span| {
                repositories
                    .iter()
                    .any(|repository| !mentions(span.text(&lines), repository).is_empty())
            });
            if let (Some(name), false) = (&name, names_an_image) {
                report.unmatched.push(Unmatched {
                    file: self.file.clone(),
                    what: self.selector.what(),
                    name: name.clone(),
                    found: !spans.is_empty(),
                });
            }
            for span in &spans {
                for mismatch in tag_mismatches(
                    images,
                    &self.file,
                    name.as_deref(),
                    span.line,
                    span.text(&lines),
                ) {
                    // Two selected keys may hold the same line (one nested in the other).
                    if !report.mismatches.iter().any(|m| {
                        (m.line, &m.repository, &m.found)
                            == (mismatch.line, &mismatch.repository, &mismatch.found)
                    }) {
                        report.mismatches.push(mismatch);
                    }
                }
            }
        }
        report.mismatches.sort_by_key(|m| m.line);
        report
    }
}

/// What one consumer file says of the task images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerReport {
    pub mismatches: Vec<TagMismatch>,
    pub unmatched: Vec<Unmatched>,
}

/// A part of one line: `line` counts from 1, `columns` are byte offsets in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    line: usize,
    columns: Range<usize>,
}

impl Span {
    fn whole(index: usize, line: &str) -> Span {
        Span {
            line: index + 1,
            columns: 0..line.len(),
        }
    }

    fn text<'t>(&self, lines: &[&'t str]) -> &'t str {
        lines
            .get(self.line - 1)
            .and_then(|line| line.get(self.columns.clone()))
            .unwrap_or("")
    }
}

/// The parts of the lines each selector name picks out, in the order the config names them;
/// one unnamed entry holding every line when the selector is [`Selector::EveryMention`].
fn select(selector: &Selector, lines: &[&str]) -> Vec<(Option<String>, Vec<Span>)> {
    match selector {
        Selector::EveryMention => vec![(
            None,
            lines
                .iter()
                .enumerate()
                .map(|(index, line)| Span::whole(index, line))
                .collect(),
        )],
        Selector::Keys(keys) => keys
            .iter()
            .map(|key| (Some(key.clone()), yaml_key_lines(lines, key)))
            .collect(),
        Selector::Variables(variables) => variables
            .iter()
            .map(|variable| (Some(variable.clone()), shell_assignments(lines, variable)))
            .collect(),
    }
}

/// Each line of every block of YAML key `key`: the key's own line and the lines below it
/// indented deeper than the key, comment lines left out (they feed nothing). A key after a
/// list's `- ` is indented as far as the key itself, so its siblings are not its block.
fn yaml_key_lines(lines: &[&str], key: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let Some(column) = yaml_key_column(lines[index], key) else {
            index += 1;
            continue;
        };
        spans.push(Span::whole(index, lines[index]));
        index += 1;
        while let Some(line) = lines.get(index) {
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') {
                index += 1;
                continue;
            }
            if line.len() - content.len() <= column {
                break;
            }
            spans.push(Span::whole(index, line));
            index += 1;
        }
    }
    spans
}

/// Where `key` starts on `line` when the line is that key's `key:` (plain or quoted, after
/// any `- ` list markers); `None` for any other line, comments included.
fn yaml_key_column(line: &str, key: &str) -> Option<usize> {
    let mut content = line.trim_start();
    while let Some(rest) = content.strip_prefix('-') {
        if !rest.starts_with([' ', '\t']) {
            break;
        }
        content = rest.trim_start();
    }
    let column = line.len() - content.len();
    let after = [("", ""), ("\"", "\""), ("'", "'")]
        .iter()
        .find_map(|(open, close)| {
            content
                .strip_prefix(open)?
                .strip_prefix(key)?
                .strip_prefix(close)
        })?;
    let after = after.trim_start_matches([' ', '\t']).strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some(column)
}

/// The value of each assignment of shell variable `variable`: `NAME=value`, alone or among
/// other assignments, after `export`, `local`, `readonly`, `declare` or `typeset` and their
/// flags. A use such as `echo ${NAME}` is not an assignment.
fn shell_assignments(lines: &[&str], variable: &str) -> Vec<Span> {
    let mut spans = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let mut at = line.len() - line.trim_start().len();
        let first = word_end(line, at);
        if matches!(
            &line[at..first],
            "export" | "local" | "readonly" | "declare" | "typeset"
        ) {
            at = skip_blanks(line, first);
            while line[at..].starts_with('-') {
                at = skip_blanks(line, word_end(line, at));
            }
        }
        // A run of `NAME=value` words; the first word that is not one ends it (a command).
        while at < line.len() {
            let end = word_end(line, at);
            let Some((name, _)) = line[at..end].split_once('=') else {
                break;
            };
            if !is_shell_name(name) {
                break;
            }
            if name == variable {
                spans.push(Span {
                    line: index + 1,
                    columns: at + name.len() + 1..end,
                });
            }
            at = skip_blanks(line, end);
        }
    }
    spans
}

/// The end of the shell word starting at `at`: the first blank or `;`, `&`, `|` outside quotes.
fn word_end(line: &str, at: usize) -> usize {
    let mut quote = None;
    let mut escaped = false;
    for (offset, c) in line[at..].char_indices() {
        match (quote, c) {
            _ if escaped => escaped = false,
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, ' ' | '\t' | ';' | '&' | '|') => return at + offset,
            (None, _) => {}
        }
    }
    line.len()
}

fn skip_blanks(line: &str, at: usize) -> usize {
    line.len() - line[at..].trim_start_matches([' ', '\t']).len()
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A selector that picks out no mention of a task image: the config is stale (the key or
/// variable was renamed or moved), and the check would guard nothing there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    pub file: String,
    /// `key` or `variable`.
    pub what: &'static str,
    pub name: String,
    /// Whether the key or variable is in the file at all (it then names no task image).
    pub found: bool,
}

impl Unmatched {
    pub fn problem(&self) -> String {
        let (file, what, name) = (&self.file, self.what, &self.name);
        if self.found {
            format!("{file}: {what} {name} names no task image, so nothing there was compared")
        } else {
            format!("{file} has no {what} {name}, so nothing there was compared")
        }
    }

    pub fn fix(&self) -> String {
        format!(
            "name the {} that holds the task image now in image.task_image_consumers in \
             slurm-image.toml, or remove {} there if the file no longer uses the image",
            self.what, self.name
        )
    }
}

impl fmt::Display for Unmatched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; fix: {}", self.problem(), self.fix())
    }
}

/// One mention of a task image's repository, where the file feeds the clusters, whose tag
/// differs from the one the image caches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMismatch {
    pub file: String,
    pub line: usize,
    /// The key or variable that holds it, when the config names one.
    pub holder: Option<String>,
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
        let holder = self
            .holder
            .as_ref()
            .map(|holder| format!(" ({holder})"))
            .unwrap_or_default();
        format!(
            "{}:{}{holder} names {}:{} but the image caches {}:{} ({} in slurm-image.toml)",
            self.file,
            self.line,
            self.repository,
            self.found,
            self.repository,
            self.cached,
            self.key
        )
    }

    /// Either side may be the one that moved: the consumer back to the cached tag, or the
    /// config to the consumer's tag with new images built from it.
    pub fn fix(&self) -> String {
        format!(
            "name {}:{} on line {}, or set {} = \"{}:{}\" in slurm-image.toml and build new images; \
             until they agree, the clusters' jobs pull the task image instead of using the image's cache",
            self.repository,
            self.cached,
            self.line,
            self.key,
            self.repository,
            self.found
        )
    }
}

impl fmt::Display for TagMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; fix: {}", self.problem(), self.fix())
    }
}

/// Each tag that follows a mention of `repository:` in `text`; `xdeterminedai/...` is another
/// repository, and a colon with no tag after it names none.
fn mentions(text: &str, repository: &str) -> Vec<String> {
    let wanted = format!("{repository}:");
    let mut tags = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(&wanted) {
        let start = from + at;
        let before = text[..start].chars().next_back();
        let tag: String = text[start + wanted.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            .collect();
        let whole = before
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')));
        if whole && !tag.is_empty() {
            tags.push(tag);
        }
        from = start + wanted.len();
    }
    tags
}

/// Every mention of a task image's repository (`REPO:`) in `text`, part of line `line` of
/// `file`, whose tag is not the cached one.
fn tag_mismatches(
    images: &[(&str, &str)],
    file: &str,
    holder: Option<&str>,
    line: usize,
    text: &str,
) -> Vec<TagMismatch> {
    let mut out = Vec::new();
    for (key, image) in images {
        let Some((repository, cached)) = split_image(image) else {
            continue;
        };
        for found in mentions(text, repository) {
            if found != cached {
                out.push(TagMismatch {
                    file: file.to_string(),
                    line,
                    holder: holder.map(str::to_string),
                    repository: repository.to_string(),
                    found,
                    cached: cached.to_string(),
                    key: key.to_string(),
                });
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

    /// Lines 30-42 and 287-296 of determined's .circleci/real_config.yml at c1e9c6d, with the
    /// unit-test job of line 2454 after them.
    const CIRCLECI: &str = "  gpu-machine-resource-class:
    type: string
    default: gpu.nvidia.small.multi
  # DEFAULT_PT_GPU_IMAGE: Pytorch training image reference used by the tests
  default-pt-gpu-hpc-image:
    type: string
    default: determinedai/pytorch-ngc-dev:0736b6d
  default-pt-tf-cpu-hpc-image:
    type: string
    default: determinedai/pytorch-tensorflow-cpu-dev:e960eae
  # Some python, go, and react dependencies are cached by circleci via `save_cache`/`restore_cache`.
  pull-task-images:
    steps:
      - when:
          steps:
            - run: docker pull determinedai/pytorch-ngc-dev:0736b6d
  test-unit-harness-pytorch2-cpu:
    docker:
      - image: determinedai/pytorch-ngc-dev:0736b6d
";

    /// Lines 72-82 of tools/slurm/scripts/slurmcluster.yaml, with a commented-out resource pool
    /// that names the key again (lines 118-120).
    const DEVCLUSTER: &str = "        task_container_defaults: 
          bind_mounts:
            - host_path: /etc/hosts
          # Workaround XDG_RUNTIME_DIR not provided by Slurm
          environment_variables:
            - ENROOT_RUNTIME_PATH=/srv/enroot
          image:
            cpu: determinedai/pytorch-tensorflow-cpu-dev:0736b6d
            cuda: determinedai/pytorch-ngc-dev:e960eae
        resource_pools:
          #     task_container_defaults:
          #       image: determinedai/pytorch-ngc-dev:old
";

    /// Lines 203-206 and 215 of tools/slurm/scripts/slurmcluster.sh, and the forms of an
    /// assignment a script may use.
    const SCRIPT: &str = r#"LOCAL_CPU_IMAGE_STRING="determinedai/pytorch-tensorflow-cpu-dev:e960eae"
LOCAL_CPU_IMAGE_SQSH=${LOCAL_CPU_IMAGE_STRING//[\/:]/+}.sqsh
LOCAL_CUDA_IMAGE_STRING="determinedai/pytorch-ngc-dev:e960eae"
        echo "WARNING: Local CPUImage ${LOCAL_CPU_IMAGE_STRING} does not match determinedai/pytorch-ngc-dev:old"
    export LOCAL_CUDA_IMAGE_STRING=determinedai/pytorch-ngc-dev:exported
local -r LOCAL_CPU_IMAGE_STRING='determinedai/pytorch-tensorflow-cpu-dev:local' OTHER=determinedai/pytorch-ngc-dev:other
declare -x LOCAL_CUDA_IMAGE_STRING="determinedai/pytorch-ngc-dev:declared"; docker pull determinedai/pytorch-ngc-dev:pulled
readonly LOCAL_CUDA_IMAGE_STRING=determinedai/pytorch-ngc-dev:e960eae
"#;

    fn found(report: &ConsumerReport) -> Vec<(usize, &str)> {
        report
            .mismatches
            .iter()
            .map(|m| (m.line, m.found.as_str()))
            .collect()
    }

    #[test]
    fn in_ci_only_the_hpc_parameters_feed_the_clusters() {
        let consumer = Consumer::keys(
            ".circleci/real_config.yml",
            &["default-pt-gpu-hpc-image", "default-pt-tf-cpu-hpc-image"],
        );
        let report = consumer.read(&IMAGES, CIRCLECI);
        assert_eq!(
            report,
            ConsumerReport {
                mismatches: vec![TagMismatch {
                    file: ".circleci/real_config.yml".into(),
                    line: 7,
                    holder: Some("default-pt-gpu-hpc-image".into()),
                    repository: "determinedai/pytorch-ngc-dev".into(),
                    found: "0736b6d".into(),
                    cached: "e960eae".into(),
                    key: "image.cuda_task_image".into(),
                }],
                unmatched: vec![],
            }
        );
        assert_eq!(
            report.mismatches[0].to_string(),
            ".circleci/real_config.yml:7 (default-pt-gpu-hpc-image) names determinedai/pytorch-ngc-dev:0736b6d but \
             the image caches determinedai/pytorch-ngc-dev:e960eae (image.cuda_task_image in slurm-image.toml); \
             fix: name determinedai/pytorch-ngc-dev:e960eae on line 7, or set image.cuda_task_image = \
             \"determinedai/pytorch-ngc-dev:0736b6d\" in slurm-image.toml and build new images; until they agree, \
             the clusters' jobs pull the task image instead of using the image's cache"
        );
        // Without a selector, the unit-test jobs' lines count too, as before selectors.
        let every = Consumer::whole_file(".circleci/real_config.yml").read(&IMAGES, CIRCLECI);
        assert_eq!(
            found(&every),
            [(7, "0736b6d"), (16, "0736b6d"), (19, "0736b6d")]
        );
        assert!(every.unmatched.is_empty());
    }

    #[test]
    fn a_yaml_key_holds_its_block_and_not_its_siblings_or_comments() {
        let consumer = Consumer::keys(
            "tools/slurm/scripts/slurmcluster.yaml",
            &["task_container_defaults"],
        );
        let report = consumer.read(&IMAGES, DEVCLUSTER);
        assert_eq!(found(&report), [(8, "0736b6d")], "{report:?}");
        assert_eq!(
            report.mismatches[0].key, "image.cpu_task_image",
            "{report:?}"
        );
        // A key after a list marker, quoted, or with its value on its own line.
        let lines: Vec<&str> = [
            "jobs:",
            "  - image: determinedai/pytorch-ngc-dev:a",
            "    name: determinedai/pytorch-ngc-dev:b",
            "  \"image\" :",
            "      determinedai/pytorch-ngc-dev:c",
            "  images: determinedai/pytorch-ngc-dev:d",
            "  image:determinedai/pytorch-ngc-dev:e",
        ]
        .to_vec();
        let spans: Vec<usize> = yaml_key_lines(&lines, "image")
            .iter()
            .map(|s| s.line)
            .collect();
        assert_eq!(spans, [2, 4, 5]);
    }

    #[test]
    fn a_shell_variable_is_its_assignments_values() {
        let consumer = Consumer::variables(
            "tools/slurm/scripts/slurmcluster.sh",
            &["LOCAL_CPU_IMAGE_STRING", "LOCAL_CUDA_IMAGE_STRING"],
        );
        let report = consumer.read(&IMAGES, SCRIPT);
        // Not line 4 (a use in an echo), nor OTHER's value or the docker pull after `;`.
        assert_eq!(
            found(&report),
            [(5, "exported"), (6, "local"), (7, "declared")],
            "{report:?}"
        );
        assert_eq!(
            report.mismatches[1].holder.as_deref(),
            Some("LOCAL_CPU_IMAGE_STRING")
        );
        assert!(report.unmatched.is_empty());
        assert_eq!(
            shell_assignments(&["A=\"x y\" B='p q' cmd B=z"], "B")[0].columns,
            10..15
        );
    }

    #[test]
    fn a_selector_that_picks_out_no_task_image_is_named() {
        let consumer = Consumer::keys(
            ".circleci/real_config.yml",
            &[
                "default-pt-gpu-hpc-image",
                "hpc-image",
                "gpu-machine-resource-class",
            ],
        );
        let report = consumer.read(&IMAGES, CIRCLECI);
        let lines: Vec<String> = report.unmatched.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                ".circleci/real_config.yml has no key hpc-image, so nothing there was compared; fix: \
                 name the key that holds the task image now in image.task_image_consumers in \
                 slurm-image.toml, or remove hpc-image there if the file no longer uses the image",
                ".circleci/real_config.yml: key gpu-machine-resource-class names no task image, so \
                 nothing there was compared; fix: name the key that holds the task image now in \
                 image.task_image_consumers in slurm-image.toml, or remove gpu-machine-resource-class \
                 there if the file no longer uses the image",
            ]
        );
        let variable = Consumer::variables("a.sh", &["LOCAL_CPU_IMAGE_SQSH"]).read(&IMAGES, SCRIPT);
        assert_eq!(variable.unmatched.len(), 1);
        assert!(
            variable.unmatched[0]
                .problem()
                .starts_with("a.sh: variable LOCAL_CPU_IMAGE_SQSH names no task image"),
            "{variable:?}"
        );
    }

    #[test]
    fn every_mention_counts_without_a_selector() {
        let yaml = "          image:\n            cpu: determinedai/pytorch-tensorflow-cpu-dev:0736b6d\n            cuda: determinedai/pytorch-ngc-dev:e960eae\n";
        let found =
            Consumer::whole_file("tools/slurm/scripts/slurmcluster.yaml").read(&IMAGES, yaml);
        assert_eq!(
            found.mismatches,
            [TagMismatch {
                file: "tools/slurm/scripts/slurmcluster.yaml".into(),
                line: 2,
                holder: None,
                repository: "determinedai/pytorch-tensorflow-cpu-dev".into(),
                found: "0736b6d".into(),
                cached: "e960eae".into(),
                key: "image.cpu_task_image".into(),
            }]
        );
        assert!(found.mismatches[0]
            .problem()
            .starts_with("tools/slurm/scripts/slurmcluster.yaml:2 names determinedai/pytorch-tensorflow-cpu-dev:0736b6d"));
        // Two mentions on a line are both read; another repository with the same ending is not one.
        let sh = "A=\"determinedai/pytorch-ngc-dev:e960eae\" B=determinedai/pytorch-ngc-dev:old\nC=xdeterminedai/pytorch-ngc-dev:other\nD=determinedai/pytorch-ngc-dev:\n";
        let found = Consumer::whole_file("a.sh").read(&IMAGES, sh);
        assert_eq!(
            found
                .mismatches
                .iter()
                .map(|m| (m.line, m.found.as_str()))
                .collect::<Vec<_>>(),
            [(1, "old")]
        );
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
