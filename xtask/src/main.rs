//! `cargo xtask`: the project's own tooling, starting with the GCE images of the HPC test clusters.

fn main() {
    xtask::main()
}
