//! images through the built xtask and the real gcloud: deprecated and revoked images shown as
//! such (with `--wide`, their replacement), and `images diff`.

use crate::support::hosts::SLURM_PINNED;
use crate::support::{require_tool, HostCopy};

const DEPRECATED: &str = "det-environments-slurm-ci-1717100000";
const REVOKED: &str = "det-environments-slurm-ci-1717200000";

/// A host copy pinning `SLURM_PINNED`, with a deprecated and a revoked slurm image beside it.
/// `None` (after a loud skip) without gcloud.
fn host() -> Option<HostCopy> {
    require_tool("gcloud")?;
    let host = HostCopy::with_images(&[
        (
            SLURM_PINNED,
            &[
                ("bom-launcher", "3_3_0-0"),
                ("bom-slurm", "23_11_4"),
                ("input-fingerprint", "aaaa"),
            ],
        ),
        (DEPRECATED, &[]),
        (
            REVOKED,
            &[
                ("revoked", "2024-06-01"),
                ("bom-launcher", "3_3_1-2"),
                ("bom-slurm", "23_11_4"),
                ("input-fingerprint", "bbbb"),
            ],
        ),
    ]);
    let api = host.api();
    api.set_deprecated(DEPRECATED, Some(1_717_200_000), Some(SLURM_PINNED));
    api.set_deprecated(REVOKED, Some(1_717_300_000), Some(SLURM_PINNED));
    Some(host)
}

fn line<'a>(out: &'a str, image: &str) -> &'a str {
    out.lines()
        .find(|l| l.contains(image))
        .unwrap_or_else(|| panic!("{image} missing\n{out}"))
}

#[test]
fn images_lists_deprecated_and_revoked_images_as_such() {
    let Some(host) = host() else { return };
    let out = host.run(&["images"]).ok().stdout;
    assert!(line(&out, DEPRECATED).contains(" DEPRECATED "), "{out}");
    assert!(line(&out, REVOKED).contains(" REVOKED "), "{out}");
    assert!(line(&out, SLURM_PINNED).contains(" READY "), "{out}");
    let requests = host.api().http_requests();
    assert!(
        requests.contains(&"GET /compute/v1/projects/determined-ai/global/images".to_string()),
        "{requests:?}"
    );
}

#[test]
fn images_wide_names_the_image_that_replaces_a_deprecated_one() {
    let Some(host) = host() else { return };
    let out = host.run(&["images", "--wide"]).ok().stdout;
    assert!(
        line(&out, DEPRECATED).contains(&format!("DEPRECATED (replaced by {SLURM_PINNED})")),
        "{out}"
    );
    assert!(
        line(&out, REVOKED).contains(&format!("REVOKED (replaced by {SLURM_PINNED})")),
        "{out}"
    );
}

#[test]
fn images_diff_says_what_differs_one_line_each() {
    let Some(host) = host() else { return };
    let out = host
        .run(&["images", "diff", SLURM_PINNED, REVOKED])
        .ok()
        .stdout;
    let row = |what: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{what} ")))
            .unwrap_or_else(|| panic!("no {what} line\n{out}"))
            .split_whitespace()
            .skip(what.split(' ').count())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("launcher"), "3.3.0-0 -> 3.3.1-2", "{out}");
    assert_eq!(row("slurm"), "same: 23.11.4", "{out}");
    assert_eq!(row("fingerprint"), "aaaa -> bbbb", "{out}");
    assert!(out.lines().last().unwrap().ends_with("differ"), "{out}");
    assert_eq!(host.api().http_requests().len(), 1, "one listing");
}
