//! Logins, tokens, roles and the configured administrator.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use test_support::{App, order_body, respond, tokens};

/// A refused login tells neither by its body nor by its time whether the
/// username exists: unknown users are checked against a dummy hash. The two
/// kinds of attempt alternate, each going first every other round, so load
/// on the machine hits both alike, and the fastest attempt of each kind is
/// compared: load only ever adds time, so the fastest is closest to what
/// the attempt itself costs. Without the dummy hash an unknown user's
/// refusal costs a small fraction of a wrong password's, far outside the
/// bound. Each username fails some thirty times, far past the login
/// budgets, so they are turned off here (a refill of zero).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_get_the_same_answer_in_similar_time() {
    const ROUNDS: usize = 15;
    let mut config = App::config();
    config.throttle.login_per_username.refill = Duration::ZERO;
    config.throttle.login_per_address.refill = Duration::ZERO;
    let app = App::start_with(config).await;
    app.register("henry").await;
    let attempt = async |username: &str| {
        let started = Instant::now();
        let (status, body) = app
            .post(
                "/auth/login",
                None,
                &json!({"username": username, "password": "wrong-password"}),
            )
            .await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{username}: {body}");
        (body, took)
    };
    let (expected_body, _) = attempt("henry").await;
    attempt("nobody-here").await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..ROUNDS {
        for username in if round % 2 == 0 {
            ["henry", "nobody-here"]
        } else {
            ["nobody-here", "henry"]
        } {
            let (body, took) = attempt(username).await;
            assert_eq!(body, expected_body, "{username}: the same body for both");
            if username == "henry" {
                wrong.push(took);
            } else {
                unknown.push(took);
            }
        }
    }
    let fastest = |samples: &[Duration]| samples.iter().min().copied().unwrap();
    let (wrong_fastest, unknown_fastest) = (fastest(&wrong), fastest(&unknown));
    let ratio = wrong_fastest.as_secs_f64() / unknown_fastest.as_secs_f64();
    assert!(
        (1.0 / 3.0..3.0).contains(&ratio),
        "fastest wrong password {wrong_fastest:?}, fastest unknown user {unknown_fastest:?} \
         (all: wrong password {wrong:?}, unknown user {unknown:?})"
    );
    let (status, _) = app
        .post(
            "/auth/login",
            None,
            &json!({"username": "not a username!", "password": "x"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an impossible username is just unknown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_carry_the_role_and_verify_with_the_published_key() {
    let app = App::start().await;
    let token = app.customer("irene").await;
    let (status, jwks) = respond(app.http.get(app.url("/.well-known/jwks.json"))).await;
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
    let app = App::start().await;
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

/// Tokens the server did not sign, signed with another algorithm, or
/// expired, are refused over HTTP on a customer's and on an admin's
/// operations, and nothing is appended. Each carries the claims of a token
/// the server issued, and the same claims signed right are then accepted on
/// the same requests: what is refused is the one thing wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_foreign_key_and_hs256_tokens_get_401_and_append_nothing() {
    let mut config = App::config();
    config.signing_key = tokens::server_key();
    let app = App::start_with(config).await;
    let admin = tokens::mint(&app.admin().await);
    let customer = tokens::mint(&app.customer("olga").await);
    let mug = app.product(&admin.control, "MUG-1", "12.50", 10).await;
    let requests = [
        (&customer, "/orders".to_owned(), order_body(&[(&mug, 1)])),
        (
            &admin,
            "/products".to_owned(),
            json!({"sku": "PEN-1", "name": "Pen", "price": "1.00", "stock": 5}),
        ),
        (&admin, format!("/products/{mug}/restock"), json!({"quantity": 3})),
    ];
    let before = app.decisions().await.len();
    let mut failures = Vec::new();
    for (minted, path, body) in &requests {
        for forged in &minted.forged {
            let response = app
                .http
                .post(app.url(path))
                .bearer_auth(&forged.token)
                .json(body)
                .send()
                .await
                .unwrap();
            if let Err(answer) = tokens::refused(response).await {
                failures.push(format!("POST {path} with a token {}: {answer}", forged.what));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(app.decisions().await.len(), before, "refused requests append nothing");
    for (minted, path, body) in &requests {
        let (status, answer) = app.post(path, Some(&minted.control), body).await;
        assert!(
            status.is_success(),
            "POST {path} with the control token: {status} {answer}"
        );
    }
    assert_eq!(app.available(&mug).await, 12, "the controls restocked 3 and ordered 1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_admin_exists_after_each_start_with_the_configured_password() {
    let folder = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = App::start_on(std::sync::Arc::clone(&folder), App::config()).await;
    app.admin().await;
    app.stop().await;
    // Restart with a new password for the same admin: it takes effect.
    let mut config = App::config();
    config.admin = Some((App::ADMIN.0.to_owned(), "a-new-password".to_owned()));
    let app = App::start_on(std::sync::Arc::clone(&folder), config).await;
    app.login(App::ADMIN.0, "a-new-password").await;
    let (status, _) = app
        .post(
            "/auth/login",
            None,
            &json!({"username": App::ADMIN.0, "password": App::ADMIN.1}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password no longer works");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configured_admin_nobody_is_admin() {
    let mut config = App::config();
    config.admin = None;
    let app = App::start_with(config).await;
    for password in ["admin", "password", App::ADMIN.1] {
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
    let mut config = App::config();
    config.admin = None;
    let app = App::start_on(std::sync::Arc::clone(&folder), config).await;
    app.register("kate").await;
    app.stop().await;
    let mut config = App::config();
    config.admin = Some(("kate".to_owned(), "password-123".to_owned()));
    let app = App::start_on(folder, config).await;
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
