//! Logins, tokens, roles and the configured administrator.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_get_the_same_answer_in_similar_time() {
    let app = support::start().await;
    app.register("henry").await;
    let attempt = |username: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            let answer = app
                .post(
                    "/auth/login",
                    None,
                    &json!({"username": username, "password": password}),
                )
                .await;
            (answer, started.elapsed())
        }
    };
    // Warm up, then take the median of a few tries of each.
    attempt("henry", "wrong-password").await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        let ((status, body), took) = attempt("henry", "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        wrong.push((body, took));
        let ((status, body), took) = attempt("nobody-here", "wrong-password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        unknown.push((body, took));
    }
    assert_eq!(wrong[0].0, unknown[0].0, "the same body for both");
    let median = |samples: &mut Vec<(serde_json::Value, Duration)>| {
        samples.sort_by_key(|(_, took)| *took);
        samples[samples.len() / 2].1
    };
    let (wrong, unknown) = (median(&mut wrong), median(&mut unknown));
    let ratio = wrong.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "wrong password took {wrong:?}, unknown user {unknown:?}"
    );
    let ((status, _), _) = attempt("not a username!", "x").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an impossible username is just unknown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_carry_the_role_and_verify_with_the_published_key() {
    let app = support::start().await;
    let token = app.customer("irene").await;
    let (status, jwks) = support::respond(app.http.get(app.url("/.well-known/jwks.json"))).await;
    assert_eq!(status, StatusCode::OK);
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["shop"]);
    validation.set_issuer(&["shop"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["role"], "customer");
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    let admin = app.admin().await;
    let claims = jsonwebtoken::decode::<serde_json::Value>(&admin, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["role"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_401_and_customers_get_403_on_the_catalog() {
    let app = support::start().await;
    let customer = app.customer("jack").await;
    let product = json!({"sku": "X-1", "name": "X", "price": "1.00", "stock": 1});
    for token in [None, Some("garbage"), Some("a.b.c")] {
        let (status, body) = app.post("/products", token, &product).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert_eq!(body["status"], 401);
    }
    let (status, body) = app.post("/products", Some(&customer), &product).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let response = app.http.post(app.url("/orders")).json(&product).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_admin_exists_after_each_start_with_the_configured_password() {
    let folder = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = support::start_on(std::sync::Arc::clone(&folder), support::config()).await;
    app.admin().await;
    app.stop().await;
    // Restart with a new password for the same admin: it takes effect.
    let mut config = support::config();
    config.admin = Some((support::ADMIN.0.to_owned(), "a-new-password".to_owned()));
    let app = support::start_on(std::sync::Arc::clone(&folder), config).await;
    app.login(support::ADMIN.0, "a-new-password").await;
    let (status, _) = app
        .post(
            "/auth/login",
            None,
            &json!({"username": support::ADMIN.0, "password": support::ADMIN.1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password no longer works");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_admin_nobody_is_admin() {
    let mut config = support::config();
    config.admin = None;
    let app = support::start_with(config).await;
    for password in ["admin", "password", "admin-password-1"] {
        let (status, _) = app
            .post("/auth/login", None, &json!({"username": "admin", "password": password}))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_customer_becomes_admin() {
    let folder = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let mut config = support::config();
    config.admin = None;
    let app = support::start_on(std::sync::Arc::clone(&folder), config).await;
    app.register("kate").await;
    app.stop().await;
    let mut config = support::config();
    config.admin = Some(("kate".to_owned(), "password-123".to_owned()));
    let app = support::start_on(folder, config).await;
    let token = app.login("kate", "password-123").await;
    let (status, body) = app
        .post(
            "/products",
            Some(&token),
            &json!({"sku": "K-1", "name": "K", "price": "1.00", "stock": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.stop().await;
}
