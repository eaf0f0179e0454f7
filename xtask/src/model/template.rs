//! What the Packer template declares, read from its `*.pkr.hcl` files: the variables it takes,
//! the packer version it needs, and the project it builds in.
//!
//! The tool passes only the variables a template declares (packer warns about the others and,
//! worse, ignores them), and lights up its extras only where the template has the declarations
//! for them. This is a careful reader of HCL's top-level structure, not a full parser: comments,
//! quoted strings with `${...}` inside, heredocs and nested objects are skipped correctly, and
//! only the shapes below are recognised:
//!
//! ```hcl
//! variable "name" { ... }             # one declaration
//! variables { name = "" other = "" }  # several at once
//! packer { required_version = ">= 1.7.0" required_plugins { ... } }
//! source "googlecompute" "x" { project_id = "determined-ai" ... }
//! build { provisioner "ansible-local" { playbook_file = "ansible-playbook.yml" } }
//! ```

use std::collections::BTreeSet;

use anyhow::bail;

use crate::model::Version;

/// The version that introduced `packer init` and `required_plugins`: the minimum when a
/// template says nothing, since every template this tool drives installs its builder plugin.
pub const FIRST_WITH_PLUGINS: Version = (1, 7, 0);

/// What the tool needs to know about a template.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Template {
    /// Every declared variable, from `variable "x" {}` and `variables { x = ... }` blocks.
    pub variables: BTreeSet<String>,
    /// Each `required_version` constraint of a `packer {}` block, as written.
    pub required_versions: Vec<String>,
    /// Whether a `packer {}` block has `required_plugins`, which `packer init` installs.
    pub requires_plugins: bool,
    /// The `source` of each plugin in `required_plugins`, e.g. `github.com/hashicorp/ansible`.
    pub plugin_sources: BTreeSet<String>,
    /// Literal `project_id = "..."` values of its sources.
    pub projects: BTreeSet<String>,
    /// Literal `zone = "..."` values of its sources: where a verification VM boots too.
    pub zones: BTreeSet<String>,
    /// The `playbook_file` of each `ansible-local` (or `ansible`) provisioner, as written.
    /// One that interpolates (`"${path.root}/x.yml"`) is kept as an empty string: the template
    /// has a playbook the tool cannot name.
    pub playbooks: Vec<String>,
    /// The `image_family` values of its sources, the family its images join; one that is not
    /// a plain string is kept as an empty string (a family the tool cannot name).
    pub image_families: BTreeSet<String>,
    /// Where a source names its images, for messages: `FILE line N: image_name = "..."`.
    pub image_name: Option<String>,
}

impl Template {
    /// Reads the template from its files, given as `(file name, text)`.
    pub fn read<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> anyhow::Result<Self> {
        let mut template = Template::default();
        for (name, text) in files {
            let tokens = tokens(text).map_err(|err| anyhow::anyhow!("{name}: {err}"))?;
            if let Some(line) = template.add(&tokens) {
                // Alignment padding collapsed, so the line reads in one message.
                let shown = text.lines().nth(line - 1).unwrap_or("");
                let shown = shown.split_whitespace().collect::<Vec<_>>().join(" ");
                template.image_name = Some(format!("{name} line {line}: {shown}"));
            }
        }
        Ok(template)
    }

    pub fn declares(&self, variable: &str) -> bool {
        self.variables.contains(variable)
    }

    /// The projects the template builds in, joined for a message, when they are not
    /// `project`: its images would land where images, prune and orphans do not look. `None`
    /// when they agree, or when the template names no literal project.
    pub fn other_projects(&self, project: &str) -> Option<String> {
        (!self.projects.is_empty() && !self.projects.contains(project)).then(|| {
            self.projects
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// The lowest packer version every `required_version` allows, or 1.7.0 when none is given.
    pub fn minimum_packer(&self) -> anyhow::Result<Version> {
        let mut minimum = FIRST_WITH_PLUGINS;
        for constraints in &self.required_versions {
            for constraint in constraints.split(',') {
                let Some(lower) = lower_bound(constraint) else {
                    bail!(
                        "required_version {constraints:?}: cannot read {:?} (expected e.g. \">= 1.7.0\")",
                        constraint.trim()
                    );
                };
                minimum = minimum.max(lower);
            }
        }
        Ok(minimum)
    }

    /// Adds what `tokens` declare; returns the line of a source's `image_name`, if any.
    fn add(&mut self, tokens: &[Token]) -> Option<usize> {
        let mut image_name = None;
        // (block type, depth at which its body starts); the block being read at depth 1.
        let mut depth = 0usize;
        let mut brackets = 0usize;
        let mut block: Option<String> = None;
        // The block being read at depth 2 inside a `build {}`: its kind and first label.
        let mut nested: Option<(String, Option<String>)> = None;
        let mut line_start = true;
        for (i, token) in tokens.iter().enumerate() {
            let next = tokens.get(i + 1);
            match token {
                Token::Open => {
                    if depth == 0 {
                        block = block_header(&tokens[..i]);
                        if let Some(("variable", Some(name))) = block_kind(&tokens[..i]) {
                            self.variables.insert(name);
                        }
                    } else if depth == 1 && block.as_deref() == Some("build") {
                        nested =
                            block_kind(&tokens[..i]).map(|(kind, label)| (kind.to_string(), label));
                    }
                    depth += 1;
                    line_start = true;
                    continue;
                }
                Token::Close => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        block = None;
                    }
                    if depth <= 1 {
                        nested = None;
                    }
                }
                Token::Bracket(open) => {
                    brackets = if *open {
                        brackets + 1
                    } else {
                        brackets.saturating_sub(1)
                    };
                }
                Token::Newline => {
                    line_start = true;
                    continue;
                }
                Token::Ident(name) if line_start && brackets == 0 => {
                    let assigned = next == Some(&Token::Equals);
                    match (block.as_deref(), depth) {
                        (Some("variables"), 1) if assigned => {
                            self.variables.insert(name.clone());
                        }
                        (Some("packer"), 1) if name == "required_plugins" => {
                            self.requires_plugins = true;
                        }
                        (Some("packer"), 1) if name == "required_version" && assigned => {
                            if let Some(Token::Str(value)) = tokens.get(i + 2) {
                                self.required_versions.push(value.clone());
                            }
                        }
                        (Some("packer"), 2..) if name == "source" && assigned => {
                            if let Some(Token::Str(value)) = tokens.get(i + 2) {
                                self.plugin_sources.insert(value.clone());
                            }
                        }
                        (Some("source"), 1) if name == "image_name" && assigned => {
                            let newlines =
                                tokens[..i].iter().filter(|t| **t == Token::Newline).count();
                            image_name = Some(newlines + 1);
                        }
                        (Some("source"), 1) if name == "image_family" && assigned => {
                            let value = match tokens.get(i + 2) {
                                Some(Token::Str(value)) => value.clone(),
                                _ => String::new(),
                            };
                            self.image_families.insert(value);
                        }
                        (Some("source"), 1) if name == "project_id" && assigned => {
                            if let Some(Token::Str(value)) = tokens.get(i + 2) {
                                self.projects.insert(value.clone());
                            }
                        }
                        (Some("source"), 1) if name == "zone" && assigned => {
                            if let Some(Token::Str(value)) = tokens.get(i + 2) {
                                self.zones.insert(value.clone());
                            }
                        }
                        (Some("build"), 2) if name == "playbook_file" && assigned => {
                            let ansible = nested.as_ref().is_some_and(|(kind, label)| {
                                kind == "provisioner"
                                    && matches!(label.as_deref(), Some("ansible-local" | "ansible"))
                            });
                            if ansible {
                                let value = match tokens.get(i + 2) {
                                    Some(Token::Str(value)) => value.clone(),
                                    _ => String::new(),
                                };
                                self.playbooks.push(value);
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
            line_start = false;
        }
        image_name
    }
}

/// The files of the template folder that `packer build .` loads besides the template the old
/// `make build` built (`main.pkr.hcl`), from the names of the folder's files.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Variables files packer loads by itself (`*.auto.pkrvars.hcl`, `*.auto.pkrvars.json`):
    /// they would override what the tool passes, unseen.
    pub auto_variables: Vec<String>,
    /// JSON templates (`*.pkr.json`), which the tool does not read.
    pub json_templates: Vec<String>,
    /// More `*.pkr.hcl` files: read as part of the template, and in its fingerprint.
    pub more_templates: Vec<String>,
}

impl Loaded {
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Loaded {
        let mut loaded = Loaded::default();
        for name in names {
            let name = name.to_string();
            if name.ends_with(".auto.pkrvars.hcl") || name.ends_with(".auto.pkrvars.json") {
                loaded.auto_variables.push(name);
            } else if name.ends_with(".pkr.json") {
                loaded.json_templates.push(name);
            } else if name.ends_with(".pkr.hcl") && name != "main.pkr.hcl" {
                loaded.more_templates.push(name);
            }
        }
        for list in [
            &mut loaded.auto_variables,
            &mut loaded.json_templates,
            &mut loaded.more_templates,
        ] {
            list.sort();
        }
        loaded
    }

    /// Why the build must not start, naming the files: `None` when nothing packer would load
    /// is hidden from the tool.
    pub fn refusal(&self, folder: &str) -> Option<String> {
        let mut problems = Vec::new();
        if !self.auto_variables.is_empty() {
            problems.push(format!(
                "{} in {folder} would be loaded by packer and override the variables the tool passes \
                 (`make build` never read one): delete or rename it, and put settings in slurm-image.toml",
                self.auto_variables.join(", ")
            ));
        }
        if !self.json_templates.is_empty() {
            problems.push(format!(
                "{} in {folder} would be built as part of the template, which the tool reads only from \
                 *.pkr.hcl files (`make build` built main.pkr.hcl alone): delete or rename it",
                self.json_templates.join(", ")
            ));
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

/// The type of the block whose `{` follows `before`: the identifier that starts its header.
fn block_header(before: &[Token]) -> Option<String> {
    block_kind(before).map(|(kind, _)| kind.to_string())
}

/// A block header `kind "label" ... {`: its kind and first label.
fn block_kind(before: &[Token]) -> Option<(&str, Option<String>)> {
    let start = before
        .iter()
        .rposition(|t| matches!(t, Token::Newline | Token::Close))
        .map_or(0, |i| i + 1);
    let header = &before[start..];
    let Some(Token::Ident(kind)) = header.first() else {
        return None;
    };
    let label = match header.get(1) {
        Some(Token::Str(label)) => Some(label.clone()),
        _ => None,
    };
    header[1..]
        .iter()
        .all(|t| matches!(t, Token::Str(_) | Token::Ident(_)))
        .then_some((kind.as_str(), label))
}

/// The lowest version one constraint (`>= 1.7.0`, `~> 1.8`, `= 1.9.1`, `> 1.7`) allows.
fn lower_bound(constraint: &str) -> Option<Version> {
    let constraint = constraint.trim();
    let version = constraint
        .trim_start_matches(['>', '=', '~', ' '])
        .trim_start_matches('v');
    if constraint.starts_with('<') || constraint.starts_with("!=") {
        // An upper bound or an exclusion raises no minimum.
        return Some((0, 0, 0));
    }
    let core = version.split(['-', '+', ' ']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// The few kinds of token the structure is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    /// A quoted string; its text when it holds no interpolation, else empty.
    Str(String),
    Open,
    Close,
    /// `[` or `(` (true), `]` or `)` (false).
    Bracket(bool),
    Equals,
    Newline,
    Other,
}

/// Splits HCL text into tokens, skipping comments, string contents and heredocs.
fn tokens(text: &str) -> anyhow::Result<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let line_of = |i: usize| chars[..i].iter().filter(|&&c| c == '\n').count() + 1;
    // Braces opened inside `${ ... }` of a string, per string being read: when the count
    // drops back to zero, the string goes on.
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                out.push(Token::Newline);
                i += 1;
            }
            '#' => i = skip_line(&chars, i),
            '/' if chars.get(i + 1) == Some(&'/') => i = skip_line(&chars, i),
            '/' if chars.get(i + 1) == Some(&'*') => {
                let start = i;
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                if i >= chars.len() {
                    bail!("line {}: a /* comment is never closed", line_of(start));
                }
                i += 2;
                let lines = chars[start..i].iter().filter(|&&c| c == '\n').count();
                out.extend(std::iter::repeat_n(Token::Newline, lines));
            }
            '"' => {
                let start = i;
                let (end, value) = string(&chars, i + 1).ok_or_else(|| {
                    anyhow::anyhow!("line {}: a string is never closed", line_of(start))
                })?;
                out.push(Token::Str(value));
                i = end;
            }
            '<' if chars.get(i + 1) == Some(&'<') => {
                let start = i;
                i = heredoc(&chars, i + 2).ok_or_else(|| {
                    anyhow::anyhow!("line {}: a heredoc is never closed", line_of(start))
                })?;
                out.push(Token::Str(String::new()));
                // The heredoc's lines still count, so that later lines are numbered right.
                let lines = chars[start..i].iter().filter(|&&c| c == '\n').count();
                out.extend(std::iter::repeat_n(Token::Newline, lines));
            }
            '{' => {
                out.push(Token::Open);
                i += 1;
            }
            '}' => {
                out.push(Token::Close);
                i += 1;
            }
            '[' | '(' => {
                out.push(Token::Bracket(true));
                i += 1;
            }
            ']' | ')' => {
                out.push(Token::Bracket(false));
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let double = chars.get(i + 1).is_some_and(|&n| n == '=' || n == '>');
                out.push(if c == '=' && !double {
                    Token::Equals
                } else {
                    Token::Other
                });
                i += if double { 2 } else { 1 };
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-'))
                {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                out.push(Token::Other);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn skip_line(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i] != '\n' {
        i += 1;
    }
    i
}

/// Reads a quoted string whose text starts at `i`; returns the index after its closing quote
/// and its value (empty when it interpolates). `${ ... }` and `%{ ... }` may hold quotes and
/// braces of their own.
fn string(chars: &[char], mut i: usize) -> Option<(usize, String)> {
    let mut value = String::new();
    let mut literal = true;
    while i < chars.len() {
        match chars[i] {
            '"' => return Some((i + 1, if literal { value } else { String::new() })),
            '\\' => {
                value.push(*chars.get(i + 1)?);
                i += 2;
            }
            '\n' => return None,
            c @ ('$' | '%') if chars.get(i + 1) == Some(&'{') => {
                if chars.get(i.wrapping_sub(1)) == Some(&c) {
                    // `$${` is an escaped, literal `${`.
                    value.push('{');
                    i += 2;
                    continue;
                }
                literal = false;
                i = interpolation(chars, i + 2)?;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    None
}

/// Skips an interpolation's expression, whose text starts at `i`, to just after its `}`.
fn interpolation(chars: &[char], mut i: usize) -> Option<usize> {
    let mut depth = 1;
    while i < chars.len() {
        match chars[i] {
            '"' => i = string(chars, i + 1)?.0,
            '{' => {
                depth += 1;
                i += 1;
            }
            '}' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Skips a heredoc whose marker (`EOF` or `-EOF`) starts at `i`, to the end of its last line.
fn heredoc(chars: &[char], i: usize) -> Option<usize> {
    let rest: String = chars[i..].iter().collect();
    let first_line = rest.lines().next()?;
    let marker = first_line.trim().trim_start_matches('-');
    if marker.is_empty() {
        return None;
    }
    let mut offset = first_line.chars().count() + 1;
    for line in rest.lines().skip(1) {
        offset += line.chars().count() + 1;
        if line.trim() == marker {
            return Some(i + offset - 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Template {
        Template::read([("main.pkr.hcl", text)]).unwrap()
    }

    #[test]
    fn the_image_name_line_is_found_past_heredocs_and_comments() {
        let template = read(
            "/* a\n comment */\nlocals {\n  x = <<EOF\none\ntwo\nEOF\n}\nsource \"googlecompute\" \"x\" {\n  \
             cpu_image_name = \"no\"\n  image_name = \"det-environments-${var.workload_manager}-ci-{{timestamp}}\"\n}\n",
        );
        assert_eq!(
            template.image_name.as_deref(),
            Some("main.pkr.hcl line 11: image_name = \"det-environments-${var.workload_manager}-ci-{{timestamp}}\"")
        );
        assert_eq!(read("variable \"image_name\" {}\n").image_name, None);
        assert!(template.image_families.is_empty());
        let families = read("source \"a\" \"b\" {\n  image_family = \"det-environments-slurm-ci\"\n}\nsource \"a\" \"c\" {\n  image_family = var.family\n}\n").image_families;
        assert_eq!(
            families,
            ["".to_string(), "det-environments-slurm-ci".to_string()].into()
        );
    }

    /// The shape of the real repository's template: the packer block with plugins only, and a
    /// `variables` block with empty defaults.
    const REAL_FORM: &str = r#"
packer {
  required_plugins {
    googlecompute = {
      version = ">= 1.0.0"
      source  = "github.com/hashicorp/googlecompute"
    }
  }
}

variables {
  ssh_username           = ""
  workload_manager       = ""
  image_family           = ""
}

locals {
  build_dest_path = "/tmp/build"
  launcher        = "${local.build_dest_path}/${var.launcher_deb_name}"
}

source "googlecompute" "determined-hpc-image" {
  project_id              = "determined-ai"
  source_image_project_id = [var.image_project_id]
  zone                    = "us-central1-c"
  metadata                = { "block-project-ssh-keys" : "true" }
}

build {
  provisioner "shell" {
    inline = [
      "bash -c 'if [[ ${var.workload_manager} == slurm  ]]; then echo { ; fi'",
    ]
  }
  post-processor "manifest" {
    output = "build/manifest.json"
  }
}
"#;

    #[test]
    fn reads_the_real_forms_declarations() {
        let t = read(REAL_FORM);
        assert_eq!(
            t.variables.iter().map(String::as_str).collect::<Vec<_>>(),
            ["image_family", "ssh_username", "workload_manager"]
        );
        assert!(t.requires_plugins);
        assert_eq!(
            t.plugin_sources.iter().collect::<Vec<_>>(),
            ["github.com/hashicorp/googlecompute"]
        );
        assert!(t.required_versions.is_empty());
        assert_eq!(t.minimum_packer().unwrap(), (1, 7, 0));
        assert_eq!(t.projects.iter().collect::<Vec<_>>(), ["determined-ai"]);
        assert_eq!(t.zones.iter().collect::<Vec<_>>(), ["us-central1-c"]);
        assert_eq!(t.other_projects("determined-ai"), None);
        assert_eq!(
            t.other_projects("someone-else").as_deref(),
            Some("determined-ai")
        );
        assert_eq!(Template::default().other_projects("any"), None);
    }

    #[test]
    fn variable_blocks_across_files_and_the_required_version() {
        let t = Template::read([
            (
                "variables.pkr.hcl",
                "variable \"manifest_path\" {\n  type    = string\n  default = \"build/manifest.json\"\n}\n\
                 variable \"image_labels\" {\n  type    = map(string)\n  default = {}\n}\n",
            ),
            (
                "plugins.pkr.hcl",
                "packer {\n  required_version = \">= 1.8.6, < 2.0.0\"\n}\n",
            ),
        ])
        .unwrap();
        assert!(t.declares("manifest_path") && t.declares("image_labels"));
        assert!(!t.declares("type") && !t.declares("default"));
        assert!(!t.requires_plugins);
        assert_eq!(t.minimum_packer().unwrap(), (1, 8, 6));
    }

    #[test]
    fn comments_strings_heredocs_and_nested_objects_declare_nothing() {
        let t = read(
            r#"
# variable "in_a_comment" {}
// variables { commented = "" }
/* variable "in_a_block_comment" {
} */
variables {
  real = "a string with variable \"x\" { and a } brace"
  tricky = "${ { a = "b" }.a } }"
  nested = {
    inner = "not a variable"
  }
  list = [
    "x",
  ]
  doc = <<-EOF
    variable "in_a_heredoc" {}
    EOF
  after = ""
}
locals { local_value = "" }
variable "last" {
  default = "x == y"
}
"#,
        );
        assert_eq!(
            t.variables.iter().map(String::as_str).collect::<Vec<_>>(),
            ["after", "doc", "last", "list", "nested", "real", "tricky"]
        );
    }

    #[test]
    fn playbooks_of_ansible_provisioners_only() {
        let t = read(
            r#"
provisioner "ansible-local" {
  playbook_file = "not-in-a-build.yml"
}
build {
  provisioner "shell" {
    playbook_file = "not-ansible.yml"
  }
  provisioner "ansible-local" {
    playbook_file   = "ansible-playbook.yml"
    extra_arguments = ["-e \"workload_manager=${var.workload_manager}\""]
    nested {
      playbook_file = "too-deep.yml"
    }
  }
  provisioner "ansible" {
    playbook_file = "${path.root}/remote.yml"
  }
}
"#,
        );
        assert_eq!(t.playbooks, ["ansible-playbook.yml", ""]);
    }

    #[test]
    fn files_packer_loads_beyond_main_pkr_hcl_are_named() {
        let loaded = Loaded::of([
            "main.pkr.hcl",
            "scratch.auto.pkrvars.hcl",
            "old.pkr.json",
            "variables.pkr.hcl",
            "ansible-playbook.yml",
            "x.auto.pkrvars.json",
        ]);
        assert_eq!(
            loaded.auto_variables,
            ["scratch.auto.pkrvars.hcl", "x.auto.pkrvars.json"]
        );
        assert_eq!(loaded.json_templates, ["old.pkr.json"]);
        assert_eq!(loaded.more_templates, ["variables.pkr.hcl"]);
        let refusal = loaded.refusal("tools/slurm/packer").unwrap();
        assert!(
            refusal
                .starts_with("scratch.auto.pkrvars.hcl, x.auto.pkrvars.json in tools/slurm/packer"),
            "{refusal}"
        );
        assert!(
            refusal.contains("old.pkr.json in tools/slurm/packer"),
            "{refusal}"
        );
        assert_eq!(
            Loaded::of(["main.pkr.hcl", "variables.pkr.hcl"]).refusal("f"),
            None
        );
    }

    #[test]
    fn version_constraints() {
        let minimum = |c: &str| {
            Template {
                required_versions: vec![c.to_string()],
                ..Template::default()
            }
            .minimum_packer()
        };
        assert_eq!(minimum(">= 1.9.1").unwrap(), (1, 9, 1));
        assert_eq!(minimum("~> 1.8").unwrap(), (1, 8, 0));
        assert_eq!(minimum("= 1.10.0").unwrap(), (1, 10, 0));
        assert_eq!(minimum("< 2.0.0").unwrap(), (1, 7, 0));
        // Lower than what required_plugins needs: 1.7.0 still applies.
        assert_eq!(minimum(">= 1.5.0").unwrap(), (1, 7, 0));
        let err = minimum(">= one").unwrap_err().to_string();
        assert!(err.contains("cannot read \">= one\""), "{err}");
    }

    #[test]
    fn unclosed_things_are_errors_with_the_line() {
        let err = Template::read([("main.pkr.hcl", "x = 1\nvariable \"a {\n")])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "main.pkr.hcl: line 2: a string is never closed");
        let err = Template::read([("main.pkr.hcl", "/* open")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1: a /* comment is never closed"),
            "{err}"
        );
    }
}
