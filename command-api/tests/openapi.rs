//! The committed OpenAPI document matches the code.

use std::path::PathBuf;

#[test]
fn the_committed_spec_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/command-api.json");
    let generated = command_api::http::spec();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, format!("{generated}\n")).expect("the spec file is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/command-api.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p command-api --test openapi` and commit it"
    );
}

/// `command-api openapi` prints the committed document without a store, a
/// views database or a key: no key is configured, and neither the
/// configured URLs nor the default ones (relative to the working directory)
/// get a file, as opening a store or a database would create one.
#[test]
fn printing_the_spec_needs_no_store_database_or_key() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_command-api"))
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
    let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/command-api.json");
    let committed = std::fs::read_to_string(committed).expect("the committed spec is readable");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim_end(), committed.trim_end());
    let created: Vec<_> = std::fs::read_dir(dir.path()).expect("readable").collect();
    assert!(created.is_empty(), "printing the spec created {created:?}");
}
