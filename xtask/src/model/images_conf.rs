//! images.conf: one `key: value` line per workload manager, naming the image its clusters boot.
//!
//! A Terraform helper reads it with `grep <wm> images.conf | cut -d: -f2 | xargs`, so the file is
//! checked for anything that would fool that pipeline, and patched without touching any other
//! byte (comments, order, line endings, a missing final newline).

use anyhow::bail;

use crate::model::image::wm_of_image;
use crate::model::{is_gce_image_name, WorkloadManager};

/// A `key: value` line of images.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    pub key: String,
    pub value: String,
    /// Byte range of the value in the file's text.
    value_at: std::ops::Range<usize>,
}

/// A parsed images.conf that keeps its text, so a patch changes nothing else.
#[derive(Debug, Clone)]
pub struct ImagesConf {
    text: String,
    entries: Vec<Entry>,
}

/// What [`ImagesConf::pin`] did to the workload manager's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Replaced { old: String, new: String },
    Added { new: String },
    Unchanged,
}

impl ImagesConf {
    /// Parses and checks the file. Errors name the line and say how to fix it.
    pub fn parse(text: &str) -> anyhow::Result<ImagesConf> {
        // A conflict is named as such wherever its markers are: a message about the first
        // odd line would send the user to fix the wrong thing.
        for (index, line) in text.lines().enumerate() {
            let marker = ["<<<<<<<", "|||||||", "=======", ">>>>>>>"]
                .into_iter()
                .find(|m| line.starts_with(m));
            if let Some(marker) = marker {
                bail!(
                    "line {} is a merge-conflict marker (`{marker}`): the file has an unresolved merge conflict; keep \
                     one `slurm:` and one `pbs:` line, remove the marker lines, then `git add` the file",
                    index + 1
                );
            }
        }
        // grep takes a file with a NUL byte for binary and prints no line of it, so the
        // Terraform helper would read no image at all.
        if let Some(at) = text.find('\0') {
            bail!(
                "line {} holds a NUL byte: the Terraform helper's grep reads a file with one as binary and \
                 finds no image; remove it (`tr -d '\\000'`), keeping one `slurm:` and one `pbs:` line",
                text[..at].matches('\n').count() + 1
            );
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut offset = 0;
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            let line_no = index + 1;
            let start = offset;
            offset += raw.len();
            let line = raw.trim_end_matches(['\n', '\r']);
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            if trimmed.starts_with('#') {
                for wm in WorkloadManager::ALL {
                    if line.contains(wm.key()) {
                        bail!(
                            "line {line_no} is a comment that mentions `{wm}`: the Terraform helper greps \
                             images.conf for `{wm}`, so reword the comment without that word"
                        );
                    }
                }
                continue;
            }
            let Some((key, rest)) = line.split_once(':') else {
                bail!("line {line_no} is not `key: value`: {line:?}; write it as e.g. `slurm: <image name>`");
            };
            let key = key.trim();
            let value = rest.trim();
            if key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                bail!("line {line_no} has no valid key before `:`: {line:?}; write it as e.g. `pbs: <image name>`");
            }
            if value.is_empty() || value.contains(char::is_whitespace) || value.contains(':') {
                bail!("line {line_no} (`{key}`) has no single image name after `:`: {line:?}");
            }
            if let Some(wm) = misspelt(key) {
                bail!(
                    "line {line_no}: `{key}` is not a workload manager; did you mean `{wm}`? Write `{wm}: <image name>`"
                );
            }
            if let Some(first) = entries.iter().find(|e| e.key == key) {
                bail!(
                    "key `{key}` is on line {} and again on line {line_no}: keep one line per workload manager",
                    first.line
                );
            }
            for wm in WorkloadManager::ALL {
                if key != wm.key() && line.contains(wm.key()) {
                    bail!(
                        "line {line_no} (`{key}`) contains `{wm}`: the Terraform helper greps images.conf for \
                         `{wm}` and would read this line too; rename it"
                    );
                }
            }
            let value_start =
                start + (line.len() - rest.len()) + (rest.len() - rest.trim_start().len());
            entries.push(Entry {
                line: line_no,
                key: key.to_string(),
                value: value.to_string(),
                value_at: value_start..value_start + value.len(),
            });
        }
        Ok(ImagesConf {
            text: text.to_string(),
            entries,
        })
    }

    /// The image pinned for a workload manager, if the file has its line.
    pub fn pinned(&self, wm: WorkloadManager) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.key == wm.key())
            .map(|e| e.value.as_str())
    }

    /// The workload managers without a line: their clusters have no image to boot.
    pub fn missing(&self) -> Vec<WorkloadManager> {
        WorkloadManager::ALL
            .into_iter()
            .filter(|wm| self.pinned(*wm).is_none())
            .collect()
    }

    /// Lines whose key is not a workload manager (a typo, or one this tool does not know):
    /// kept as they are, but no cluster reads them.
    pub fn unknown_keys(&self) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| !WorkloadManager::ALL.iter().any(|wm| wm.key() == e.key))
            .collect()
    }

    /// The file's text with `image` pinned for `wm`: the value of its line replaced, or a new
    /// line added at the end in the file's own line ending.
    /// The new text is checked by every rule the file is read with, the Terraform helper's
    /// included, so the tool never writes a file it (or a cluster) would then refuse.
    pub fn pin(&self, wm: WorkloadManager, image: &str) -> anyhow::Result<(String, Change)> {
        if !is_gce_image_name(image) {
            bail!("{image:?} is not a valid GCE image name; images.conf left as it is");
        }
        if wm_of_image(image) != Some(wm) {
            bail!(
                "{image} is not a {wm} image (this tool's {wm} images are named det-environments-{wm}-ci-...); \
                 images.conf left as it is"
            );
        }
        let (text, change) = self.patched(wm, image);
        let patched = ImagesConf::parse(&text).map_err(|err| {
            anyhow::anyhow!("pinning {image} for {wm} would break images.conf ({err:#}); images.conf left as it is")
        })?;
        for other in WorkloadManager::ALL {
            let Some(pinned) = patched.pinned(other) else {
                continue;
            };
            let read = terraform_reads(&text, other);
            if read != pinned {
                bail!(
                    "pinning {image} for {wm} would make the Terraform helper (`grep {other} images.conf | cut -d: -f2 | xargs`) \
                     read {read:?} as the {other} image instead of {pinned}; images.conf left as it is"
                );
            }
        }
        Ok((text, change))
    }

    /// The text with the line patched, unchecked.
    fn patched(&self, wm: WorkloadManager, image: &str) -> (String, Change) {
        if let Some(entry) = self.entries.iter().find(|e| e.key == wm.key()) {
            if entry.value == image {
                return (self.text.clone(), Change::Unchanged);
            }
            let mut text = String::with_capacity(self.text.len() + image.len());
            text.push_str(&self.text[..entry.value_at.start]);
            text.push_str(image);
            text.push_str(&self.text[entry.value_at.end..]);
            return (
                text,
                Change::Replaced {
                    old: entry.value.clone(),
                    new: image.to_string(),
                },
            );
        }
        let eol = if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let mut text = self.text.clone();
        if text.is_empty() || text.ends_with('\n') {
            text.push_str(&format!("{wm}: {image}{eol}"));
        } else {
            // The file had no final newline; the new last line keeps it that way.
            text.push_str(&format!("{eol}{wm}: {image}"));
        }
        (
            text,
            Change::Added {
                new: image.to_string(),
            },
        )
    }
}

/// The workload manager a key that is not one was most likely meant to be: one letter added,
/// dropped, changed, or two swapped (`slrum`, `slum`, `pbss`); `None` for other keys.
fn misspelt(key: &str) -> Option<WorkloadManager> {
    WorkloadManager::ALL
        .into_iter()
        .find(|wm| key != wm.key() && edit_distance(key, wm.key()) == 1)
}

/// The optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours, one step each.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// What the Terraform helper reads as the image of `wm`: `grep <wm> images.conf | cut -d: -f2 |
/// xargs`, every line containing the word, its second `:` field (the whole line when it has no
/// `:`), the words joined by one space.
pub fn terraform_reads(text: &str, wm: WorkloadManager) -> String {
    text.lines()
        .filter(|line| line.contains(wm.key()))
        .map(|line| line.split(':').nth(1).unwrap_or(line))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkloadManager::{Pbs, Slurm};

    const SEED: &str =
        "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1717016272\n";

    const NEW_SLURM: &str = "det-environments-slurm-ci-2";
    const NEW_PBS: &str = "det-environments-pbs-ci-2";

    fn pin(text: &str, wm: WorkloadManager, image: &str) -> (String, Change) {
        ImagesConf::parse(text).unwrap().pin(wm, image).unwrap()
    }

    fn parse_err(text: &str) -> String {
        format!("{:#}", ImagesConf::parse(text).unwrap_err())
    }

    #[test]
    fn a_nul_byte_is_refused_with_its_line() {
        let err =
            parse_err("slurm: det-environments-slurm-ci-1\npbs: det-environments-pbs-ci-1\0\n");
        assert!(err.starts_with("line 2 holds a NUL byte"), "{err}");
        assert!(err.contains("reads a file with one as binary"), "{err}");
    }

    #[test]
    fn reads_pinned_images() {
        let conf = ImagesConf::parse(SEED).unwrap();
        assert_eq!(
            conf.pinned(Slurm),
            Some("det-environments-slurm-ci-1717047568")
        );
        assert_eq!(conf.pinned(Pbs), Some("det-environments-pbs-ci-1717016272"));
    }

    #[test]
    fn replaces_only_the_value() {
        let (text, change) = pin(SEED, Pbs, "det-environments-pbs-ci-1800000000");
        assert_eq!(text, "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1800000000\n");
        assert_eq!(
            change,
            Change::Replaced {
                old: "det-environments-pbs-ci-1717016272".into(),
                new: "det-environments-pbs-ci-1800000000".into()
            }
        );
    }

    #[test]
    fn keeps_comments_order_spacing_and_crlf() {
        let text = "# pinned images, one per line\r\npbs:   old-pbs  \r\n\r\nslurm:old-slurm\r\n";
        let (out, _) = pin(text, Slurm, NEW_SLURM);
        assert_eq!(
            out,
            "# pinned images, one per line\r\npbs:   old-pbs  \r\n\r\nslurm:det-environments-slurm-ci-2\r\n"
        );
        let (out, _) = pin(text, Pbs, NEW_PBS);
        assert_eq!(
            out,
            "# pinned images, one per line\r\npbs:   det-environments-pbs-ci-2  \r\n\r\nslurm:old-slurm\r\n"
        );
    }

    #[test]
    fn keeps_a_missing_final_newline() {
        let (out, _) = pin("slurm: a\npbs: det-environments-pbs-ci-2", Pbs, NEW_PBS);
        assert_eq!(out, "slurm: a\npbs: det-environments-pbs-ci-2");
    }

    #[test]
    fn adds_a_missing_key_in_the_files_line_ending() {
        let (out, change) = pin("slurm: a\n", Pbs, NEW_PBS);
        assert_eq!(out, "slurm: a\npbs: det-environments-pbs-ci-2\n");
        assert_eq!(
            change,
            Change::Added {
                new: NEW_PBS.into()
            }
        );
        let (out, _) = pin("slurm: a\r\n", Pbs, NEW_PBS);
        assert_eq!(out, "slurm: a\r\npbs: det-environments-pbs-ci-2\r\n");
        let (out, _) = pin("slurm: a", Pbs, NEW_PBS);
        assert_eq!(out, "slurm: a\npbs: det-environments-pbs-ci-2");
        let (out, _) = pin("", Slurm, NEW_SLURM);
        assert_eq!(out, "slurm: det-environments-slurm-ci-2\n");
    }

    #[test]
    fn same_image_is_unchanged() {
        let (out, change) = pin(SEED, Slurm, "det-environments-slurm-ci-1717047568");
        assert_eq!(out, SEED);
        assert_eq!(change, Change::Unchanged);
    }

    #[test]
    fn a_duplicated_key_names_both_lines() {
        let err = parse_err("slurm: a\npbs: b\nslurm: c\n");
        assert!(
            err.contains("`slurm` is on line 1 and again on line 3"),
            "{err}"
        );
    }

    #[test]
    fn a_line_without_a_key_is_named() {
        // The shape of a hand edit seen in the repository's history: the value without `pbs:`.
        let err = parse_err("slurm: a\ndet-environments-pbs-ci-1717016272\n");
        assert!(err.contains("line 2 is not `key: value`"), "{err}");
        let err = parse_err("slurm: a\n: b\n");
        assert!(err.contains("line 2 has no valid key"), "{err}");
        let err = parse_err("slurm:\n");
        assert!(
            err.contains("line 1 (`slurm`) has no single image name"),
            "{err}"
        );
        let err = parse_err("slurm: a b\n");
        assert!(
            err.contains("line 1 (`slurm`) has no single image name"),
            "{err}"
        );
    }

    #[test]
    fn lines_that_would_fool_the_terraform_grep_are_refused() {
        let err = parse_err("# the slurm image\nslurm: a\n");
        assert!(
            err.contains("line 1 is a comment that mentions `slurm`"),
            "{err}"
        );
        let err = parse_err("slurm: a\nold-pbs: b\npbs: c\n");
        assert!(err.contains("line 2 (`old-pbs`) contains `pbs`"), "{err}");
    }

    #[test]
    fn missing_lines_and_unknown_keys_are_found_and_kept() {
        let conf = ImagesConf::parse("").unwrap();
        assert_eq!(conf.missing(), [Slurm, Pbs]);
        assert!(conf.unknown_keys().is_empty());

        let text = "slurm: a\nlsf: foo\n";
        let conf = ImagesConf::parse(text).unwrap();
        assert_eq!(conf.missing(), [Pbs]);
        let unknown = conf.unknown_keys();
        assert_eq!(unknown.len(), 1);
        assert_eq!((unknown[0].line, unknown[0].key.as_str()), (2, "lsf"));
        assert_eq!(unknown[0].value, "foo");
        // Pinning leaves the unknown line where it is.
        assert_eq!(
            conf.pin(Pbs, NEW_PBS).unwrap().0,
            "slurm: a\nlsf: foo\npbs: det-environments-pbs-ci-2\n"
        );

        let conf = ImagesConf::parse(SEED).unwrap();
        assert!(conf.missing().is_empty() && conf.unknown_keys().is_empty());
    }

    #[test]
    fn an_invalid_image_name_is_refused() {
        let conf = ImagesConf::parse(SEED).unwrap();
        let err = conf.pin(Slurm, "Null").unwrap_err().to_string();
        assert!(err.contains("not a valid GCE image name"), "{err}");
    }

    #[test]
    fn an_image_of_another_workload_manager_or_team_is_refused() {
        let conf = ImagesConf::parse(SEED).unwrap();
        for (wm, image) in [
            (Pbs, "det-environments-slurm-ci-1800000000"),
            (Slurm, "other-team-image-1"),
            (Slurm, "det-environments-slurm-1"),
        ] {
            let err = conf.pin(wm, image).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{image} is not a {wm} image")),
                "{err}"
            );
            assert!(err.contains("images.conf left as it is"), "{err}");
        }
    }

    #[test]
    fn a_pin_the_file_would_then_refuse_is_refused() {
        // A pbs image whose name holds `slurm`: `grep slurm` would read both lines.
        let conf = ImagesConf::parse(SEED).unwrap();
        let err = conf
            .pin(Pbs, "det-environments-pbs-ci-slurm-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("would break images.conf"), "{err}");
        assert!(err.contains("line 2 (`pbs`) contains `slurm`"), "{err}");
        let err = ImagesConf::parse("slurm: a\n")
            .unwrap()
            .pin(Slurm, "det-environments-slurm-ci-pbs")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1 (`slurm`) contains `pbs`"), "{err}");
    }

    #[test]
    fn a_merge_conflict_is_named_as_one() {
        let text = "<<<<<<< HEAD\nslurm: det-environments-slurm-ci-2\n=======\nslurm: det-environments-slurm-ci-3\n>>>>>>> release\npbs: b\n";
        let err = parse_err(text);
        assert!(
            err.starts_with("line 1 is a merge-conflict marker (`<<<<<<<`): the file has an unresolved merge conflict"),
            "{err}"
        );
        // Markers after an otherwise odd line are still what is reported.
        let err = parse_err("slurm: a\nslurm: b\n=======\n");
        assert!(
            err.starts_with("line 3 is a merge-conflict marker (`=======`)"),
            "{err}"
        );
    }

    #[test]
    fn a_misspelt_key_gets_a_suggestion() {
        for (key, wm) in [
            ("slrum", "slurm"),
            ("slum", "slurm"),
            ("slurmm", "slurm"),
            ("pbd", "pbs"),
            ("pb", "pbs"),
        ] {
            let err = parse_err(&format!("{key}: det-environments-{wm}-ci-1\n"));
            assert_eq!(
                err,
                format!("line 1: `{key}` is not a workload manager; did you mean `{wm}`? Write `{wm}: <image name>`")
            );
        }
        // Other unknown keys are kept, as before.
        assert_eq!(
            ImagesConf::parse("lsf: foo\n")
                .unwrap()
                .unknown_keys()
                .len(),
            1
        );
        assert_eq!(edit_distance("slrum", "slurm"), 1);
        assert_eq!(edit_distance("lsf", "pbs"), 3);
    }

    #[test]
    fn the_terraform_helper_is_read_as_grep_cut_and_xargs_read_it() {
        assert_eq!(
            terraform_reads(SEED, Slurm),
            "det-environments-slurm-ci-1717047568"
        );
        assert_eq!(terraform_reads("pbs:a:b\nxpbs c\n", Pbs), "a xpbs c");
        assert_eq!(terraform_reads("slurm: a\n", Pbs), "");
    }
}
