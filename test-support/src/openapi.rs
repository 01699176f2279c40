//! The OpenAPI drift checks every service runs: the committed document under
//! `openapi/` is what the code generates, and the binary prints it without
//! any infrastructure.

use std::path::{Path, PathBuf};

/// `openapi/<service>.json`, from the workspace root.
fn committed_path(service: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../openapi")
        .join(format!("{service}.json"))
}

/// Fails unless `openapi/<service>.json` equals `generated`; with
/// `UPDATE_OPENAPI` set, writes it first.
pub fn assert_committed_matches(service: &str, generated: &str) {
    let path = committed_path(service);
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, format!("{generated}\n")).expect("the spec file is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/{service}.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p {service} --test openapi` and commit it"
    );
}

/// `<binary> openapi` prints `generated` (the document the code makes, which
/// the drift check compares with the committed one) without a store, a
/// views database or a key: no key is configured, and neither the
/// configured URLs nor the default ones (relative to the working directory)
/// get a file, as opening a store or a database would create one.
pub fn assert_printed_without_infrastructure(binary: &str, generated: &str) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let output = std::process::Command::new(binary)
        .arg("openapi")
        .current_dir(dir.path())
        .env("EVENT_STORE_URL", url("events.db"))
        .env("VIEWS_DATABASE_URL", format!("{}?mode=rwc", url("views.db")))
        .env_remove("JWT_PRIVATE_KEY")
        .env_remove("JWT_PRIVATE_KEY_FILE")
        .env_remove("JWT_PUBLIC_KEY")
        .env_remove("JWT_PUBLIC_KEY_FILE")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim_end(), generated.trim_end());
    let created: Vec<_> = std::fs::read_dir(dir.path()).expect("readable").collect();
    assert!(created.is_empty(), "printing the spec created {created:?}");
}
