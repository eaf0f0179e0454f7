//! The release's pure parts: the branch name, the commit message, the pull request's address,
//! the command that finishes a part-done release, and the checklist left for a person.

use std::fmt::Write;

use crate::model::images_conf::ImagesConf;
use crate::model::launcher_choice::Launcher;
use crate::model::launcher_version::LauncherPackage;
use crate::model::time::utc_date;
use crate::model::WorkloadManager;

/// The release branch when `--branch` is not given: `slurm-images-<YYYY-MM-DD>`, today in UTC.
pub fn default_branch(now: i64) -> String {
    format!("slurm-images-{}", utc_date(now))
}

/// Whether `name` is of the form a release names its branch by default
/// (`slurm-images-<date>`); a branch of another name counts only if a release marked it.
pub fn has_release_branch_name(name: &str) -> bool {
    name.strip_prefix("slurm-images-")
        .is_some_and(|rest| !rest.is_empty())
}

/// How the release's launcher package was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LauncherSource {
    /// Looked up on Artifactory: the newest release, which is what a release exists to test.
    Newest,
    /// `--offline`: the package in build/, never compared with the releases.
    Offline,
    /// `--launcher PATH`, the path absolute so that it works from anywhere.
    Given(String),
}

impl LauncherSource {
    /// The flags that choose the launcher this way again.
    pub fn flags(&self) -> Vec<String> {
        match self {
            LauncherSource::Newest => Vec::new(),
            LauncherSource::Offline => vec!["--offline".to_string()],
            LauncherSource::Given(path) => vec!["--launcher".to_string(), shell_word(path)],
        }
    }

    /// Why the release does not carry the newest launcher; `None` when it does.
    pub fn caveat(&self) -> Option<String> {
        match self {
            LauncherSource::Newest => None,
            LauncherSource::Offline => Some(
                "--offline took the package in build/ without looking up the newest release"
                    .to_string(),
            ),
            LauncherSource::Given(path) => Some(format!(
                "--launcher {path} was used instead of looking up the newest release"
            )),
        }
    }
}

/// An image the release commit pins, with the launcher it was really built with: a redo keeps
/// the other workload manager's image, which may carry an older launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub wm: WorkloadManager,
    pub image: String,
    /// The launcher version (`3.3.1-2`), from the image's labels or description; `None` when
    /// neither says.
    pub launcher: Option<String>,
    /// Whether the commit changes this pin: an image reused while already pinned does not.
    pub changed: bool,
}

/// The message of the release commit: each image with the launcher it was built with, and the
/// package this run builds with. A dry run that could not decide the launcher shows it as
/// unknown, never a made-up version.
pub fn commit_message(pins: &[Pin], launcher: &Launcher, source: &LauncherSource) -> String {
    // The title names the images the commit changes; a pin it keeps is listed below, as such.
    let changed: Vec<&Pin> = pins.iter().filter(|pin| pin.changed).collect();
    let titled = if changed.is_empty() {
        pins.iter().collect()
    } else {
        changed
    };
    let names = titled
        .iter()
        .map(|pin| pin.wm.key())
        .collect::<Vec<_>>()
        .join(" and ");
    let version = |pin: &Pin| {
        pin.launcher
            .clone()
            .unwrap_or_else(|| "unknown".to_string())
    };
    let first = titled.first().map(|pin| version(pin));
    let title_launcher = match first {
        Some(one) if titled.iter().all(|pin| version(pin) == one) => format!("launcher {one}"),
        _ => format!(
            "launchers {}",
            titled
                .iter()
                .map(|pin| format!("{} {}", pin.wm, version(pin)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let images = if titled.len() == 1 { "image" } else { "images" };
    let mut text = format!("Update the {names} test cluster {images} ({title_launcher})\n\n");
    for pin in pins {
        let kept = if pin.changed {
            ""
        } else {
            "; unchanged: reused, already pinned"
        };
        let _ = writeln!(
            text,
            "{}: {} (launcher {}{kept})",
            pin.wm,
            pin.image,
            version(pin)
        );
    }
    let about = match (launcher, source.caveat()) {
        (Launcher::Unknown { .. }, caveat) => format!(
            "Built by `cargo xtask slurm-image release` with the launcher package the release decides on, unknown \
             in this plan.{}",
            caveat.map_or(String::new(), |caveat| format!(
                " This release does not carry the newest launcher: {caveat}."
            ))
        ),
        (Launcher::Known(package), None) => format!(
            "Built by `cargo xtask slurm-image release` with {}, the newest launcher release.",
            package.file_name
        ),
        (Launcher::Known(package), Some(caveat)) => format!(
            "Built by `cargo xtask slurm-image release` with {}. This release does not carry \
             the newest launcher: {caveat}.",
            package.file_name
        ),
    };
    text.push('\n');
    text.push_str(&wrap(&about, 72));
    text
}

/// The `owner/repo` of a GitHub remote URL (`git@github.com:o/r.git`, `https://github.com/o/r`,
/// `ssh://git@github.com/o/r.git`, with or without credentials); `None` for any other host.
pub fn github_repo(remote: &str) -> Option<(String, String)> {
    let remote = remote.trim();
    let schemes = ["https://", "http://", "ssh://", "git+ssh://", "git://"];
    let (host, path) = match schemes.iter().find_map(|s| remote.strip_prefix(s)) {
        Some(rest) => {
            let (authority, path) = rest.split_once('/')?;
            // Credentials before `@` and a port after `:` are not part of the host.
            let host = authority.rsplit('@').next()?;
            (host.split(':').next()?, path)
        }
        None => {
            // scp-like: `[user@]host:path`.
            let (user_host, path) = remote.split_once(':')?;
            (user_host.rsplit('@').next()?, path)
        }
    };
    if !host.eq_ignore_ascii_case("github.com") && !host.eq_ignore_ascii_case("www.github.com") {
        return None;
    }
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let (owner, repo) = path.split_once('/')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    (plain(owner) && plain(repo)).then(|| (owner.to_string(), repo.to_string()))
}

/// The page that opens a pull request of `branch` into `base` (GitHub's default branch when
/// `None`), for a GitHub remote.
pub fn compare_url(remote: &str, base: Option<&str>, branch: &str) -> Option<String> {
    let (owner, repo) = github_repo(remote)?;
    let range = match base {
        Some(base) => format!("{}...{}", url_path(base), url_path(branch)),
        None => url_path(branch),
    };
    Some(format!(
        "https://github.com/{owner}/{repo}/compare/{range}?expand=1"
    ))
}

/// The command that finishes a release on its branch: only these workload managers are built
/// again, the others' pins are kept, and then the commit is made. `carried` are the flags of
/// this release that the redo must keep to do the same (`--sequential`, `--no-verify`, `--yes`).
pub fn redo_command(wms: &[WorkloadManager], source: &LauncherSource, carried: &[&str]) -> String {
    let mut words = vec![
        "cargo xtask slurm-image release --redo".to_string(),
        wms.iter().map(|wm| wm.key()).collect::<Vec<_>>().join(","),
    ];
    words.extend(source.flags());
    words.extend(carried.iter().map(|flag| flag.to_string()));
    words.join(" ")
}

/// The images.conf lines a release would change, as a diff: each workload manager's image to
/// reuse, or the new one, whose name is packer's to choose.
pub fn pin_preview(conf: &ImagesConf, new: &[(WorkloadManager, Option<String>)]) -> String {
    let mut text = String::new();
    for (wm, reused) in new {
        let wm = *wm;
        match conf.pinned(wm) {
            Some(old) if Some(old) == reused.as_deref() => {
                let _ = writeln!(text, "  {wm}: {old} (reused, already pinned: unchanged)");
                continue;
            }
            Some(old) => {
                let _ = writeln!(text, "- {wm}: {old}");
            }
            None => {
                let _ = writeln!(text, "  (no `{wm}:` line yet: it is added)");
            }
        }
        match reused {
            Some(image) => {
                let _ = writeln!(text, "+ {wm}: {image} (reused: made from the same inputs)");
            }
            None => {
                let _ = writeln!(text, "+ {wm}: <the new {wm} image packer builds>");
            }
        }
    }
    text
}

/// What a finished release did, for its checklist.
pub struct Released<'a> {
    pub branch: &'a str,
    /// The branch the release started from, when it started on one.
    pub from: Option<&'a str>,
    /// Every pin of the commit, the kept ones of a redo included.
    pub pins: &'a [(WorkloadManager, String)],
    pub launcher: &'a LauncherPackage,
    pub source: &'a LauncherSource,
    /// The commit, abbreviated.
    pub commit: &'a str,
    /// images.conf as the user types it.
    pub images_conf: &'a str,
    /// The URL of the `origin` remote, if there is one.
    pub origin: Option<&'a str>,
    /// The branch the pull request goes into, when origin has the starting branch.
    pub base: Option<&'a str>,
    /// `--pr`: the remote the branch was pushed to and the pull request's address.
    pub opened: Option<(&'a str, &'a str)>,
}

/// The checklist at the end of a release: what was done, then what is left for a person with
/// the exact commands. The prune plan itself follows it, from `images`.
pub fn checklist(r: &Released<'_>) -> String {
    let mut text = String::from("done:\n");
    let from = r
        .from
        .map_or(String::new(), |from| format!(", from {from}"));
    let _ = writeln!(text, "  branch    {}{from}", r.branch);
    for (wm, image) in r.pins {
        let _ = writeln!(text, "  {:<9} {image}", wm.key());
    }
    match r.source.caveat() {
        None => {
            let _ = writeln!(
                text,
                "  launcher  {}, the newest release",
                r.launcher.file_name
            );
        }
        Some(caveat) => {
            let _ = writeln!(text, "  launcher  {}", r.launcher.file_name);
            let _ = writeln!(
                text,
                "  note      this release does not carry the newest launcher: {caveat}"
            );
        }
    }
    let _ = writeln!(text, "  commit    {}: {} only", r.commit, r.images_conf);
    if let Some((remote, url)) = r.opened {
        let _ = writeln!(text, "  pushed    {} to {remote}", r.branch);
        let _ = writeln!(text, "  pull request {url}");
        text.push_str("left for you:\n");
        let _ = writeln!(
            text,
            "  1. once it is merged, prune the old images (the plan as it stands is below; nothing was deleted):\n       \
             cargo xtask slurm-image prune"
        );
        return text;
    }
    text.push_str("left for you:\n");
    match r.origin {
        Some(_) => {
            let _ = writeln!(
                text,
                "  1. push the branch:\n       git push -u origin {}",
                r.branch
            );
        }
        None => {
            let _ = writeln!(
                text,
                "  1. push the branch (this repository has no `origin` remote; name yours):\n       git push -u <remote> {}",
                r.branch
            );
        }
    }
    let into = r.base.or(r.from).unwrap_or("the default branch");
    match r.origin.and_then(|url| compare_url(url, r.base, r.branch)) {
        Some(url) => {
            let _ = writeln!(text, "  2. open the pull request:\n       {url}");
        }
        None => {
            let why = if r.origin.is_some() {
                "origin is not on GitHub"
            } else {
                "there is no `origin` remote"
            };
            let _ = writeln!(
                text,
                "  2. open a pull request of {} into {into} ({why}, so there is no link to give)",
                r.branch
            );
        }
    }
    let _ = writeln!(
        text,
        "  3. once it is merged, prune the old images (the plan as it stands is below; nothing was deleted):\n       \
         cargo xtask slurm-image prune"
    );
    text
}

/// The body of a release's pull request: the commit message (which names each image, its
/// launcher and what changed inside), then how each image was verified, with its checks.
pub fn pull_request_body(
    message: &str,
    verified: &[(
        WorkloadManager,
        String,
        crate::model::verification::Verified,
    )],
) -> String {
    use crate::model::verification::{check_line, Verified};
    let mut text = message.trim_end().to_string();
    text.push_str("\n\n## Verification\n");
    for (wm, image, how) in verified {
        let _ = writeln!(text, "\n- {wm}: {image}: {}", how.summary());
        if let Verified::Passed(checks) = how {
            for check in checks {
                let _ = writeln!(text, "  - `{}`", check_line(check));
            }
        }
    }
    text
}

/// The pull request's title: the commit's subject.
pub fn pull_request_title(message: &str) -> &str {
    message
        .lines()
        .next()
        .unwrap_or("Update the test cluster images")
}

/// The commands that push a release branch and open its pull request, for a person to run
/// where the tool could not (no gh, gh not logged in).
pub fn pull_request_commands(
    remote: &str,
    base: &str,
    branch: &str,
    title: &str,
    body_file: &str,
) -> String {
    format!(
        "git push -u {} {}\ngh pr create --base {} --head {} --title {} --body-file {}",
        shell_word(remote),
        shell_word(branch),
        shell_word(base),
        shell_word(branch),
        shell_word(title),
        shell_word(body_file)
    )
}

/// A word for a shell command line, quoted only when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A branch name in a URL path: unreserved characters and `/` as they are, the rest
/// percent-encoded.
fn url_path(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Greedy word wrap at `width`, for a commit message's body.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// How a workload manager's part of a release ended without a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// packer (or a step around it) failed: there is no new image.
    Build,
    /// The new image failed its checks: it exists, labelled failed.
    Verification,
}

/// The workload managers that failed as `kind` says.
fn failed_as(failed: &[(WorkloadManager, Failure)], kind: Failure) -> Vec<&'static str> {
    failed
        .iter()
        .filter(|(_, how)| *how == kind)
        .map(|(wm, _)| wm.key())
        .collect()
}

/// What failed, each workload manager said once and as it failed: `the slurm build failed and
/// the pbs image failed verification`.
pub fn what_failed(failed: &[(WorkloadManager, Failure)]) -> String {
    let plural = |wms: &[&str]| if wms.len() > 1 { "s" } else { "" };
    let mut parts = Vec::new();
    let built = failed_as(failed, Failure::Build);
    if !built.is_empty() {
        parts.push(format!(
            "the {} build{} failed",
            built.join(" and "),
            plural(&built)
        ));
    }
    let verified = failed_as(failed, Failure::Verification);
    if !verified.is_empty() {
        parts.push(format!(
            "the {} image{} failed verification",
            verified.join(" and "),
            plural(&verified)
        ));
    }
    parts.join(" and ")
}

/// What `release --redo` does for each workload manager that failed: a failed build is built
/// again; an image that failed verification is reused while its inputs are the same and
/// verified again, so a flaky check needs nothing else, and a fix that changes the inputs makes
/// it build anew.
pub fn redo_does(failed: &[(WorkloadManager, Failure)]) -> String {
    let mut steps = Vec::new();
    let built = failed_as(failed, Failure::Build);
    if !built.is_empty() {
        steps.push(format!("builds {} again", built.join(" and ")));
    }
    let verified = failed_as(failed, Failure::Verification);
    if !verified.is_empty() {
        let (images, them, their) = if verified.len() > 1 {
            ("images", "them", "their")
        } else {
            ("image", "it", "its")
        };
        steps.push(format!(
            "verifies the {} {images} again (or builds {them} anew once a fix changes {their} inputs)",
            verified.join(" and ")
        ));
    }
    format!("it {}, then commits", steps.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use WorkloadManager::{Pbs, Slurm};

    #[test]
    fn each_failure_is_said_as_it_happened() {
        use Failure::{Build, Verification};
        assert_eq!(what_failed(&[(Pbs, Build)]), "the pbs build failed");
        assert_eq!(
            what_failed(&[(Slurm, Build), (Pbs, Build)]),
            "the slurm and pbs builds failed"
        );
        assert_eq!(
            what_failed(&[(Slurm, Verification), (Pbs, Verification)]),
            "the slurm and pbs images failed verification"
        );
        assert_eq!(
            what_failed(&[(Slurm, Build), (Pbs, Verification)]),
            "the slurm build failed and the pbs image failed verification"
        );
    }

    #[test]
    fn a_redo_says_what_it_does_for_each_failure() {
        use Failure::{Build, Verification};
        assert_eq!(
            redo_does(&[(Slurm, Build), (Pbs, Build)]),
            "it builds slurm and pbs again, then commits"
        );
        assert_eq!(
            redo_does(&[(Slurm, Build), (Pbs, Verification)]),
            "it builds slurm again, verifies the pbs image again (or builds it anew once a fix changes its \
             inputs), then commits"
        );
    }

    fn launcher() -> LauncherPackage {
        LauncherPackage::from_file_name("hpe-hpc-launcher_3.3.1-2_amd64.deb").unwrap()
    }

    fn pins() -> Vec<(WorkloadManager, String)> {
        vec![
            (Slurm, "det-environments-slurm-ci-1800000000".to_string()),
            (Pbs, "det-environments-pbs-ci-1800000001".to_string()),
        ]
    }

    fn pinned(launchers: [Option<&str>; 2]) -> Vec<Pin> {
        pins()
            .into_iter()
            .zip(launchers)
            .map(|((wm, image), launcher)| Pin {
                wm,
                image,
                launcher: launcher.map(str::to_string),
                changed: true,
            })
            .collect()
    }

    #[test]
    fn the_default_branch_is_dated() {
        assert_eq!(default_branch(1_717_047_568), "slurm-images-2024-05-30");
        assert!(has_release_branch_name(&default_branch(1_717_047_568)));
        for other in [
            "main",
            "master",
            "slurm-images-",
            "my-slurm-images-2024-05-30",
        ] {
            assert!(!has_release_branch_name(other), "{other}");
        }
    }

    #[test]
    fn the_commit_message_names_both_images_and_the_launcher() {
        let known = Launcher::Known(launcher());
        let both = pinned([Some("3.3.1-2"), Some("3.3.1-2")]);
        let message = commit_message(&both, &known, &LauncherSource::Newest);
        assert_eq!(
            message,
            "Update the slurm and pbs test cluster images (launcher 3.3.1-2)\n\
             \n\
             slurm: det-environments-slurm-ci-1800000000 (launcher 3.3.1-2)\n\
             pbs: det-environments-pbs-ci-1800000001 (launcher 3.3.1-2)\n\
             \n\
             Built by `cargo xtask slurm-image release` with\n\
             hpe-hpc-launcher_3.3.1-2_amd64.deb, the newest launcher release.\n"
        );
        assert!(message.lines().all(|l| l.len() <= 72), "{message}");
        let offline = commit_message(&both, &known, &LauncherSource::Offline);
        let words = offline.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains("does not carry the newest launcher: --offline"),
            "{offline}"
        );
        assert!(offline.lines().all(|l| l.len() <= 72), "{offline}");
        let unknown = Launcher::Unknown {
            why: "cannot reach https://arti.example/f/".into(),
        };
        let planned = commit_message(&pinned([None, None]), &unknown, &LauncherSource::Newest);
        assert!(
            planned
                .starts_with("Update the slurm and pbs test cluster images (launcher unknown)\n"),
            "{planned}"
        );
    }

    #[test]
    fn a_kept_image_is_named_with_the_launcher_it_was_built_with() {
        let redo = pinned([Some("3.3.1-2"), Some("3.5.0-0")]);
        let message = commit_message(&redo, &Launcher::Known(launcher()), &LauncherSource::Newest);
        let lines: Vec<&str> = message.lines().take(4).collect();
        assert_eq!(
            lines,
            [
                "Update the slurm and pbs test cluster images (launchers slurm 3.3.1-2, pbs 3.5.0-0)",
                "",
                "slurm: det-environments-slurm-ci-1800000000 (launcher 3.3.1-2)",
                "pbs: det-environments-pbs-ci-1800000001 (launcher 3.5.0-0)",
            ]
        );
        let unknown = commit_message(
            &pinned([None, Some("3.3.1-2")]),
            &Launcher::Known(launcher()),
            &LauncherSource::Newest,
        );
        assert!(
            unknown.contains("slurm: det-environments-slurm-ci-1800000000 (launcher unknown)"),
            "{unknown}"
        );
    }

    #[test]
    fn github_remotes_in_every_form() {
        let want = Some(("determined-ai".to_string(), "determined".to_string()));
        for remote in [
            "git@github.com:determined-ai/determined.git",
            "git@github.com:determined-ai/determined",
            "github.com:determined-ai/determined.git",
            "https://github.com/determined-ai/determined.git",
            "https://github.com/determined-ai/determined/",
            "https://someone:ghp_secret@github.com/determined-ai/determined.git",
            "ssh://git@github.com/determined-ai/determined.git",
            "ssh://git@github.com:22/determined-ai/determined.git",
            "git://github.com/determined-ai/determined.git\n",
        ] {
            assert_eq!(github_repo(remote), want, "{remote}");
        }
        for remote in [
            "git@gitlab.com:determined-ai/determined.git",
            "https://github.example.com/determined-ai/determined.git",
            "https://notgithub.com/determined-ai/determined.git",
            "/srv/git/determined.git",
            "../determined",
            "https://github.com/determined-ai",
            "https://github.com/determined-ai/determined/tree/main",
            "",
        ] {
            assert_eq!(github_repo(remote), None, "{remote}");
        }
    }

    #[test]
    fn the_compare_url_opens_the_pull_request() {
        let remote = "https://someone:ghp_secret@github.com/determined-ai/determined.git";
        assert_eq!(
            compare_url(remote, Some("main"), "slurm-images-2024-05-30").as_deref(),
            Some("https://github.com/determined-ai/determined/compare/main...slurm-images-2024-05-30?expand=1")
        );
        assert_eq!(
            compare_url(remote, None, "me/images#2").as_deref(),
            Some("https://github.com/determined-ai/determined/compare/me/images%232?expand=1")
        );
        assert_eq!(compare_url("git@gitlab.com:o/r.git", None, "b"), None);
    }

    #[test]
    fn the_redo_command_keeps_the_launcher_choice() {
        assert_eq!(
            redo_command(&[Pbs], &LauncherSource::Newest, &[]),
            "cargo xtask slurm-image release --redo pbs"
        );
        assert_eq!(
            redo_command(
                &[Slurm, Pbs],
                &LauncherSource::Offline,
                &["--sequential", "--no-verify", "--yes"]
            ),
            "cargo xtask slurm-image release --redo slurm,pbs --offline --sequential --no-verify --yes"
        );
        assert_eq!(
            redo_command(
                &[Slurm],
                &LauncherSource::Given("/home/me/my debs/hpe-hpc-launcher_3.3.1-2_amd64.deb".into()),
                &[]
            ),
            "cargo xtask slurm-image release --redo slurm --launcher '/home/me/my debs/hpe-hpc-launcher_3.3.1-2_amd64.deb'"
        );
    }

    #[test]
    fn the_preview_shows_the_lines_that_change() {
        let conf = ImagesConf::parse("slurm: det-environments-slurm-ci-1717047568\n").unwrap();
        assert_eq!(
            pin_preview(&conf, &[(Slurm, None), (Pbs, None)]),
            "- slurm: det-environments-slurm-ci-1717047568\n\
             + slurm: <the new slurm image packer builds>\n  \
             (no `pbs:` line yet: it is added)\n\
             + pbs: <the new pbs image packer builds>\n"
        );
    }

    #[test]
    fn the_preview_promises_a_reused_image_not_a_new_one() {
        let conf = ImagesConf::parse(
            "slurm: det-environments-slurm-ci-1717047568\npbs: det-environments-pbs-ci-1\n",
        )
        .unwrap();
        let reused = |image: &str| Some(image.to_string());
        assert_eq!(
            pin_preview(
                &conf,
                &[
                    (Slurm, reused("det-environments-slurm-ci-1800000000")),
                    (Pbs, reused("det-environments-pbs-ci-1"))
                ]
            ),
            "- slurm: det-environments-slurm-ci-1717047568\n\
             + slurm: det-environments-slurm-ci-1800000000 (reused: made from the same inputs)\n  \
             pbs: det-environments-pbs-ci-1 (reused, already pinned: unchanged)\n"
        );
    }

    #[test]
    fn the_checklist_says_what_was_done_and_what_is_left() {
        let pins = pins();
        let launcher = launcher();
        let released = Released {
            branch: "slurm-images-2024-05-30",
            from: Some("main"),
            pins: &pins,
            launcher: &launcher,
            source: &LauncherSource::Newest,
            commit: "1a2b3c4",
            images_conf: "tools/slurm/terraform/images.conf",
            origin: Some("git@github.com:determined-ai/determined.git"),
            base: Some("main"),
            opened: None,
        };
        assert_eq!(
            checklist(&released),
            "done:\n  \
             branch    slurm-images-2024-05-30, from main\n  \
             slurm     det-environments-slurm-ci-1800000000\n  \
             pbs       det-environments-pbs-ci-1800000001\n  \
             launcher  hpe-hpc-launcher_3.3.1-2_amd64.deb, the newest release\n  \
             commit    1a2b3c4: tools/slurm/terraform/images.conf only\n\
             left for you:\n  \
             1. push the branch:\n       git push -u origin slurm-images-2024-05-30\n  \
             2. open the pull request:\n       \
             https://github.com/determined-ai/determined/compare/main...slurm-images-2024-05-30?expand=1\n  \
             3. once it is merged, prune the old images (the plan as it stands is below; nothing was deleted):\n       \
             cargo xtask slurm-image prune\n"
        );
        let opened = Released {
            opened: Some((
                "origin",
                "https://github.com/determined-ai/determined/pull/4242",
            )),
            ..released
        };
        let text = checklist(&opened);
        assert!(
            text.contains(
                "  pushed    slurm-images-2024-05-30 to origin\n  \
                 pull request https://github.com/determined-ai/determined/pull/4242\n\
                 left for you:\n  1. once it is merged, prune"
            ),
            "{text}"
        );
        assert!(!text.contains("git push"), "{text}");
        let elsewhere_body = pull_request_body(
            "Update the SLURM and PBS test cluster images\n\nslurm: det-environments-slurm-ci-1800000000\n",
            &[
                (
                    WorkloadManager::Slurm,
                    "det-environments-slurm-ci-1800000000".into(),
                    crate::model::verification::Verified::Passed(vec![
                        crate::model::verification::Check {
                            name: "slurm-daemons".into(),
                            ok: true,
                            detail: "enabled".into(),
                        },
                    ]),
                ),
                (
                    WorkloadManager::Pbs,
                    "det-environments-pbs-ci-1800000001".into(),
                    crate::model::verification::Verified::Skipped("--no-verify".into()),
                ),
            ],
        );
        assert_eq!(
            elsewhere_body,
            "Update the SLURM and PBS test cluster images\n\nslurm: det-environments-slurm-ci-1800000000\n\n\
             ## Verification\n\n\
             - slurm: det-environments-slurm-ci-1800000000: verified (1 checks passed)\n  \
             - `ok   slurm-daemons: enabled`\n\n\
             - pbs: det-environments-pbs-ci-1800000001: unverified: --no-verify\n"
        );
        assert_eq!(
            pull_request_commands(
                "origin",
                "main",
                "slurm-images-2024-05-30",
                "Update the SLURM and PBS test cluster images",
                "target/slurm-image/release-pr-body.md"
            ),
            "git push -u origin slurm-images-2024-05-30\n\
             gh pr create --base main --head slurm-images-2024-05-30 \
             --title 'Update the SLURM and PBS test cluster images' --body-file target/slurm-image/release-pr-body.md"
        );
        let elsewhere = Released {
            origin: None,
            source: &LauncherSource::Offline,
            ..released
        };
        let text = checklist(&elsewhere);
        assert!(
            text.contains("git push -u <remote> slurm-images-2024-05-30"),
            "{text}"
        );
        assert!(
            text.contains("a pull request of slurm-images-2024-05-30 into main"),
            "{text}"
        );
        assert!(
            text.contains("does not carry the newest launcher: --offline"),
            "{text}"
        );
    }
}
