//! The OpenAPI document and the server agree: each operation documents
//! exactly the statuses it answers, and the schemas refuse what the server
//! refuses.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{App, order_body};

fn spec() -> Value {
    serde_json::from_str(&command_api::http::spec()).unwrap()
}

/// Every operation: (method, path as the document writes it, its statuses).
fn operations(spec: &Value) -> Vec<(String, String, BTreeSet<String>)> {
    let mut operations = Vec::new();
    for (path, methods) in spec["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let statuses = operation["responses"].as_object().unwrap().keys().cloned().collect();
            operations.push((method.to_uppercase(), path.clone(), statuses));
        }
    }
    operations
}

fn takes_json(spec: &Value, method: &str, path: &str) -> bool {
    let operation = &spec["paths"][path][method.to_lowercase()];
    let content = operation["requestBody"]["content"].as_object();
    content.is_some_and(|content| content.keys().any(|kind| kind.starts_with("application/json")))
}

/// The statuses each operation can answer, as read from the code: the
/// document must list exactly these.
#[test]
fn each_operation_documents_exactly_its_statuses() {
    let body = ["400", "413", "415", "500", "503"];
    let with = |extra: &[&str]| -> BTreeSet<String> { body.iter().chain(extra).map(|s| s.to_string()).collect() };
    let admin_change = with(&["200", "401", "403", "404", "409"]);
    let statuses = |all: &[&str]| -> BTreeSet<String> { all.iter().map(|s| s.to_string()).collect() };
    let expected = [
        ("POST", "/auth/register", with(&["201", "409", "429"])),
        ("POST", "/auth/login", with(&["200", "401", "429"])),
        ("POST", "/auth/logout", with(&["200", "401", "409"])),
        (
            "POST",
            "/me/password",
            with(&["200", "401", "404", "409", "422", "429"]),
        ),
        ("PUT", "/users/{id}/role", admin_change.clone()),
        ("POST", "/products", with(&["201", "401", "403", "409"])),
        ("PUT", "/products/{id}/name", admin_change.clone()),
        ("PUT", "/products/{id}/price", admin_change.clone()),
        ("POST", "/products/{id}/restock", admin_change),
        ("POST", "/orders", with(&["201", "202", "401", "409", "422", "429"])),
        ("POST", "/orders/{id}/cancel", with(&["200", "401", "404", "409"])),
        (
            "POST",
            "/orders/{id}/payment",
            with(&["200", "401", "403", "404", "409", "422"]),
        ),
        (
            "POST",
            "/orders/{id}/close",
            statuses(&["200", "400", "401", "403", "404", "409", "500", "503"]),
        ),
        ("GET", "/.well-known/jwks.json", ["200".to_owned()].into()),
        ("GET", "/saga/parked", statuses(&["200", "401", "403", "500", "503"])),
        (
            "POST",
            "/saga/parked/{position}/retry",
            statuses(&["204", "401", "403", "404", "409", "500", "503"]),
        ),
        (
            "POST",
            "/saga/parked/{position}/skip",
            statuses(&["204", "401", "403", "404", "500", "503"]),
        ),
        ("GET", "/health/live", ["200".to_owned()].into()),
        ("GET", "/health/ready", ["200".to_owned(), "503".to_owned()].into()),
    ];
    let spec = spec();
    let documented = operations(&spec);
    assert_eq!(documented.len(), expected.len(), "{documented:?}");
    for (method, path, statuses) in &expected {
        let found = documented.iter().find(|(m, p, _)| m == method && p == path);
        let (_, _, actual) = found.unwrap_or_else(|| panic!("{method} {path} is not documented"));
        assert_eq!(actual, statuses, "{method} {path}");
    }
}

/// Every error answer is a problem detail; 415 and 413 are documented for
/// exactly the operations that take a JSON body.
#[test]
fn errors_are_problems_and_body_statuses_go_with_bodies() {
    let spec = spec();
    for (method, path, statuses) in operations(&spec) {
        let json_body = takes_json(&spec, &method, &path);
        for status in ["413", "415"] {
            assert_eq!(statuses.contains(status), json_body, "{method} {path} and {status}");
        }
        for status in statuses.iter().filter(|s| s.starts_with('4') || s.starts_with('5')) {
            let content = &spec["paths"][&path][method.to_lowercase()]["responses"][status]["content"];
            let problem = &content["application/problem+json"]["schema"]["$ref"];
            // A health check's 503 is its own report, not a problem.
            if path.starts_with("/health") {
                continue;
            }
            assert_eq!(problem, "#/components/schemas/Problem", "{method} {path} {status}");
        }
    }
}

/// Concrete paths for the document's templates.
fn concrete(path: &str, product_id: &str) -> String {
    path.replace("{id}", product_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_operation_answers_a_wrong_content_type_and_an_oversized_body_with_its_documented_problem() {
    let app = App::start().await;
    let admin = app.admin().await;
    let product = app.product(&admin, "MUG-1", "12.50", 10).await;
    let spec = spec();
    let json_operations: Vec<_> = operations(&spec)
        .into_iter()
        .filter(|(method, path, _)| takes_json(&spec, method, path))
        .collect();
    assert_eq!(json_operations.len(), 12);
    let oversized = json!({"padding": "x".repeat(command_api::http::MAX_BODY_BYTES)}).to_string();
    for (method, path, _) in &json_operations {
        let url = app.url(&concrete(path, &product));
        let method: reqwest::Method = method.parse().unwrap();
        for (content_type, body, status) in [
            ("text/plain", "{}".to_owned(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ("application/json", oversized.clone(), StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            let response = app
                .http
                .request(method.clone(), &url)
                .bearer_auth(&admin)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), status, "{method} {path} with {content_type}");
            let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(kind, "application/problem+json", "{method} {path}");
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["status"], status.as_u16(), "{method} {path}: {problem}");
        }
    }
}

/// An operation without a request body never reads one: however large the
/// body announced with it, it answers one of its documented statuses, not
/// 413, without waiting for the body (sent here only in part).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_without_a_body_answer_as_documented_whatever_body_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = App::start().await;
    let spec = spec();
    let bodiless: Vec<_> = operations(&spec)
        .into_iter()
        .filter(|(method, path, _)| spec["paths"][path][method.to_lowercase()]["requestBody"].is_null())
        .collect();
    assert_eq!(bodiless.len(), 7, "{bodiless:?}");
    let address = app.base.trim_start_matches("http://");
    let announced = 2 * command_api::http::MAX_BODY_BYTES;
    for (method, path, statuses) in &bodiless {
        let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
        let head = format!("{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {announced}\r\n\r\n");
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(&vec![b'x'; 1024]).await.unwrap();
        let mut answer = vec![0; 12];
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), socket.read_exact(&mut answer)).await;
        read.expect("answered without the rest of the body").unwrap();
        let status = String::from_utf8_lossy(&answer[9..12]).into_owned();
        assert!(
            statuses.contains(&status),
            "{method} {path} answered {status}, documents {statuses:?}"
        );
    }
}

/// `/openapi.json` serves the generated document (the committed one, by the
/// drift check), links included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_generated_one_with_its_links() {
    let app = App::start().await;
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, spec());
    let links = &served["paths"]["/orders"]["post"]["responses"]["201"]["links"];
    assert_eq!(
        links["cancelOrder"]["parameters"]["id"], "$response.body#/orderId",
        "{links}"
    );
    assert_eq!(
        links["getOrder"]["parameters"]["minPosition"], "$response.body#/position",
        "{links}"
    );
}

/// Lines of one product are merged, and the merged line is bounded like
/// any other: a rule across lines no schema can say, so a schema-valid
/// request that breaks it answers 422 (documented), naming the first line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_of_one_product_over_the_bound_together_answer_422_naming_the_first() {
    let app = App::start().await;
    let admin = app.admin().await;
    let customer = app.customer("grace").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let cup = app.product(&admin, "CUP-1", "2.50", 10).await;
    let body = order_body(&[(&cup, 1), (&mug, 600), (&mug, 401)]);
    let (status, problem) = app.post("/orders", Some(&customer), &body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["type"], "/problems/invalid-combination", "{problem}");
    assert_eq!(problem["field"], "items[1].quantity", "{problem}");
    let (status, problem) = app
        .post("/orders", Some(&customer), &order_body(&[(&mug, 6), (&mug, 4)]))
        .await;
    assert_eq!(status, StatusCode::CREATED, "merged within the bound: {problem}");
}

/// What schema-based fuzzers found: values the old schemas allowed and the
/// server refused. The schemas now refuse them, and the server names the
/// field as the schema does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_the_schema_refuses_are_refused_naming_the_field() {
    let app = App::start().await;
    let admin = app.admin().await;
    let customer = app.customer("grace").await;
    let product = app.product(&admin, "MUG-1", "12.50", 10).await;
    let order = |change: &dyn Fn(&mut Value)| {
        let mut body = order_body(&[(&product, 1)]);
        change(&mut body);
        body
    };
    let cases = [
        ("/orders", order(&|b| b["items"] = json!([])), "items"),
        (
            "/orders",
            order(&|b| b["customer"]["phone"] = json!("")),
            "customer.phone",
        ),
        (
            "/orders",
            order(&|b| b["shipping"]["city"] = json!("   ")),
            "shipping.city",
        ),
        (
            "/orders",
            order(&|b| b["items"][0]["quantity"] = json!(0)),
            "items[0].quantity",
        ),
        (
            "/orders",
            order(&|b| b["items"][0]["productId"] = json!("")),
            "items[0].productId",
        ),
        (
            "/orders",
            order(&|b| b["customer"]["email"] = json!("a@b")),
            "customer.email",
        ),
    ];
    for (path, body, field) in cases {
        let (status, problem) = app.post(path, Some(&customer), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let (status, problem) = app
        .post(
            "/auth/register",
            None,
            &json!({"username": "", "password": "12345678", "displayName": "x"}),
        )
        .await;
    assert_eq!(
        (status, &problem["field"]),
        (StatusCode::BAD_REQUEST, &json!("username")),
        "{problem}"
    );
    let (status, problem) = app
        .post(
            "/products",
            Some(&admin),
            &json!({"sku": "A-1", "name": "Mug", "price": "0", "stock": 1}),
        )
        .await;
    assert_eq!(
        (status, &problem["field"]),
        (StatusCode::BAD_REQUEST, &json!("price")),
        "{problem}"
    );
}
