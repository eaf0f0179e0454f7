//! The Packer variables of one build: the contract with the template.
//!
//! The contract is the old `generate-pkr-vars.sh`'s: seven variables every template takes.
//! Three more are optional; a template that declares one lights up what the tool does with it,
//! and a template that does not is told what that costs and which lines add it.

use std::fmt;

use anyhow::bail;

use crate::model::config::Config;
use crate::model::template::Template;
use crate::model::WorkloadManager;

/// The seven variables of the old script, which every template must declare.
pub const CONTRACT: [&str; 7] = [
    "ssh_username",
    "workload_manager",
    "image_project_id",
    "image_family",
    "launcher_deb_name",
    "cpu_image_name",
    "cuda_image_name",
];

/// A variable's value: a string, or (for labels) a map of strings; in a dry run's preview, a
/// value not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Map(Vec<(String, String)>),
    /// Shown as `<unknown: why>`, which packer would refuse: such variables are never run.
    Unknown(String),
}

/// The values one build passes to the template, in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variables(pub Vec<(&'static str, Value)>);

/// The declarations the tool can do more with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// Labels on the image: the input fingerprint and what went in.
    ImageLabels,
    /// The exact source image, resolved from the family before the build.
    SourceImage,
}

impl Extra {
    pub const ALL: [Extra; 2] = [Extra::ImageLabels, Extra::SourceImage];

    pub fn variable(self) -> &'static str {
        match self {
            Extra::ImageLabels => "image_labels",
            Extra::SourceImage => "source_image",
        }
    }
}

impl fmt::Display for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.variable())
    }
}

/// What the tool would pass for the optional declarations, when the template has them.
#[derive(Debug, Clone, Default)]
pub struct ExtraValues {
    pub image_labels: Vec<(String, String)>,
    /// `None` when the source image could not be resolved: the template's default applies.
    pub source_image: Option<String>,
}

/// The contract's seven values for one workload manager, as the old script wrote them.
pub fn contract(config: &Config, wm: WorkloadManager, launcher_deb_name: &str) -> Variables {
    let source = config.source_image(wm);
    let text = |s: &str| Value::Text(s.to_string());
    Variables(vec![
        ("ssh_username", text(&config.image.ssh_user)),
        ("workload_manager", text(wm.key())),
        ("image_project_id", text(&source.project)),
        ("image_family", text(&source.family)),
        ("launcher_deb_name", text(launcher_deb_name)),
        ("cpu_image_name", text(&config.image.cpu_task_image)),
        ("cuda_image_name", text(&config.image.cuda_task_image)),
    ])
}

/// Fails, naming each one and the fix, when the template lacks a variable of the contract:
/// its value would never reach the image (packer only warns about it).
pub fn check_contract(template: &Template) -> anyhow::Result<()> {
    let missing: Vec<&str> = CONTRACT
        .into_iter()
        .filter(|name| !template.declares(name))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the template does not declare {}: declare {} in its `variables {{}}` block (e.g. `{} = \"\"`); \
             the build passes these seven, as generate-pkr-vars.sh did: {}",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            missing[0],
            CONTRACT.join(", ")
        );
    }
    Ok(())
}

/// The variables of a build: the contract, plus each extra the template declares. Returns the
/// extras it leaves off, for the caller to explain.
pub fn for_template(
    contract: Variables,
    template: &Template,
    extras: &ExtraValues,
) -> (Variables, Vec<Extra>) {
    let mut variables = contract;
    let mut off = Vec::new();
    for extra in Extra::ALL {
        if !template.declares(extra.variable()) {
            off.push(extra);
            continue;
        }
        let value = match extra {
            Extra::ImageLabels => Value::Map(extras.image_labels.clone()),
            Extra::SourceImage => match &extras.source_image {
                Some(image) => Value::Text(image.clone()),
                None => continue,
            },
        };
        variables.0.push((extra.variable(), value));
    }
    (variables, off)
}

impl Variables {
    /// Marks the value of `name` as not known, and why.
    pub fn mark_unknown(&mut self, name: &str, why: &str) {
        for (n, value) in &mut self.0 {
            if *n == name {
                *value = Value::Unknown(why.to_string());
            }
        }
    }

    /// The value of one variable, when it is text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.iter().find_map(|(n, v)| match v {
            Value::Text(text) if *n == name => Some(text.as_str()),
            _ => None,
        })
    }

    /// The file's text: one `name = value` line each (a map over several lines). `by` names
    /// the command that wrote it.
    pub fn render(&self, by: &str) -> String {
        let mut out = format!(
            "# Written by `cargo xtask slurm-image {by}`; edit slurm-image.toml instead.\n"
        );
        for (name, value) in &self.0 {
            out.push_str(name);
            out.push_str(" = ");
            match value {
                Value::Text(text) => out.push_str(&hcl_string(text)),
                Value::Unknown(why) => out.push_str(&format!("<unknown: {why}>")),
                Value::Map(entries) if entries.is_empty() => out.push_str("{}"),
                Value::Map(entries) => {
                    out.push_str("{\n");
                    for (key, value) in entries {
                        out.push_str(&format!("  {} = {}\n", hcl_string(key), hcl_string(value)));
                    }
                    out.push('}');
                }
            }
            out.push('\n');
        }
        out
    }
}

/// `value` as an HCL quoted string that reads back as exactly `value`: quotes, backslashes and
/// control characters escaped, and `${` / `%{` doubled so HCL does not start a template there.
pub fn hcl_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(crate::model::config::tests::EXAMPLE, "slurm-image.toml").unwrap()
    }

    fn template(declared: &[&str]) -> Template {
        Template {
            variables: declared.iter().map(|s| s.to_string()).collect(),
            ..Template::default()
        }
    }

    #[test]
    fn escapes_what_hcl_would_read_differently() {
        assert_eq!(hcl_string("plain"), r#""plain""#);
        assert_eq!(hcl_string(r#"a "quoted" word"#), r#""a \"quoted\" word""#);
        assert_eq!(hcl_string(r"C:\path\"), r#""C:\\path\\""#);
        assert_eq!(
            hcl_string("${var.x} and %{ if }"),
            r#""$${var.x} and %%{ if }""#
        );
        assert_eq!(
            hcl_string("$ alone, $$ and % stay"),
            r#""$ alone, $$ and % stay""#
        );
        assert_eq!(hcl_string("two\nlines\ttab\r"), r#""two\nlines\ttab\r""#);
        assert_eq!(hcl_string("bell\u{7}"), r#""bell\u0007""#);
        assert_eq!(hcl_string("ünïcode"), "\"ünïcode\"");
    }

    #[test]
    fn the_contract_carries_the_old_scripts_values() {
        let config = config();
        let deb = "hpe-hpc-launcher_3.3.1-2_amd64.deb";
        let slurm = contract(&config, WorkloadManager::Slurm, deb);
        let pbs = contract(&config, WorkloadManager::Pbs, deb);
        let names: Vec<&str> = slurm.0.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, CONTRACT);
        for (vars, wm, project, family) in [
            (
                &slurm,
                "slurm",
                "schedmd-slurm-public",
                "slurm-gcp-6-3-ubuntu-2004-lts",
            ),
            (&pbs, "pbs", "ubuntu-os-cloud", "ubuntu-2004-lts"),
        ] {
            assert_eq!(vars.text("workload_manager"), Some(wm));
            assert_eq!(vars.text("image_project_id"), Some(project));
            assert_eq!(vars.text("image_family"), Some(family));
            assert_eq!(vars.text("ssh_username"), Some("packer2"));
            assert_eq!(vars.text("launcher_deb_name"), Some(deb));
            assert_eq!(
                vars.text("cpu_image_name"),
                Some("determinedai/pytorch-tensorflow-cpu-dev:e960eae")
            );
            assert_eq!(
                vars.text("cuda_image_name"),
                Some("determinedai/pytorch-ngc-dev:e960eae")
            );
        }
    }

    #[test]
    fn a_missing_contract_variable_is_named_with_the_fix() {
        assert!(check_contract(&template(&CONTRACT)).is_ok());
        let err = check_contract(&template(&CONTRACT[..5]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "the template does not declare cpu_image_name, cuda_image_name: declare them in its `variables {}` block"
            ),
            "{err}"
        );
    }

    #[test]
    fn extras_are_passed_only_where_declared() {
        let config = config();
        let base = contract(&config, WorkloadManager::Slurm, "x.deb");
        let values = ExtraValues {
            image_labels: vec![("input-fingerprint".into(), "ab12".into())],
            source_image: Some("slurm-gcp-6-3-v1".into()),
        };
        let (vars, off) = for_template(base.clone(), &template(&CONTRACT), &values);
        assert_eq!(vars, base);
        assert_eq!(off, Extra::ALL);

        let mut all = CONTRACT.to_vec();
        all.extend(["image_labels", "source_image"]);
        let (vars, off) = for_template(base.clone(), &template(&all), &values);
        assert!(off.is_empty());
        assert_eq!(vars.text("source_image"), Some("slurm-gcp-6-3-v1"));
        assert_eq!(vars.0.len(), 9);

        // An unresolved source image leaves the template's default (the family) in charge.
        let unresolved = ExtraValues {
            source_image: None,
            ..values
        };
        let (vars, off) = for_template(base, &template(&all), &unresolved);
        assert!(off.is_empty());
        assert_eq!(vars.text("source_image"), None);
    }

    #[test]
    fn renders_strings_and_maps() {
        let vars = Variables(vec![
            ("zone", Value::Text("us-central1-c".into())),
            ("odd", Value::Text("a\"${b}".into())),
            ("none", Value::Map(vec![])),
            (
                "labels",
                Value::Map(vec![
                    ("input-fingerprint".into(), "ab".into()),
                    ("launcher".into(), "3-3-1-2".into()),
                ]),
            ),
        ]);
        let text = vars.render("check");
        assert!(text.starts_with("# Written by `cargo xtask slurm-image check`"));
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                r#"zone = "us-central1-c""#,
                r#"odd = "a\"$${b}""#,
                "none = {}",
                "labels = {",
                r#"  "input-fingerprint" = "ab""#,
                r#"  "launcher" = "3-3-1-2""#,
                "}",
            ]
        );
    }

    #[test]
    fn an_unknown_value_is_shown_as_unknown_not_made_up() {
        let mut vars = contract(&config(), WorkloadManager::Slurm, "");
        vars.mark_unknown("launcher_deb_name", "Artifactory is unreachable");
        let text = vars.render("build");
        assert!(
            text.contains("\nlauncher_deb_name = <unknown: Artifactory is unreachable>\n"),
            "{text}"
        );
        assert_eq!(vars.text("launcher_deb_name"), None);
    }
}
