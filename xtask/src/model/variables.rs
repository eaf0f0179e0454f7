//! The Packer variables file of one build (`build/<wm>.pkrvars.hcl`).

use crate::model::config::Config;
use crate::model::WorkloadManager;

/// The values one build passes to the template, in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variables(pub Vec<(&'static str, String)>);

/// What a build knows besides the config and the workload manager.
pub struct BuildInputs<'a> {
    /// File name of the launcher package inside `build/`.
    pub launcher_deb: &'a str,
    /// Manifest path relative to the template folder, where packer runs.
    pub manifest_path: &'a str,
    /// Digest of everything the image is made from; goes on the image as a label.
    pub input_fingerprint: &'a str,
}

impl Variables {
    pub fn for_build(config: &Config, wm: WorkloadManager, inputs: &BuildInputs<'_>) -> Variables {
        let source = config.source_image(wm);
        Variables(vec![
            ("project_id", config.gcp.project.clone()),
            ("zone", config.gcp.zone.clone()),
            ("workload_manager", wm.to_string()),
            ("source_image_project", source.project.clone()),
            ("source_image_family", source.family.clone()),
            ("ssh_username", config.image.ssh_user.clone()),
            ("image_family", config.image.family.clone()),
            ("cpu_task_image", config.image.cpu_task_image.clone()),
            ("cuda_task_image", config.image.cuda_task_image.clone()),
            ("launcher_deb", inputs.launcher_deb.to_string()),
            ("manifest_path", inputs.manifest_path.to_string()),
            ("input_fingerprint", inputs.input_fingerprint.to_string()),
        ])
    }

    /// The file's text: one `name = "value"` line each.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# Written by `cargo xtask slurm-image build`; edit slurm-image.toml instead.\n",
        );
        for (name, value) in &self.0 {
            out.push_str(name);
            out.push_str(" = ");
            out.push_str(&hcl_string(value));
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
    fn renders_one_line_per_variable_in_order() {
        let vars = Variables(vec![
            ("zone", "us-central1-c".into()),
            ("odd", "a\"${b}".into()),
        ]);
        let text = vars.render();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines, [r#"zone = "us-central1-c""#, r#"odd = "a\"$${b}""#]);
    }

    #[test]
    fn a_build_gets_its_workload_managers_source_image() {
        let config =
            Config::parse(crate::model::config::tests::EXAMPLE, "slurm-image.toml").unwrap();
        let inputs = BuildInputs {
            launcher_deb: "hpe-hpc-launcher_3.3.1-2_amd64.deb",
            manifest_path: "build/pbs-manifest.json",
            input_fingerprint: "0123456789abcdef0123456789abcdef",
        };
        let vars = Variables::for_build(&config, WorkloadManager::Pbs, &inputs);
        let get = |name: &str| {
            vars.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("workload_manager"), Some("pbs"));
        assert_eq!(get("source_image_project"), Some("ubuntu-os-cloud"));
        assert_eq!(get("source_image_family"), Some("ubuntu-2004-lts"));
        assert_eq!(
            get("launcher_deb"),
            Some("hpe-hpc-launcher_3.3.1-2_amd64.deb")
        );
        assert_eq!(get("manifest_path"), Some("build/pbs-manifest.json"));
        assert_eq!(vars.0.len(), 12);
    }
}
