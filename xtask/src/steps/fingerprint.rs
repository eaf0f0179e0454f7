//! Hashing what an image is made from: the template folder's files in the groups the labels
//! name, and the launcher package. The combining is pure (`model::provenance`); this reads.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::host::HostTree;
use crate::model::hex;
use crate::model::launcher_version::LauncherPackage;
use crate::model::packer_inputs::is_packer_input;
use crate::model::provenance::{digest_of_files, digest_of_variables, Digests, Provenance};
use crate::model::template::{Loaded, Template};
use crate::model::variables::Variables;
use crate::model::WorkloadManager;

/// What an image built now would be made from; `None` when the launcher package is not in
/// build/ to hash (a dry run that would fetch it).
pub fn provenance(
    host: &HostTree,
    template: &Template,
    contract: &Variables,
    wm: WorkloadManager,
    package: &LauncherPackage,
    source_image: Option<&str>,
) -> anyhow::Result<Option<Provenance>> {
    let deb = host.build_dir.join(&package.file_name);
    if !deb.is_file() {
        return Ok(None);
    }
    let playbooks: Vec<String> = template
        .playbooks
        .iter()
        .map(|p| p.trim_start_matches("./").to_string())
        .collect();
    let files = packer_inputs(host)?;
    let (mut template_files, mut playbook_files, mut static_files) =
        (Vec::new(), Vec::new(), Vec::new());
    for file in files {
        let rel = relative(&host.packer_dir, &file);
        let entry = (rel.clone(), sha256_of(&file)?);
        if playbooks.contains(&rel) {
            playbook_files.push(entry);
        } else if rel.starts_with("static/") {
            static_files.push(entry);
        } else {
            template_files.push(entry);
        }
    }
    Ok(Some(Provenance {
        wm,
        launcher_version: package.version.to_string(),
        source_image: source_image.map(str::to_string),
        digests: Digests {
            template: digest_of_files(&template_files),
            playbook: digest_of_files(&playbook_files),
            static_files: digest_of_files(&static_files),
            variables: digest_of_variables(contract),
            launcher_package: sha256_of(&deb)?,
        },
    }))
}

/// `dir/a/b` as `a/b`, with `/` whatever the platform, so digests match across machines.
fn relative(dir: &Path, file: &Path) -> String {
    file.strip_prefix(dir)
        .unwrap_or(file)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A file's sha256, streamed: the launcher package need not fit in memory.
fn sha256_of(path: &Path) -> anyhow::Result<String> {
    // A FIFO or a device (`static/zero -> /dev/zero`) would be read forever: refused.
    let mut file = crate::host::open_regular(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

/// What `packer build .` loads from the template folder besides main.pkr.hcl.
pub fn loaded(host: &HostTree) -> anyhow::Result<Loaded> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(&host.packer_dir)
        .with_context(|| format!("listing {}", host.packer_dir.display()))?;
    for entry in entries {
        let entry = entry?;
        if entry.path().is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(Loaded::of(names.iter().map(String::as_str)))
}

/// The files of the template folder that packer may read, and so that the fingerprint covers:
/// all but build/, the config file and the README ([`is_packer_input`], the one rule). A
/// build's packer runs in a copy of exactly these (see `HostTree::staging_dir`), so what packer
/// loads is what the fingerprint names.
pub fn packer_inputs(host: &HostTree) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    collect_files(&host.packer_dir, &host.packer_dir, &mut files)?;
    files.sort();
    Ok(files)
}

/// Every file under `dir` that [`is_packer_input`] keeps, by its path in the template folder.
fn collect_files(template_dir: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if !is_packer_input(&relative(template_dir, &path)) {
            continue;
        }
        if path.is_dir() {
            collect_files(template_dir, &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Config;
    use crate::model::variables::contract;

    /// Writes the files into a fresh tree at `root`, in the order given.
    fn tree(root: &Path, files: &[(&str, &str)]) -> HostTree {
        let _ = std::fs::remove_dir_all(root);
        for (rel, text) in files {
            let path = root.join("tools/slurm/packer").join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        HostTree::at(root)
    }

    #[test]
    fn the_fingerprint_does_not_depend_on_the_checkout_path_or_file_order() {
        let config =
            Config::parse(crate::model::config::tests::EXAMPLE, "slurm-image.toml").unwrap();
        let package =
            LauncherPackage::from_file_name("hpe-hpc-launcher_3.3.1-2_amd64.deb").unwrap();
        let vars = contract(&config, WorkloadManager::Slurm, &package.file_name);
        let template = Template {
            playbooks: vec!["./ansible-playbook.yml".into()],
            ..Template::default()
        };
        let files = [
            ("main.pkr.hcl", "source {}"),
            ("ansible-playbook.yml", "- hosts: all"),
            ("static/motd", "hello"),
            ("static/slurm.conf", "ClusterName=devbox"),
            ("scripts/install-ansible.sh", "apt-get install ansible"),
            ("build/hpe-hpc-launcher_3.3.1-2_amd64.deb", "package"),
            ("README.md", "not an input"),
        ];
        let mut reversed = files;
        reversed.reverse();
        let base = std::env::temp_dir().join(format!("xtask-inputs-{}", std::process::id()));
        let one = tree(&base.join("one"), &files);
        let two = tree(&base.join("elsewhere/two"), &reversed);
        let of = |host: &HostTree| {
            provenance(
                host,
                &template,
                &vars,
                WorkloadManager::Slurm,
                &package,
                Some("src-v1"),
            )
            .unwrap()
            .unwrap()
        };
        let (first, second) = (of(&one), of(&two));
        assert_eq!(first, second);
        assert_eq!(first.fingerprint(), second.fingerprint());

        // The README is not an input; a static file is, and only its group changes.
        std::fs::write(two.packer_dir.join("README.md"), "edited").unwrap();
        assert_eq!(of(&two), first);
        std::fs::write(two.packer_dir.join("static/motd"), "changed").unwrap();
        let changed = of(&two);
        assert_ne!(changed.digests.static_files, first.digests.static_files);
        assert_eq!(changed.digests.template, first.digests.template);
        assert_eq!(changed.digests.playbook, first.digests.playbook);
        assert_ne!(changed.fingerprint(), first.fingerprint());

        // Without the package there is nothing to fingerprint.
        std::fs::remove_file(one.build_dir.join(&package.file_name)).unwrap();
        assert!(provenance(
            &one,
            &template,
            &vars,
            WorkloadManager::Slurm,
            &package,
            None
        )
        .unwrap()
        .is_none());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
