//! Real tools a test needs: a developer's run skips loudly without them, a CI run fails.

use std::path::PathBuf;

/// Whether this run is CI, where a missing tool fails the test instead of skipping it.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds `program` on PATH. When it is missing, a developer's run skips loudly and a CI run
/// fails: a test that needs a real tool must run under CI.
pub fn require_tool(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    if found.is_none() {
        assert!(
            !under_ci(),
            "{program} is not installed, and CI=true: this test must run under CI"
        );
        // Straight to the stderr file, past libtest's capture of `eprintln!`, so that a skip is
        // seen in a plain `cargo test` run.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {}: {program} is not on PATH (install it to run this test; CI=true makes this a failure)",
            std::thread::current().name().unwrap_or("a test")
        );
    }
    found
}
