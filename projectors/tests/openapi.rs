//! The committed OpenAPI document of the admin API matches the code.

use std::path::PathBuf;

#[tokio::test]
async fn the_committed_spec_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/projectors.json");
    let generated = projectors::admin::spec_without_state().await;
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, format!("{generated}\n")).expect("the spec file is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/projectors.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p projectors --test openapi` and commit it"
    );
}
