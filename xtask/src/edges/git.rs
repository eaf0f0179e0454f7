//! git: the only module that runs it; it reads the images.conf of release branches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::model::prune_plan::{glob_match, image_names_in};

/// Where images.conf sits in the repository.
const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

/// The images pinned on release branches, and what could not be read.
#[derive(Debug, Default)]
pub struct ReleasePins {
    /// Branch, as `git branch -a` shows it (`release-0.1`, `origin/release-0.1`) -> images.
    pub pins: BTreeMap<String, BTreeSet<String>>,
    /// Things the user should know: no repository, a branch without images.conf.
    pub notes: Vec<String>,
    /// Whether the branches could be read at all; without them prune must not delete.
    pub checked: bool,
}

/// The images named in images.conf on every local and remote-tracking branch whose name
/// matches `pattern` (a remote branch matches by its name without the remote), and at `HEAD`:
/// right after a build the working tree pins the new image while every cluster of the
/// committed tree still boots the old one.
pub fn release_pins(sh: &Shell, root: &Path, pattern: &str) -> anyhow::Result<ReleasePins> {
    let mut found = ReleasePins::default();
    let _dir = sh.push_dir(root);
    // Only a repository rooted at the host tree counts: a copy of the tree inside some other
    // repository (a test's temporary folder under target/) must not read that one's branches.
    let toplevel = cmd!(sh, "git rev-parse --show-toplevel")
        .quiet()
        .ignore_stderr()
        .read();
    let same_root = toplevel.as_ref().is_ok_and(|top| {
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        canon(Path::new(top.trim())).is_some() && canon(Path::new(top.trim())) == canon(root)
    });
    if !same_root {
        let why = match &toplevel {
            Err(err) => format!("git cannot read it ({err})"),
            Ok(top) => format!("git's repository root is {}", top.trim()),
        };
        found.notes.push(format!(
            "{} is not the root of a git repository ({why}): no release branches were checked",
            root.display()
        ));
        return Ok(found);
    }
    found.checked = true;
    let refs = cmd!(
        sh,
        "git for-each-ref --format=%(refname) refs/heads refs/remotes"
    )
    .quiet()
    .read()
    .context("listing the git branches")?;
    for refname in refs.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some(branch) = release_branch(refname, pattern) else {
            continue;
        };
        let spec = format!("{refname}:{IMAGES_CONF}");
        match cmd!(sh, "git show {spec}").quiet().ignore_stderr().read() {
            Ok(text) => {
                found.pins.insert(branch, image_names_in(&text));
            }
            Err(_) => found.notes.push(format!(
                "{branch} has no {IMAGES_CONF}: it protects no image"
            )),
        }
    }
    // A repository without commits has no HEAD to protect.
    let head = format!("HEAD:{IMAGES_CONF}");
    if let Ok(text) = cmd!(sh, "git show {head}").quiet().ignore_stderr().read() {
        found.pins.insert("HEAD".to_string(), image_names_in(&text));
    }
    Ok(found)
}

/// `git version 2.39.2`: that git runs at all.
pub fn version(sh: &Shell) -> anyhow::Result<String> {
    let out = cmd!(sh, "git --version")
        .quiet()
        .read()
        .context("running `git --version`")?;
    Ok(out.trim().to_string())
}

/// The branch a ref names, as `git branch -a` shows it, when it matches the pattern.
fn release_branch(refname: &str, pattern: &str) -> Option<String> {
    if let Some(local) = refname.strip_prefix("refs/heads/") {
        return glob_match(pattern, local).then(|| local.to_string());
    }
    let remote = refname.strip_prefix("refs/remotes/")?;
    let (_, name) = remote.split_once('/')?;
    (name != "HEAD" && glob_match(pattern, name)).then(|| remote.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_match_by_their_own_name() {
        assert_eq!(
            release_branch("refs/heads/release-0.1", "release-*").as_deref(),
            Some("release-0.1")
        );
        assert_eq!(
            release_branch("refs/remotes/origin/release-0.2", "release-*").as_deref(),
            Some("origin/release-0.2")
        );
        assert_eq!(release_branch("refs/heads/main", "release-*"), None);
        assert_eq!(release_branch("refs/remotes/origin/HEAD", "*"), None);
        assert_eq!(
            release_branch("refs/remotes/origin/feature/release-1", "release-*"),
            None
        );
        assert_eq!(release_branch("refs/tags/release-1", "release-*"), None);
    }
}
