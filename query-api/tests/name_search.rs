//! Name search ignores case alike on SQLite and on Postgres, beyond ASCII:
//! both match the folded name the catalog stores against the folded
//! fragment (`domain::search::fold`), never the database's own `lower()`.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::system::System;

macro_rules! on_both_databases {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (url, _keep) = test_support::sqlite_views();
                    super::$case(&url).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let url = test_support::postgres::fresh_database().await;
                    super::$case(&url).await;
                }
            )*
        }
    };
}

on_both_databases!(names_are_found_by_any_case_of_a_fragment);

/// `body` sent by the admin, answered with 200 or 201: its position.
async fn command(system: &System, admin: &str, path: &str, body: Value, put: bool) -> Value {
    let (status, answer) = if put {
        let request = system.app.http.put(system.app.url(path)).bearer_auth(admin).json(&body);
        let response = request.send().await.unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    } else {
        system.command(path, Some(admin), body).await
    };
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// The SKUs of the products whose name holds `fragment`, once the views
/// have reached `position`.
async fn skus_named(system: &System, fragment: &str, position: &str) -> Vec<String> {
    let path = format!("/products?name={fragment}&minPosition={position}");
    let (status, page) = system.query(&path, None).await;
    assert_eq!(status, StatusCode::OK, "{fragment}: {page}");
    let items = page["items"].as_array().unwrap();
    items.iter().map(|p| p["sku"].as_str().unwrap().to_owned()).collect()
}

async fn names_are_found_by_any_case_of_a_fragment(views_url: &str) {
    let system = test_support::system::start(views_url).await;
    let admin = system.app.admin().await;
    let names = [
        ("ECLAIR-1", "Éclair au chocolat"),
        ("ECLAIR-2", "E\u{301}CLAIR NATURE"),
        ("MUG-1", "Plain mug"),
        ("STR-1", "Road mug"),
    ];
    let mut street = String::new();
    for (sku, name) in names {
        let body = json!({"sku": sku, "name": name, "price": "1.00", "stock": 1});
        let created = command(&system, &admin, "/products", body, false).await;
        street = created["productId"].as_str().unwrap().to_owned();
    }
    let path = format!("/products/{street}/name");
    let renamed = command(&system, &admin, &path, json!({"name": "Straße MUG"}), true).await;
    let at = renamed["position"].as_str().unwrap();
    let cases: [(&str, &[&str]); 8] = [
        ("éclair", &["ECLAIR-1", "ECLAIR-2"]),
        ("ÉCLAIR", &["ECLAIR-1", "ECLAIR-2"]),
        ("E\u{301}clair", &["ECLAIR-1", "ECLAIR-2"]),
        ("eclair", &[]),
        ("straße", &["STR-1"]),
        ("STRASSE", &["STR-1"]),
        ("Mug", &["MUG-1", "STR-1"]),
        ("road", &[]),
    ];
    for (fragment, expected) in cases {
        assert_eq!(skus_named(&system, fragment, at).await, expected, "{fragment:?}");
    }
}
