//! RFC 9110 on every path of a running service, read from the spec it
//! serves: `OPTIONS` answers 204 with `Allow`, a method a path does not
//! answer gets 405 with `Allow` (problem+json), and `HEAD` answers as `GET`
//! without a body. Every service's contract tests use it, so every service
//! is held to the same rules.

use std::collections::BTreeSet;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

/// The paths beside the operations that every service serves.
const FIXED_PATHS: &[&str] = &["/openapi.json", "/metrics", "/docs"];

/// Each path of the spec at `base` (parameters filled in) with the methods
/// it must allow: the spec's, `HEAD` with `GET`, `OPTIONS`.
async fn allowed_methods(http: &Client, base: &str) -> Vec<(String, BTreeSet<String>)> {
    let spec: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut paths: Vec<(String, BTreeSet<String>)> = spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, operations)| {
            let methods = operations
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            (fill_parameters(path), methods)
        })
        .collect();
    paths.extend(
        FIXED_PATHS
            .iter()
            .map(|path| (path.to_string(), BTreeSet::from(["GET".to_owned()]))),
    );
    for (_, methods) in &mut paths {
        if methods.contains("GET") {
            methods.insert("HEAD".to_owned());
        }
        methods.insert("OPTIONS".to_owned());
    }
    paths
}

/// `/orders/{id}` as `/orders/<a fresh UUID>`.
fn fill_parameters(path: &str) -> String {
    path.split('/')
        .map(|part| {
            if part.starts_with('{') {
                uuid::Uuid::new_v4().to_string()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn allow_of(response: &reqwest::Response) -> BTreeSet<String> {
    let allow = response
        .headers()
        .get("allow")
        .unwrap_or_else(|| panic!("{} {}: no Allow", response.status(), response.url()));
    allow
        .to_str()
        .unwrap()
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect()
}

/// `OPTIONS` and the methods no path of the service answers, on every path.
pub async fn every_path_answers_options_and_refuses_other_methods_with_allow(base: &str) {
    let http = Client::new();
    for (path, allowed) in allowed_methods(&http, base).await {
        let url = format!("{base}{path}");
        let options = http.request(Method::OPTIONS, &url).send().await.unwrap();
        assert_eq!(options.status(), StatusCode::NO_CONTENT, "OPTIONS {path}");
        assert_eq!(allow_of(&options), allowed, "OPTIONS {path}");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"] {
            if allowed.contains(method) {
                continue;
            }
            let response = http.request(method.parse().unwrap(), &url).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(allow_of(&response), allowed, "{method} {path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{method} {path}"
            );
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["status"], 405, "{method} {path}: {problem}");
        }
    }
}

/// `HEAD` on `path` answers as `GET` does, without a body.
pub async fn head_answers_as_get_without_a_body(base: &str, path: &str) {
    let http = Client::new();
    let url = format!("{base}{path}");
    let get = http.get(&url).send().await.unwrap();
    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), get.status(), "HEAD {path}");
    assert_eq!(
        head.headers().get("content-type"),
        get.headers().get("content-type"),
        "HEAD {path}"
    );
    assert!(!get.bytes().await.unwrap().is_empty(), "GET {path} has a body");
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path} has no body");
}

/// A path no route has is 404 whatever the method, `OPTIONS` included.
pub async fn an_unknown_path_is_not_found_for_any_method(base: &str) {
    let http = Client::new();
    for method in [Method::GET, Method::OPTIONS, Method::DELETE] {
        let response = http
            .request(method.clone(), format!("{base}/no/such/path"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method}");
    }
}
