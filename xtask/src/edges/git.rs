//! git: the only module that runs it; it reads the images.conf of release branches and tags
//! and its history, makes a release's branch and commit, and pushes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context};
use xshell::{cmd, Cmd, Shell};

use crate::model::packer_inputs::{Difference, Uncommitted};
use crate::model::prune_plan::{glob_match, image_names_in};

/// Where images.conf sits in the repository.
const IMAGES_CONF: &str = "tools/slurm/terraform/images.conf";

/// The images pinned on release branches and tags, and what could not be read.
#[derive(Debug, Default)]
pub struct ReleasePins {
    /// Branch as `git branch -a` shows it (`release-0.1`, `origin/slurm-images-2024-06-01`),
    /// tag as `tag v0.29.0`, or `HEAD` -> the images its images.conf names.
    pub pins: BTreeMap<String, BTreeSet<String>>,
    /// Things the user should know: no repository, a branch without images.conf.
    pub notes: Vec<String>,
    /// Whether the branches could be read at all; without them prune must not delete.
    pub checked: bool,
}

/// The branches `release` makes: until their pull request is merged, what they pin is on no
/// release branch yet.
pub const RELEASE_COMMAND_BRANCHES: &str = "slurm-images-*";

/// The images named in images.conf on every local and remote-tracking branch whose name
/// matches one of `branch_patterns` (a remote branch matches by its name without the remote),
/// on every tag matching `tag_pattern`, and at `HEAD`: right after a build the working tree
/// pins the new image while every cluster of the committed tree still boots the old one. Two
/// git calls however many refs there are: a repository has hundreds of release tags.
pub fn release_pins(
    sh: &Shell,
    root: &Path,
    branch_patterns: &[&str],
    tag_pattern: &str,
) -> anyhow::Result<ReleasePins> {
    let mut found = ReleasePins::default();
    let _dir = sh.push_dir(root);
    if let Err(why) = repository_root(sh, root) {
        found.notes.push(format!(
            "{} is not the root of a git repository ({why}): no release branches or tags were checked",
            root.display()
        ));
        return Ok(found);
    }
    found.checked = true;
    let refs = branch_refs(sh)?;
    // (ref to read, as the plan shows it, whether a missing images.conf is worth a note)
    let mut wanted: Vec<(String, String, bool)> = refs
        .lines()
        .map(str::trim)
        .filter_map(|refname| {
            if let Some(tag) = refname.strip_prefix("refs/tags/") {
                // A tag made before images.conf existed protects nothing, and says nothing.
                return glob_match(tag_pattern, tag)
                    .then(|| (refname.to_string(), format!("tag {tag}"), false));
            }
            branch_patterns
                .iter()
                .find_map(|pattern| release_branch(refname, pattern))
                .map(|branch| (refname.to_string(), branch, true))
        })
        .collect();
    // A repository without commits has no HEAD to protect, and says nothing of it.
    wanted.push(("HEAD".to_string(), "HEAD".to_string(), false));
    let specs: Vec<String> = wanted
        .iter()
        .map(|(refname, _, _)| format!("{refname}:{IMAGES_CONF}"))
        .collect();
    let blobs = read_blobs(sh, &specs)?;
    for ((_, shown, noted), blob) in wanted.into_iter().zip(blobs) {
        match blob {
            Some(bytes) => {
                found
                    .pins
                    .insert(shown, image_names_in(&String::from_utf8_lossy(&bytes)));
            }
            None if noted => found.notes.push(format!(
                "{shown} has no {IMAGES_CONF}: it protects no image"
            )),
            None => {}
        }
    }
    Ok(found)
}

/// images.conf as each commit of `HEAD`'s history that changed it left it, newest first (at
/// most `limit`): what a rollback goes back through. `None` outside a git checkout.
pub fn images_conf_history(
    sh: &Shell,
    root: &Path,
    limit: usize,
) -> anyhow::Result<Option<Vec<String>>> {
    let _dir = sh.push_dir(root);
    if repository_root(sh, root).is_err() {
        return Ok(None);
    }
    let limit = format!("-n{limit}");
    // A repository without commits has no history: an empty one, not an error.
    let Ok(commits) = cmd!(sh, "git log {limit} --format=%H -- {IMAGES_CONF}")
        .quiet()
        .ignore_stderr()
        .read()
    else {
        return Ok(Some(Vec::new()));
    };
    let specs: Vec<String> = commits
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|commit| format!("{}:{IMAGES_CONF}", commit.trim()))
        .collect();
    Ok(Some(
        read_blobs(sh, &specs)?
            .into_iter()
            .flatten()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect(),
    ))
}

/// The file each `REV:PATH` in `specs` names, in order, `None` where there is none: one
/// `git cat-file --batch` for them all.
fn read_blobs(sh: &Shell, specs: &[String]) -> anyhow::Result<Vec<Option<Vec<u8>>>> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let mut input = specs.join("\n");
    input.push('\n');
    let output = cmd!(sh, "git cat-file --batch")
        .quiet()
        .stdin(input)
        .output()
        .context("reading images.conf on the branches and tags (`git cat-file --batch`)")?;
    let blobs = batch_blobs(&output.stdout);
    if blobs.len() != specs.len() {
        bail!(
            "`git cat-file --batch` answered {} of {} files: run `git fsck` on the repository",
            blobs.len(),
            specs.len()
        );
    }
    Ok(blobs)
}

/// The objects in the output of `git cat-file --batch`: `<oid> <type> <size>`, a line of the
/// object's bytes and a newline; `<spec> missing` for none. Only blobs are files.
fn batch_blobs(mut out: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut blobs = Vec::new();
    while let Some(end) = out.iter().position(|&b| b == b'\n') {
        let header = String::from_utf8_lossy(&out[..end]).into_owned();
        out = &out[end + 1..];
        let words: Vec<&str> = header.split(' ').collect();
        let size = match words.as_slice() {
            [_, _, size] => size.parse::<usize>().ok(),
            _ => None,
        };
        let Some(size) = size.filter(|&size| size <= out.len()) else {
            // `missing`, `ambiguous`: the spec names no object.
            blobs.push(None);
            continue;
        };
        let is_blob = words[1] == "blob";
        blobs.push(is_blob.then(|| out[..size].to_vec()));
        out = &out[(size + 1).min(out.len())..];
    }
    blobs
}

/// Whether `root` is the root of a git repository; if not, why. Only a repository rooted at the
/// host tree counts: a copy of the tree inside some other repository (a test's temporary
/// folder under target/) must not read or change that one.
fn repository_root(sh: &Shell, root: &Path) -> Result<(), String> {
    let _dir = sh.push_dir(root);
    let toplevel = cmd!(sh, "git rev-parse --show-toplevel")
        .quiet()
        .ignore_stderr()
        .read();
    let same_root = toplevel.as_ref().is_ok_and(|top| {
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        canon(Path::new(top.trim())).is_some() && canon(Path::new(top.trim())) == canon(root)
    });
    match toplevel {
        _ if same_root => Ok(()),
        Err(err) => Err(format!("git cannot read it ({err})")),
        Ok(top) => Err(format!("git's repository root is {}", top.trim())),
    }
}

/// The checkout a release starts from.
#[derive(Debug)]
pub struct Checkout {
    /// The current branch; `None` on a detached HEAD.
    pub branch: Option<String>,
    /// HEAD's commit, abbreviated.
    pub head: String,
    /// Tracked files with changes, staged or not, as paths from the root.
    pub changed: Vec<String>,
}

/// Reads the checkout at `root`: its branch, its commit and its changed tracked files. Fails,
/// saying what to do, when `root` is not the root of a git repository with a commit.
pub fn checkout(sh: &Shell, root: &Path) -> anyhow::Result<Checkout> {
    let _dir = sh.push_dir(root);
    if let Err(why) = repository_root(sh, root) {
        bail!(
            "{} is not the root of a git repository ({why}): a release makes a branch and a commit, \
             so run it in the repository's git checkout",
            root.display()
        );
    }
    let head_commit = "HEAD^{commit}";
    let head = cmd!(sh, "git rev-parse -q --short --verify {head_commit}")
        .quiet()
        .ignore_stderr()
        .read()
        .map_err(|_| {
            anyhow::anyhow!("the repository has no commit yet: a release branches from HEAD")
        })?;
    let branch = current_branch(sh, root);
    // `--no-optional-locks`: looking must not rewrite the index (a dry run writes nothing).
    let status = cmd!(
        sh,
        "git --no-optional-locks status --porcelain=v1 -z --untracked-files=no"
    )
    .quiet()
    .read()
    .context("reading which tracked files have changes (`git status`)")?;
    Ok(Checkout {
        branch,
        head,
        changed: changed_paths(&status),
    })
}

/// The files under `dir` (a path from the root) that differ from HEAD: tracked files with
/// changes, and untracked and ignored files, each one by one, by its path from the root. `None`
/// when `root` is not the root of a git repository: there is no HEAD to differ from.
pub fn uncommitted_under(
    sh: &Shell,
    root: &Path,
    dir: &str,
) -> anyhow::Result<Option<Vec<Uncommitted>>> {
    let _dir = sh.push_dir(root);
    if repository_root(sh, root).is_err() {
        return Ok(None);
    }
    // `traditional` with `--untracked-files=all` lists each ignored file, not its folder.
    let status = cmd!(
        sh,
        "git --no-optional-locks status --porcelain=v1 -z --untracked-files=all --ignored=traditional -- {dir}"
    )
    .quiet()
    .read()
    .with_context(|| format!("reading which files in {dir} differ from HEAD (`git status`)"))?;
    Ok(Some(status_entries(&status)))
}

/// The paths of `git status --porcelain=v1 -z`.
fn changed_paths(status: &str) -> Vec<String> {
    status_entries(status).into_iter().map(|u| u.path).collect()
}

/// The entries of `git status --porcelain=v1 -z`: `XY path`, and for a rename or copy the new
/// path followed by the old one as its own entry; `??` is untracked, `!!` ignored.
fn status_entries(status: &str) -> Vec<Uncommitted> {
    let mut found = Vec::new();
    let mut entries = status.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        let (Some(code), Some(path)) = (entry.get(..2), entry.get(3..)) else {
            continue;
        };
        let difference = match code {
            "??" => Difference::Untracked,
            "!!" => Difference::Ignored,
            _ => Difference::Changed,
        };
        found.push(Uncommitted {
            path: path.to_string(),
            difference,
        });
        if code.contains(['R', 'C']) {
            if let Some(old) = entries.next() {
                found.push(Uncommitted {
                    path: old.to_string(),
                    difference,
                });
            }
        }
    }
    found
}

/// Every local and remote-tracking branch and every tag of the repository in the shell's
/// folder, one full ref name (`refs/heads/main`, `refs/remotes/origin/release-0.1`,
/// `refs/tags/v0.29.0`) a line.
fn branch_refs(sh: &Shell) -> anyhow::Result<String> {
    cmd!(
        sh,
        "git for-each-ref --format=%(refname) refs/heads refs/remotes refs/tags"
    )
    .quiet()
    .read()
    .context("listing the git branches and tags")
}

/// The branches named `name`, local and remote-tracking, as `git branch -a` shows them.
pub fn branches_named(sh: &Shell, root: &Path, name: &str) -> anyhow::Result<Vec<String>> {
    let _dir = sh.push_dir(root);
    let refs = branch_refs(sh)?;
    Ok(refs
        .lines()
        .filter_map(|refname| {
            if refname.strip_prefix("refs/heads/") == Some(name) {
                return Some(name.to_string());
            }
            let remote = refname.strip_prefix("refs/remotes/")?;
            let (_, branch) = remote.split_once('/')?;
            (branch == name).then(|| remote.to_string())
        })
        .collect())
}

/// Whether git accepts `name` as a new branch's name (`git check-ref-format --branch`).
pub fn is_valid_branch_name(sh: &Shell, name: &str) -> bool {
    cmd!(sh, "git check-ref-format --branch {name}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// Creates branch `name` at HEAD and switches to it; the working tree stays as it is.
pub fn create_branch(sh: &Shell, root: &Path, name: &str) -> anyhow::Result<()> {
    let _dir = sh.push_dir(root);
    crate::output::run_child(cmd!(sh, "git checkout -q -b {name}").quiet())
        .with_context(|| format!("creating the branch {name} (`git checkout -b {name}`)"))
}

/// The git config key that marks a branch as made by `release`; `git branch -D` removes it
/// with the branch.
fn release_mark(name: &str) -> String {
    format!("branch.{name}.slurmImageRelease")
}

/// Marks `name` as a branch `release` made, so that `--redo` knows it later.
pub fn mark_release_branch(sh: &Shell, root: &Path, name: &str) -> anyhow::Result<()> {
    let _dir = sh.push_dir(root);
    let key = release_mark(name);
    crate::output::run_child(cmd!(sh, "git config {key} true").quiet())
        .with_context(|| format!("marking {name} as a release branch (`git config {key} true`)"))
}

/// Whether `release` made the branch `name` in this repository.
pub fn is_marked_release_branch(sh: &Shell, root: &Path, name: &str) -> bool {
    let _dir = sh.push_dir(root);
    let key = release_mark(name);
    cmd!(sh, "git config --get {key}")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok_and(|value| value.trim() == "true")
}

/// Goes back to `back_to` (a branch, or a commit for a detached HEAD) and deletes the branch
/// `name`, which must hold nothing new: a release that had nothing to commit.
pub fn leave_and_delete_branch(
    sh: &Shell,
    root: &Path,
    name: &str,
    back_to: &str,
) -> anyhow::Result<()> {
    let _dir = sh.push_dir(root);
    crate::output::run_child(cmd!(sh, "git checkout -q {back_to}").quiet())
        .with_context(|| format!("going back to {back_to} (`git checkout {back_to}`)"))?;
    crate::output::run_child(cmd!(sh, "git branch -q -D {name}").quiet())
        .with_context(|| format!("deleting the branch {name} (`git branch -D {name}`)"))
}

/// Why git could not commit as the user, when it could not: no `user.name` or `user.email`
/// that git accepts (`git var` applies the same rule as `git commit`). `None` when it can.
/// One call, the committer's: the author's comes from the same settings unless
/// `GIT_AUTHOR_*` variables say otherwise, and then they were set on purpose.
pub fn identity_problem(sh: &Shell, root: &Path) -> Option<String> {
    let _dir = sh.push_dir(root);
    let output = cmd!(sh, "git var GIT_COMMITTER_IDENT")
        .quiet()
        .ignore_status()
        .output()
        .ok()?;
    if output.status.success() {
        return None;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    // git's last line is the reason; the lines before it are its advice, which the caller
    // gives in one line of its own.
    let why = stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("git did not say why")
        .trim_start_matches("fatal: ")
        .to_string();
    Some(format!("git has no identity to commit with ({why})"))
}

/// The commands that give git an identity, for a message.
pub const IDENTITY_FIX: &str =
    "git config --global user.name \"Your Name\" && git config --global user.email you@example.com";

/// The current branch, `None` on a detached HEAD.
pub fn current_branch(sh: &Shell, root: &Path) -> Option<String> {
    let _dir = sh.push_dir(root);
    cmd!(sh, "git symbolic-ref -q --short HEAD")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .filter(|b| !b.trim().is_empty())
}

/// The text of `path` (from the root) as HEAD holds it; `None` where HEAD has no such file or
/// git cannot say.
pub fn file_at_head(sh: &Shell, root: &Path, path: &str) -> Option<String> {
    let _dir = sh.push_dir(root);
    let spec = format!("HEAD:{path}");
    cmd!(sh, "git show {spec}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
}

/// Whether `path` differs from its committed version at HEAD.
pub fn differs_from_head(sh: &Shell, root: &Path, path: &Path) -> anyhow::Result<bool> {
    let _dir = sh.push_dir(root);
    let output = cmd!(sh, "git diff --quiet HEAD -- {path}")
        .quiet()
        .ignore_status()
        .output()
        .context("comparing with HEAD (`git diff`)")?;
    match output.status.code() {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => bail!(
            "`git diff --quiet HEAD -- {}` failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
}

/// Commits `path` alone, whatever else is staged, with the user's git identity; returns the
/// new commit, abbreviated.
pub fn commit_file(sh: &Shell, root: &Path, path: &Path, message: &str) -> anyhow::Result<String> {
    let _dir = sh.push_dir(root);
    cmd!(sh, "git commit -q -F - -- {path}")
        .quiet()
        .stdin(message)
        .run()
        .with_context(|| format!("committing {} (`git commit`)", path.display()))?;
    cmd!(sh, "git rev-parse --short HEAD")
        .quiet()
        .read()
        .context("reading the new commit")
}

/// The URL of the `origin` remote, if there is one.
pub fn origin_url(sh: &Shell, root: &Path) -> Option<String> {
    let _dir = sh.push_dir(root);
    cmd!(sh, "git remote get-url origin")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// Whether `origin` has the branch `name` (as last fetched).
pub fn origin_has(sh: &Shell, root: &Path, name: &str) -> bool {
    let _dir = sh.push_dir(root);
    let refname = format!("refs/remotes/origin/{name}");
    crate::output::run_child(
        cmd!(sh, "git rev-parse -q --verify {refname}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr(),
    )
    .is_ok()
}

/// The remote `branch` tracks (`branch.<name>.remote`), if it tracks one.
pub fn tracked_remote(sh: &Shell, root: &Path, branch: &str) -> Option<String> {
    let _dir = sh.push_dir(root);
    let key = format!("branch.{branch}.remote");
    cmd!(sh, "git config --get {key}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .map(|remote| remote.trim().to_string())
        .filter(|remote| !remote.is_empty() && remote != ".")
}

/// Updates the remote-tracking branch of `branch` from `remote` (`git fetch`), so that
/// [`behind_upstream`] compares with what the remote holds now.
pub fn fetch(sh: &Shell, root: &Path, remote: &str, branch: &str) -> anyhow::Result<()> {
    let _dir = sh.push_dir(root);
    crate::output::run_child(
        cmd!(sh, "git fetch -q {remote} {branch}")
            .quiet()
            .ignore_stdout(),
    )
    .with_context(|| format!("fetching {branch} from {remote} (`git fetch {remote} {branch}`)"))
}

/// How many commits the branch's upstream (as last fetched) has that `branch` lacks; `None`
/// when it has no upstream.
pub fn behind_upstream(sh: &Shell, root: &Path, branch: &str) -> Option<usize> {
    let _dir = sh.push_dir(root);
    let range = format!("{branch}..{branch}@{{upstream}}");
    cmd!(sh, "git rev-list --count {range}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The command that pushes `branch` to `remote` and makes it track it there.
pub fn push_command<'a>(sh: &'a Shell, remote: &str, branch: &str) -> Cmd<'a> {
    cmd!(sh, "git push -u {remote} {branch}")
}

/// Pushes `branch` to `remote` (`git push -u`), git's own progress on stderr.
pub fn push(sh: &Shell, root: &Path, remote: &str, branch: &str) -> anyhow::Result<()> {
    let _dir = sh.push_dir(root);
    let push = push_command(sh, remote, branch);
    // Echoed here, not by xshell, whose echo panics when stderr is gone.
    errln!("$ {push}");
    crate::output::run_child(push.quiet().ignore_stdout())
        .with_context(|| format!("pushing {branch} to {remote} (`git push -u {remote} {branch}`)"))
}

/// The git config key where `release` keeps the branch a release branch started from, so that
/// its `--redo --pr` opens the pull request into the same branch.
fn release_base_key(name: &str) -> String {
    format!("branch.{name}.slurmImageBase")
}

/// Records `base` as the branch the release branch `name` started from.
pub fn record_release_base(sh: &Shell, root: &Path, name: &str, base: &str) -> anyhow::Result<()> {
    let _dir = sh.push_dir(root);
    let key = release_base_key(name);
    crate::output::run_child(cmd!(sh, "git config {key} {base}").quiet())
        .with_context(|| format!("recording where {name} started (`git config {key} {base}`)"))
}

/// The branch the release branch `name` started from, when `release` recorded it.
pub fn release_base(sh: &Shell, root: &Path, name: &str) -> Option<String> {
    let _dir = sh.push_dir(root);
    let key = release_base_key(name);
    cmd!(sh, "git config --get {key}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .map(|base| base.trim().to_string())
        .filter(|base| !base.is_empty())
}

/// `git version 2.39.2`: that git runs at all.
pub fn version(sh: &Shell) -> anyhow::Result<String> {
    let out = cmd!(sh, "git --version")
        .quiet()
        .read()
        .context("running `git --version`")?;
    Ok(out.trim().to_string())
}

/// The tracked files' lines (in the working tree) that contain any of `texts`, as (file, line
/// number, line), read with `git grep` from the repository root; `pathspecs` limit the files.
pub fn lines_containing(
    sh: &Shell,
    root: &Path,
    texts: &[&str],
    pathspecs: &[&str],
) -> anyhow::Result<Vec<(String, usize, String)>> {
    let _dir = sh.push_dir(root);
    let patterns: Vec<String> = texts
        .iter()
        .flat_map(|t| ["-e".to_string(), t.to_string()])
        .collect();
    let output = cmd!(
        sh,
        "git --no-optional-locks grep -n -I -F --full-name {patterns...} -- {pathspecs...}"
    )
    .quiet()
    .ignore_status()
    .output()
    .context("searching the repository (`git grep`)")?;
    // git grep exits 1 when nothing matches, 128 outside a repository.
    match output.status.code() {
        Some(0 | 1) => {}
        _ => bail!(
            "`git grep` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (file, rest) = line.split_once(':')?;
            let (number, text) = rest.split_once(':')?;
            Some((file.to_string(), number.parse().ok()?, text.to_string()))
        })
        .collect())
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

    #[test]
    fn files_are_read_from_cat_file_batch_output() {
        let out = b"1111 blob 5\nslurm\nHEAD:x missing\n2222 blob 0\n\n3333 tree 3\nabc\n";
        assert_eq!(
            batch_blobs(out),
            [Some(b"slurm".to_vec()), None, Some(Vec::new()), None]
        );
        assert!(batch_blobs(b"").is_empty());
    }

    #[test]
    fn changed_paths_from_porcelain_status() {
        assert_eq!(changed_paths(""), Vec::<String>::new());
        assert_eq!(
            changed_paths(" M tools/slurm/terraform/images.conf\0M  README.md\0R  new name.txt\0old.txt\0D  gone\0"),
            [
                "tools/slurm/terraform/images.conf",
                "README.md",
                "new name.txt",
                "old.txt",
                "gone"
            ]
        );
        let kinds: Vec<Difference> =
            status_entries("D  p/a\0?? p/a\0?? p/n\0!! p/build/l.deb\0 M p/b\0")
                .into_iter()
                .map(|u| u.difference)
                .collect();
        assert_eq!(
            kinds,
            [
                Difference::Changed,
                Difference::Untracked,
                Difference::Untracked,
                Difference::Ignored,
                Difference::Changed
            ]
        );
    }
}
