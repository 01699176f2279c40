//! Turns the tests that run a Postgres server of their own (stopped and
//! started under the running services, `tests/views_outage.rs`) off where
//! no Postgres binaries are installed, so that `cargo test` lists them as
//! ignored, with the reason, instead of passing them silently. The test
//! finds the binaries the same way (`test_support::postgres::installed_binaries`):
//! `pg_config --bindir`, a folder on `PATH`, `/usr/lib/postgresql/*/bin`.

use std::path::{Path, PathBuf};

fn has_both(dir: &Path) -> bool {
    dir.join("initdb").exists() && dir.join("pg_ctl").exists()
}

fn installed() -> bool {
    let bindir = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"));
    bindir
        .into_iter()
        .chain(std::env::split_paths(&path))
        .chain(versions)
        .any(|dir| has_both(&dir))
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_postgres_binaries)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    if !installed() {
        println!("cargo::rustc-cfg=no_postgres_binaries");
    }
}
