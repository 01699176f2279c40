//! The committed OpenAPI document matches the code.

use test_support::openapi;

#[test]
fn the_committed_spec_matches_the_code() {
    openapi::assert_committed_matches("command-api", &command_api::http::spec());
}

#[test]
fn printing_the_spec_needs_no_store_database_or_key() {
    openapi::assert_printed_without_infrastructure(env!("CARGO_BIN_EXE_command-api"), &command_api::http::spec());
}
