//! Turns the EventStoreDB half of the contract suite on when `TEST_ESDB_URL`
//! is set, so that without it `cargo test` lists those tests as ignored,
//! with the reason, instead of passing them silently.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(esdb_available)");
    println!("cargo::rerun-if-env-changed=TEST_ESDB_URL");
    if std::env::var_os("TEST_ESDB_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=esdb_available");
    }
}
