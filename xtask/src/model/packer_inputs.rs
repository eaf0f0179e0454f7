//! The template folder's files packer reads, by one rule that the input fingerprint, each
//! build's copy of the folder and the check for uncommitted inputs share.

use std::collections::BTreeMap;

/// Whether a path in the template folder (`static/motd`, `/` between parts) is, or holds, a
/// file packer may read: all but build/ (the launcher packages, of which a build copies the
/// chosen one alone), and any file or folder named like the config file, whose effect on the
/// image is already in the variables, or the README.
pub fn is_packer_input(rel: &str) -> bool {
    rel.split('/').next() != Some("build")
        && !rel
            .split('/')
            .any(|part| part == "slurm-image.toml" || part == "README.md")
}

/// How a file differs from what HEAD holds, as `git status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Difference {
    /// A tracked file with changes, staged or not (deleted and renamed ones included).
    Changed,
    /// A file git does not track.
    Untracked,
    /// A file git does not track because `.gitignore` says so.
    Ignored,
}

/// One file that differs from HEAD, by its path from the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncommitted {
    pub path: String,
    pub difference: Difference,
}

/// The files packer reads that differ from HEAD, in `status` (paths from the root) under the
/// template folder `template_dir`: what `build` names.
pub fn uncommitted_inputs(status: &[Uncommitted], template_dir: &str) -> Vec<Uncommitted> {
    one_per_path(status.iter().filter(|u| is_input(&u.path, template_dir)))
}

/// What a release refuses to start with: every tracked file with changes, anywhere (a release
/// commits on a branch, which must hold what it was built from), and every untracked or
/// ignored file packer reads, which the branch would lack. `--redo` keeps `redo_keeps`
/// (images.conf, which the release being finished has changed).
pub fn release_blockers(
    status: &[Uncommitted],
    template_dir: &str,
    redo_keeps: Option<&str>,
) -> Vec<Uncommitted> {
    one_per_path(status.iter().filter(|u| {
        Some(u.path.as_str()) != redo_keeps
            && (u.difference == Difference::Changed || is_input(&u.path, template_dir))
    }))
}

/// The refusal of a release over `blockers`, naming each file and the fix for each kind;
/// `redo_keeps` as for [`release_blockers`].
pub fn release_refusal(blockers: &[Uncommitted], redo_keeps: Option<&str>) -> Option<String> {
    if blockers.is_empty() {
        return None;
    }
    let why = match redo_keeps {
        Some(images_conf) => format!(
            "--redo commits {images_conf} alone, and its images must be what the release branch builds"
        ),
        None => "a release starts from a clean checkout, so that its images are what its branch builds"
            .to_string(),
    };
    let has = |difference| blockers.iter().any(|u| u.difference == difference);
    let mut fixes = Vec::new();
    if has(Difference::Changed) {
        fixes.push("commit or stash the changes (`git stash`)");
    }
    if has(Difference::Untracked) {
        fixes.push(
            "commit or remove the untracked files (`git stash --include-untracked` sets them aside too)",
        );
    }
    if has(Difference::Ignored) {
        fixes.push("remove the ignored files, or commit them (`git add -f PATH`)");
    }
    Some(format!(
        "uncommitted changes: {}: {why}; {}, then run the release again",
        named(blockers),
        fixes.join("; ")
    ))
}

/// The warning of a build over `inputs` ([`uncommitted_inputs`]).
pub fn build_warning(inputs: &[Uncommitted]) -> Option<String> {
    if inputs.is_empty() {
        return None;
    }
    Some(format!(
        "uncommitted inputs: {}: packer reads them, so this image is not what the branch builds; a release \
         refuses them until they are committed or removed",
        named(inputs)
    ))
}

/// Each file with how it differs: `static/x (untracked: packer reads it)`.
fn named(files: &[Uncommitted]) -> String {
    files
        .iter()
        .map(|u| match u.difference {
            Difference::Changed => format!("{} (changed)", u.path),
            Difference::Untracked => format!("{} (untracked: packer reads it)", u.path),
            Difference::Ignored => format!("{} (ignored by git: packer reads it)", u.path),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `path` (from the root) is a file packer reads from `template_dir`.
fn is_input(path: &str, template_dir: &str) -> bool {
    path.strip_prefix(template_dir)
        .and_then(|rel| rel.strip_prefix('/'))
        .is_some_and(is_packer_input)
}

/// One entry per path, sorted by path; a path git reports twice (a file deleted from the index
/// and left in the working tree is both changed and untracked) keeps the first kind, changed.
fn one_per_path<'a>(files: impl Iterator<Item = &'a Uncommitted>) -> Vec<Uncommitted> {
    let mut by_path: BTreeMap<&str, Difference> = BTreeMap::new();
    for file in files {
        by_path
            .entry(&file.path)
            .and_modify(|d| *d = (*d).min(file.difference))
            .or_insert(file.difference);
    }
    by_path
        .into_iter()
        .map(|(path, difference)| Uncommitted {
            path: path.to_string(),
            difference,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = "tools/slurm/packer";

    fn u(path: &str, difference: Difference) -> Uncommitted {
        Uncommitted {
            path: path.into(),
            difference,
        }
    }

    #[test]
    fn packer_reads_all_but_build_the_config_and_the_readme() {
        for input in [
            "main.pkr.hcl",
            "static/motd",
            "scripts/install-ansible.sh",
            "static/build/x",
            ".hidden",
        ] {
            assert!(is_packer_input(input), "{input}");
        }
        for not in [
            "build",
            "build/hpe-hpc-launcher_3.3.1-2_amd64.deb",
            "README.md",
            "slurm-image.toml",
            "static/README.md",
        ] {
            assert!(!is_packer_input(not), "{not}");
        }
    }

    #[test]
    fn a_release_refuses_every_tracked_change_and_each_input_git_lacks() {
        let status = [
            u("tools/slurm/packer/static/new.conf", Difference::Untracked),
            u("tools/slurm/packer/static/key.pem", Difference::Ignored),
            u("tools/slurm/packer/build/launcher.deb", Difference::Ignored),
            u("tools/slurm/packer/README.md", Difference::Untracked),
            u("notes.txt", Difference::Untracked),
            u("tools/slurm/terraform/images.conf", Difference::Changed),
            u("tools/slurm/packer/static/motd", Difference::Untracked),
            u("tools/slurm/packer/static/motd", Difference::Changed),
        ];
        let blockers = release_blockers(&status, DIR, None);
        assert_eq!(
            blockers,
            [
                u("tools/slurm/packer/static/key.pem", Difference::Ignored),
                u("tools/slurm/packer/static/motd", Difference::Changed),
                u("tools/slurm/packer/static/new.conf", Difference::Untracked),
                u("tools/slurm/terraform/images.conf", Difference::Changed),
            ]
        );
        assert_eq!(
            release_refusal(&blockers, None).unwrap(),
            "uncommitted changes: tools/slurm/packer/static/key.pem (ignored by git: packer reads it), \
             tools/slurm/packer/static/motd (changed), tools/slurm/packer/static/new.conf (untracked: packer \
             reads it), tools/slurm/terraform/images.conf (changed): a release starts from a clean checkout, so \
             that its images are what its branch builds; commit or stash the changes (`git stash`); commit or \
             remove the untracked files (`git stash --include-untracked` sets them aside too); remove the \
             ignored files, or commit them (`git add -f PATH`), then run the release again"
        );

        // --redo keeps images.conf, and names only the fix for what is left.
        let images_conf = Some("tools/slurm/terraform/images.conf");
        let redo = release_blockers(&status[..4], DIR, images_conf);
        assert_eq!(
            release_refusal(&redo, images_conf).unwrap(),
            "uncommitted changes: tools/slurm/packer/static/key.pem (ignored by git: packer reads it), \
             tools/slurm/packer/static/new.conf (untracked: packer reads it): --redo commits \
             tools/slurm/terraform/images.conf alone, and its images must be what the release branch builds; \
             commit or remove the untracked files (`git stash --include-untracked` sets them aside too); remove \
             the ignored files, or commit them (`git add -f PATH`), then run the release again"
        );
        assert_eq!(release_blockers(&status[5..6], DIR, images_conf), []);
        assert_eq!(release_refusal(&[], None), None);
    }

    #[test]
    fn a_build_names_only_what_packer_reads() {
        let status = [
            u("tools/slurm/packer/static/new.conf", Difference::Untracked),
            u(
                "tools/slurm/packer/ansible-playbook.yml",
                Difference::Changed,
            ),
            u("tools/slurm/packer/README.md", Difference::Changed),
            u("tools/slurm/terraform/images.conf", Difference::Changed),
            u("tools/slurm/packerish/x", Difference::Untracked),
        ];
        let inputs = uncommitted_inputs(&status, DIR);
        assert_eq!(
            build_warning(&inputs).unwrap(),
            "uncommitted inputs: tools/slurm/packer/ansible-playbook.yml (changed), \
             tools/slurm/packer/static/new.conf (untracked: packer reads it): packer reads them, so this image \
             is not what the branch builds; a release refuses them until they are committed or removed"
        );
        assert_eq!(build_warning(&uncommitted_inputs(&status[2..], DIR)), None);
    }
}
