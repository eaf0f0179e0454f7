//! The xtask's configuration file, `tools/slurm/packer/slurm-image.toml`: what the old shell
//! scripts hard-coded, in one place a release engineer can read.

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::model::consumers::{Consumer, Selector};
use crate::model::verification::{parse_bound, Settings};
use crate::model::{is_gce_image_name, is_image_reference, WorkloadManager};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub gcp: Gcp,
    pub image: Image,
    pub slurm: SourceImage,
    pub pbs: SourceImage,
    pub artifactory: Artifactory,
    pub prune: Prune,
    /// Optional: the verification VM's settings, with defaults.
    #[serde(default)]
    pub verify: Verify,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gcp {
    /// The project that owns the images and runs packer's VMs; the template names it too.
    pub project: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The user packer logs in as.
    pub ssh_user: String,
    /// Task container images cached in the image.
    pub cpu_task_image: String,
    pub cuda_task_image: String,
    /// Files, relative to the repository root, that name the task images and must name the
    /// tags the image caches: the clusters' scripts and CI. Each is a file (every mention
    /// counts) or `{ file, keys }` / `{ file, variables }`, naming where in it the clusters'
    /// images are.
    #[serde(default = "default_task_image_consumers")]
    pub task_image_consumers: Vec<Consumer>,
}

/// The consumers of the cached task images in determined-ai/determined: the two pipeline
/// parameters of CI that feed the HPC clusters (the same file runs unit-test jobs on other
/// tags of the same repositories), the cluster script's two variables, and the devcluster's
/// task container defaults.
fn default_task_image_consumers() -> Vec<Consumer> {
    vec![
        Consumer::keys(
            ".circleci/real_config.yml",
            &["default-pt-gpu-hpc-image", "default-pt-tf-cpu-hpc-image"],
        ),
        Consumer::variables(
            "tools/slurm/scripts/slurmcluster.sh",
            &["LOCAL_CPU_IMAGE_STRING", "LOCAL_CUDA_IMAGE_STRING"],
        ),
        Consumer::keys(
            "tools/slurm/scripts/slurmcluster.yaml",
            &["task_container_defaults"],
        ),
    ]
}

/// One entry of `image.task_image_consumers`: a string, or a table whose errors (an unknown
/// key, a wrong type) say what is wrong in it. An untagged enum would answer every mistake in
/// a table with "did not match any variant".
impl<'de> Deserialize<'de> for Consumer {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Consumer, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            file: String,
            keys: Option<Vec<String>>,
            variables: Option<Vec<String>>,
        }
        struct Entry;
        impl<'de> serde::de::Visitor<'de> for Entry {
            type Value = Consumer;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a file, or a table { file = \"...\", keys = [...] } (YAML) or \
                     { file = \"...\", variables = [...] } (shell)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, file: &str) -> Result<Consumer, E> {
                Ok(Consumer::whole_file(file))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Consumer, A::Error> {
                use serde::de::Error;
                let table = Table::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                let selector = match (table.keys, table.variables) {
                    (Some(_), Some(_)) => {
                        return Err(A::Error::custom(format!(
                            "{} names both keys and variables: a YAML file has keys, a shell \
                             file variables; give one",
                            table.file
                        )))
                    }
                    (Some(names), None) | (None, Some(names)) if names.is_empty() => {
                        return Err(A::Error::custom(format!(
                            "{} selects nothing (an empty list): name where the task images are, \
                             or give the file alone for every mention to count",
                            table.file
                        )))
                    }
                    (Some(keys), None) => Selector::Keys(keys),
                    (None, Some(variables)) => Selector::Variables(variables),
                    (None, None) => Selector::EveryMention,
                };
                Ok(Consumer {
                    file: table.file,
                    selector,
                })
            }
        }
        deserializer.deserialize_any(Entry)
    }
}

/// The image a workload manager's build starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceImage {
    #[serde(rename = "source_image_project")]
    pub project: String,
    #[serde(rename = "source_image_family")]
    pub family: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifactory {
    /// The folder holding the launcher releases.
    pub url: String,
    /// The slowest a download may run, averaged over [`Artifactory::download_rate_window_s`],
    /// before it is given up: a server dripping bytes would otherwise hold it for ever.
    #[serde(default = "default_min_download_rate")]
    pub min_download_rate_kib_s: u64,
    #[serde(default = "default_download_rate_window")]
    pub download_rate_window_s: u64,
}

/// 64 KiB/s: a 40 MB launcher in about ten minutes, far below any working link to Artifactory.
pub const DEFAULT_MIN_DOWNLOAD_RATE_KIB_S: u64 = 64;
/// 30 s: long enough that a brief stall of a working server does not end a download.
pub const DEFAULT_DOWNLOAD_RATE_WINDOW_S: u64 = 30;
/// The longest string value: far more than any project, URL or image name needs, and short
/// enough to pass in any command line.
pub const MAX_VALUE_LENGTH: usize = 1024;

fn default_min_download_rate() -> u64 {
    DEFAULT_MIN_DOWNLOAD_RATE_KIB_S
}

fn default_download_rate_window() -> u64 {
    DEFAULT_DOWNLOAD_RATE_WINDOW_S
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prune {
    /// How many of the newest images of each workload manager to keep.
    #[serde(deserialize_with = "image_count")]
    pub keep: usize,
    /// Branches whose images.conf pins images that must never be pruned (`*` matches anything).
    pub release_branches: String,
    /// Tags whose images.conf pins images that must never be pruned (`*` matches anything).
    #[serde(default = "default_release_tags")]
    pub release_tags: String,
    /// How long an image stays deprecated before a prune deletes it (`14d`, `36h`).
    #[serde(default = "default_grace")]
    pub grace: String,
}

/// Release tags of the host repository: `v0.38.1`.
pub const DEFAULT_RELEASE_TAGS: &str = "v*";
/// Two weeks: long enough for a teammate to notice that a cluster of theirs boots a deprecated
/// image, and to roll back or pin it, before it is gone.
pub const DEFAULT_GRACE: &str = "14d";

fn default_release_tags() -> String {
    DEFAULT_RELEASE_TAGS.to_string()
}

fn default_grace() -> String {
    DEFAULT_GRACE.to_string()
}

impl Prune {
    /// `grace` in seconds.
    pub fn grace_s(&self) -> anyhow::Result<i64> {
        let seconds = crate::model::time::parse_duration(&self.grace)
            .map_err(|e| anyhow::anyhow!("prune.grace {:?}: {e}", self.grace))?;
        i64::try_from(seconds).map_err(|_| {
            anyhow::anyhow!(
                "prune.grace {:?} is too long: use days, such as `14d`",
                self.grace
            )
        })
    }
}

/// How a new image is verified before it is pinned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Verify {
    /// The checks script, relative to the template folder; `None`: [`DEFAULT_VERIFY_SCRIPT`],
    /// which a template may lack (its builds are then pinned unverified, saying so).
    pub script: Option<String>,
    /// How long the checks may take to report, e.g. `20m`.
    pub timeout: String,
    /// The verification VM's machine type.
    pub machine_type: String,
    /// The zone of the verification VM, when the template names none.
    pub zone: String,
}

/// The checks script a template folder has when the config names none.
pub const DEFAULT_VERIFY_SCRIPT: &str = "verify-image.sh";

impl Default for Verify {
    fn default() -> Verify {
        Verify {
            script: None,
            timeout: "20m".to_string(),
            // e2-small's 2 GB leaves too little beside the launcher's JVM (-Xms1024m), docker and
            // the slurm daemons for the services to come up; e2-medium has 4 GB.
            machine_type: "e2-medium".to_string(),
            zone: "us-central1-c".to_string(),
        }
    }
}

impl Verify {
    /// The checks script's file name in the template folder.
    pub fn script(&self) -> &str {
        self.script.as_deref().unwrap_or(DEFAULT_VERIFY_SCRIPT)
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        Ok(Settings {
            timeout_s: parse_bound(&self.timeout)?,
            machine_type: self.machine_type.clone(),
        })
    }
}

impl Config {
    /// Parses the file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|err| describe(text, file, &err))?;
        config
            .check()
            .with_context(|| format!("{file} is not usable"))?;
        Ok(config)
    }

    /// The task images the image caches, each with its config key.
    pub fn task_images(&self) -> [(&'static str, &str); 2] {
        [
            ("image.cpu_task_image", &self.image.cpu_task_image),
            ("image.cuda_task_image", &self.image.cuda_task_image),
        ]
    }

    pub fn source_image(&self, wm: WorkloadManager) -> &SourceImage {
        match wm {
            WorkloadManager::Slurm => &self.slurm,
            WorkloadManager::Pbs => &self.pbs,
        }
    }

    /// Values that parse but that GCE or the prune planner would refuse later.
    fn check(&self) -> anyhow::Result<()> {
        for (key, value) in [
            ("gcp.project", &self.gcp.project),
            ("image.ssh_user", &self.image.ssh_user),
            ("image.cpu_task_image", &self.image.cpu_task_image),
            ("image.cuda_task_image", &self.image.cuda_task_image),
            ("slurm.source_image_project", &self.slurm.project),
            ("slurm.source_image_family", &self.slurm.family),
            ("pbs.source_image_project", &self.pbs.project),
            ("pbs.source_image_family", &self.pbs.family),
            ("artifactory.url", &self.artifactory.url),
            ("prune.release_branches", &self.prune.release_branches),
            ("prune.release_tags", &self.prune.release_tags),
            ("prune.grace", &self.prune.grace),
        ] {
            // Checked first: the messages below quote values.
            if value.len() > MAX_VALUE_LENGTH {
                bail!(
                    "{key} is {} bytes long, more than the {MAX_VALUE_LENGTH} any value may be: it is \
                     passed on command lines and shown in messages; put the intended value there",
                    value.len()
                );
            }
        }
        for consumer in &self.image.task_image_consumers {
            let path = std::path::Path::new(&consumer.file);
            let outside = path.is_absolute()
                || path
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
            if outside || consumer.file.is_empty() {
                bail!(
                    "image.task_image_consumers names {:?}, which is not a file inside the repository: name \
                     each consumer by its path from the repository root, without `..`",
                    consumer.file
                );
            }
        }
        for (key, image) in self.task_images() {
            // An empty one is allowed: the playbook then skips that cache.
            if !image.is_empty() && !is_image_reference(image) {
                bail!(
                    "{key} {image:?} is not a container image reference: write REPOSITORY[:TAG], e.g. \
                     determinedai/pytorch-ngc-dev:e960eae (the template passes it to a shell command on the \
                     build VM, so quotes, spaces, `$` and the like are refused)"
                );
            }
        }
        for wm in WorkloadManager::ALL {
            let family = &self.source_image(wm).family;
            if !is_gce_image_name(family) {
                bail!("{wm}.source_image_family {family:?} is not a valid GCE family name (lowercase letters, digits, dashes)");
            }
        }
        let artifactory = &self.artifactory;
        if !(1..=1024 * 1024).contains(&artifactory.min_download_rate_kib_s) {
            bail!(
                "artifactory.min_download_rate_kib_s is {}: use a whole number of KiB/s from 1 to 1048576 \
                 (default {DEFAULT_MIN_DOWNLOAD_RATE_KIB_S})",
                artifactory.min_download_rate_kib_s
            );
        }
        if !(1..=3600).contains(&artifactory.download_rate_window_s) {
            bail!(
                "artifactory.download_rate_window_s is {}: use a whole number of seconds from 1 to 3600 \
                 (default {DEFAULT_DOWNLOAD_RATE_WINDOW_S})",
                artifactory.download_rate_window_s
            );
        }
        self.verify.settings()?;
        self.prune.grace_s()?;
        if self.prune.keep == 0 {
            bail!("prune.keep is 0, which would let prune delete every image: keep at least 1");
        }
        for (key, value) in [
            ("gcp.project", &self.gcp.project),
            ("slurm.source_image_project", &self.slurm.project),
            ("pbs.source_image_project", &self.pbs.project),
            ("image.ssh_user", &self.image.ssh_user),
            ("artifactory.url", &self.artifactory.url),
            ("prune.release_branches", &self.prune.release_branches),
            ("prune.release_tags", &self.prune.release_tags),
        ] {
            if value.trim().is_empty() {
                bail!("{key} is empty");
            }
        }
        Ok(())
    }
}

/// A count of images, whose errors say what to write ("expected a whole number of images")
/// instead of naming a Rust type ("expected usize").
fn image_count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    struct Count;
    impl serde::de::Visitor<'_> for Count {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number of images, e.g. `keep = 6`")
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<usize, E> {
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<usize, E> {
            let n = u64::try_from(n)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(n), &self))?;
            self.visit_u64(n)
        }
    }
    deserializer.deserialize_u64(Count)
}

/// A TOML or schema error as "FILE line N, key `a.b`: what is wrong".
fn describe(text: &str, file: &str, err: &toml::de::Error) -> anyhow::Error {
    let message = err.message().trim_end();
    let Some(span) = err.span() else {
        return anyhow::anyhow!("{file}: {message}");
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    match key_at(text, span.start) {
        Some(key) => anyhow::anyhow!("{file} line {line}, key `{key}`: {message}"),
        None => anyhow::anyhow!("{file} line {line}: {message}"),
    }
}

/// The dotted key of the `key = value` line holding byte `at`, prefixed by the `[table]`
/// above it; `None` when that line is not a key/value line.
fn key_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at.min(text.len())].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        return Some(trimmed.trim_matches(['[', ']']).trim().to_string());
    }
    // A line inside a multi-line array (`  { file = ... },`) belongs to the key that opened it
    // above.
    let key = std::iter::once(line)
        .chain(text[..line_start].lines().rev())
        .map(str::trim)
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| {
            let (key, _) = l.split_once('=')?;
            let key = key.trim().trim_matches('"');
            let bare = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            bare.then_some(key)
        })?;
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| l.trim_matches(['[', ']']).trim());
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The committed config must parse; the unit tests read the same text.
    pub(crate) const EXAMPLE: &str = include_str!("../../../tools/slurm/packer/slurm-image.toml");

    fn err(text: &str) -> String {
        format!("{:#}", Config::parse(text, "slurm-image.toml").unwrap_err())
    }

    #[test]
    fn the_committed_config_parses() {
        let config = Config::parse(EXAMPLE, "slurm-image.toml").unwrap();
        assert_eq!(config.gcp.project, "determined-ai");
        assert_eq!(config.image.ssh_user, "packer2");
        assert_eq!(
            config.source_image(WorkloadManager::Slurm).project,
            "schedmd-slurm-public"
        );
        assert_eq!(
            config.source_image(WorkloadManager::Pbs).family,
            "ubuntu-2004-lts"
        );
        assert_eq!(config.prune.keep, 6);
        assert_eq!(config.prune.release_branches, "release-*");
        assert_eq!(config.prune.release_tags, "v*");
        assert_eq!(config.prune.grace_s().unwrap(), 14 * 86_400);
    }

    #[test]
    fn an_unknown_key_names_file_line_and_key() {
        let text = EXAMPLE.replace("[prune]\n", "[prune]\nkepe = 3\n");
        let line = text.lines().position(|l| l == "kepe = 3").unwrap() + 1;
        let e = err(&text);
        assert!(
            e.starts_with(&format!(
                "slurm-image.toml line {line}, key `prune.kepe`: unknown field `kepe`"
            )),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_type_names_file_line_and_key() {
        let text = EXAMPLE.replace("keep = 6", "keep = \"six\"");
        let line = text.lines().position(|l| l.starts_with("keep = ")).unwrap() + 1;
        let e = err(&text);
        assert!(
            e.starts_with(&format!(
                "slurm-image.toml line {line}, key `prune.keep`: invalid type: string \"six\""
            )),
            "{e}"
        );
    }

    #[test]
    fn keep_errors_say_what_to_write() {
        for bad in ["\"6\"", "-1", "2.5"] {
            let e = err(&EXAMPLE.replace("keep = 6", &format!("keep = {bad}")));
            assert!(
                e.contains("key `prune.keep`")
                    && e.contains("expected a whole number of images, e.g. `keep = 6`"),
                "{bad}: {e}"
            );
            assert!(!e.contains("usize"), "{e}");
        }
    }

    #[test]
    fn a_missing_key_is_named() {
        let text = EXAMPLE.replace("ssh_user = \"packer2\"\n", "");
        let e = err(&text);
        assert!(
            e.contains("slurm-image.toml") && e.contains("missing field `ssh_user`"),
            "{e}"
        );
    }

    #[test]
    fn task_image_consumers_are_files_or_files_with_keys_or_variables() {
        let config = Config::parse(EXAMPLE, "slurm-image.toml").unwrap();
        assert_eq!(
            config.image.task_image_consumers,
            default_task_image_consumers(),
            "the committed config, which adopters copy, says what the defaults say"
        );
        let with = |entries: &str| {
            let start = EXAMPLE.find("task_image_consumers = [").unwrap();
            let end = start + EXAMPLE[start..].find("]\n\n").unwrap() + 2;
            format!(
                "{}task_image_consumers = [\n{entries}\n]\n{}",
                &EXAMPLE[..start],
                &EXAMPLE[end..]
            )
        };
        let config = Config::parse(
            &with("  \"a.yml\",\n  { file = \"b.sh\", variables = [\"X\"] },\n  { file = \"c.yml\" },"),
            "x",
        )
        .unwrap();
        assert_eq!(
            config.image.task_image_consumers,
            [
                Consumer::whole_file("a.yml"),
                Consumer::variables("b.sh", &["X"]),
                Consumer::whole_file("c.yml"),
            ]
        );
        let e = err(&with("  { file = \"a.yml\", kyes = [\"x\"] },"));
        let line = with("")
            .lines()
            .position(|l| l.starts_with("task_image_consumers"))
            .unwrap()
            + 2;
        assert!(
            e.starts_with(&format!(
                "slurm-image.toml line {line}, key `image.task_image_consumers`: unknown field `kyes`, \
                 expected one of `file`, `keys`, `variables`"
            )),
            "{e}"
        );
        let e = err(&with(
            "  { file = \"a.yml\", keys = [\"x\"], variables = [\"Y\"] },",
        ));
        assert!(e.contains("a.yml names both keys and variables"), "{e}");
        let e = err(&with("  { file = \"a.yml\", keys = [] },"));
        assert!(e.contains("a.yml selects nothing (an empty list)"), "{e}");
        let e = err(&with("  3,"));
        assert!(
            e.contains("expected a file, or a table { file = \"...\", keys = [...] }"),
            "{e}"
        );
        // Without the key, the defaults for determined-ai/determined.
        let start = EXAMPLE.find("task_image_consumers = [").unwrap();
        let end = start + EXAMPLE[start..].find("]\n\n").unwrap() + 2;
        let without = format!("{}{}", &EXAMPLE[..start], &EXAMPLE[end..]);
        let config = Config::parse(&without, "x").unwrap();
        assert_eq!(
            config.image.task_image_consumers,
            default_task_image_consumers()
        );
    }

    #[test]
    fn a_syntax_error_names_the_line() {
        let e = err("[gcp\nproject = 1\n");
        assert!(e.starts_with("slurm-image.toml line 1"), "{e}");
    }

    #[test]
    fn values_are_bounded_in_length_and_the_download_floor_in_range() {
        let huge = "a".repeat(10 * 1024 * 1024);
        let e = err(&EXAMPLE.replace("ssh_user = \"packer2\"", &format!("ssh_user = \"{huge}\"")));
        assert!(
            e.contains("image.ssh_user is 10485760 bytes long, more than the 1024"),
            "{}",
            &e[..e.len().min(300)]
        );
        assert!(e.len() < 500, "the value is not repeated");
        let config = Config::parse(EXAMPLE, "slurm-image.toml").unwrap();
        assert_eq!(config.artifactory.min_download_rate_kib_s, 64);
        assert_eq!(config.artifactory.download_rate_window_s, 30);
        let with =
            |extra: &str| EXAMPLE.replace("[artifactory]\n", &format!("[artifactory]\n{extra}\n"));
        let config = Config::parse(&with("download_rate_window_s = 1"), "x").unwrap();
        assert_eq!(config.artifactory.download_rate_window_s, 1);
        let e = err(&with("download_rate_window_s = 0"));
        assert!(e.contains("artifactory.download_rate_window_s is 0"), "{e}");
        let e = err(&with("min_download_rate_kib_s = 0"));
        assert!(e.contains("from 1 to 1048576 (default 64)"), "{e}");
    }

    #[test]
    fn a_consumer_outside_the_repository_is_refused() {
        for file in ["/etc/passwd", "../other/ci.yml", "tools/../../x.yml", ""] {
            let text = EXAMPLE.replace(
                "\"tools/slurm/scripts/slurmcluster.sh\"",
                &format!("{file:?}"),
            );
            let e = err(&text);
            assert!(
                e.contains(&format!("image.task_image_consumers names {file:?}, which is not a file inside the repository")),
                "{file}: {e}"
            );
        }
    }

    #[test]
    fn a_task_image_that_is_not_an_image_reference_is_refused() {
        let e = err(&EXAMPLE.replace(
            "determinedai/pytorch-ngc-dev:e960eae",
            "determinedai/pytorch-ngc-dev:e960eae$(curl evil)",
        ));
        assert!(
            e.contains("image.cuda_task_image \"determinedai/pytorch-ngc-dev:e960eae$(curl evil)\" is not a container image reference"),
            "{e}"
        );
        let empty = EXAMPLE.replace("determinedai/pytorch-ngc-dev:e960eae", "");
        Config::parse(&empty, "x").expect("an empty task image skips its cache");
    }

    #[test]
    fn a_grace_that_is_no_duration_is_refused_with_the_forms_it_takes() {
        let e = err(&EXAMPLE.replace("grace = \"14d\"", "grace = \"two weeks\""));
        assert!(
            e.contains("prune.grace \"two weeks\": not a duration") && e.contains("`2d`"),
            "{e}"
        );
        let config = Config::parse(
            &EXAMPLE
                .replace("grace = \"14d\"\n", "")
                .replace("release_tags = \"v*\"\n", ""),
            "x",
        )
        .unwrap();
        assert_eq!(config.prune.grace_s().unwrap(), 14 * 86_400);
        assert_eq!(config.prune.release_tags, "v*");
    }

    #[test]
    fn keep_zero_and_bad_family_are_refused() {
        let e = err(&EXAMPLE.replace("keep = 6", "keep = 0"));
        assert!(e.contains("prune.keep is 0"), "{e}");
        let e = err(&EXAMPLE.replace(
            "source_image_family = \"ubuntu-2004-lts\"",
            "source_image_family = \"Ubuntu_CI\"",
        ));
        assert!(
            e.contains("pbs.source_image_family \"Ubuntu_CI\" is not a valid GCE family name"),
            "{e}"
        );
    }
}
