//! Access tokens across the three services, over real listening servers:
//! the command API, the query API and the projectors' admin API, the last
//! two over views the projections keep up to date.
//!
//! A token issued before its account's password changed is refused by all
//! three within the documented bound (at once by the command API, within
//! the projection lag plus the version cache's TTL by the others); a token
//! naming no key, an unknown key, or living too long is refused; a rotated
//! out key's token verifies while the key is listed as previous, and no
//! longer once it is dropped.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_common::config::Env;
use api_common::credentials::VERSION_CACHE_TTL;
use api_common::http_limits::HttpLimits;
use api_common::verifier::{PublicKey, Verifier};
use command_api::aggregates::{Aggregates, Causation};
use command_api::auth::argon2id::Hasher;
use command_api::auth::tokens::SigningKey;
use domain::account::{Account, AccountCommand, Password, Username};
use domain::ids::UserId;
use serde_json::{Value, json};
use test_support::system::{Settings, System};
use test_support::{App, respond, tokens};

/// How long the views may take to project a password change, on top of
/// the cache's TTL, before the test calls the bound broken.
const LAG_ALLOWANCE: Duration = Duration::from_secs(5);

/// The system signing with the key the tests can sign with, plus the
/// projectors' admin API over the same views.
struct Services {
    system: System,
    admin_api: String,
    _views: tempfile::TempDir,
}

impl Services {
    async fn start() -> Self {
        let (url, views) = test_support::sqlite_views();
        let settings = Settings {
            signing_key: tokens::server_key(),
            ..Settings::default()
        };
        let system = test_support::system::start_with(&url, settings).await;
        let projectors = projectors::admin::Projectors {
            store: Arc::clone(&system.app.store),
            db: views::connect(&url, 4).await.unwrap(),
            operations: Default::default(),
            instance: Default::default(),
        };
        let verifier = Verifier::from_pem(system.app.public_key_pem(), "shop".to_owned(), "shop".to_owned()).unwrap();
        let listen = ([127, 0, 0, 1], 0).into();
        let api = projectors::admin::start(
            projectors,
            verifier,
            listen,
            HttpLimits::default(),
            system.app.shutdown(),
        )
        .await
        .unwrap();
        Self {
            admin_api: format!("http://{}", api.address),
            system,
            _views: views,
        }
    }

    /// An admin's request to each service: an authenticated command, an
    /// authenticated read, an admin-only operation, all harmless.
    async fn ask_all(&self, token: &str) -> [reqwest::Response; 3] {
        let http = &self.system.app.http;
        let command = http
            .post(self.system.app.url(&format!("/products/{}/restock", uuid::Uuid::nil())))
            .bearer_auth(token)
            .json(&json!({"quantity": 1}));
        let query = http.get(format!("{}/me", self.system.queries)).bearer_auth(token);
        let admin = http
            .post(format!("{}/projections/no-such-projection/replay", self.admin_api))
            .bearer_auth(token);
        [
            command.send().await.unwrap(),
            query.send().await.unwrap(),
            admin.send().await.unwrap(),
        ]
    }

    /// Polls until every service accepts `token` as an admin's: the
    /// command API finds no such product (404), the query API shows the
    /// profile once projected (200), the admin API knows no such projection.
    async fn accepted_everywhere(&self, token: &str) {
        self.answered_everywhere(token, [404, 200, 404]).await;
    }

    /// Polls until the services answer `token` with `expected`.
    async fn answered_everywhere(&self, token: &str, expected: [u16; 3]) {
        test_support::wait_for("the token accepted by all three services", || async {
            let statuses = self.ask_all(token).await.map(|response| response.status().as_u16());
            if statuses == expected {
                Ok(())
            } else {
                Err(format!("command, query, admin answered {statuses:?}"))
            }
        })
        .await;
    }
}

const SERVICES: [&str; 3] = ["command API", "query API", "projectors admin API"];

/// Which services refuse `token` as a bad token must be refused (401
/// problem+json with the Bearer challenge).
async fn refusing(services: &Services, token: &str) -> Vec<&'static str> {
    let mut refusing = Vec::new();
    for (service, response) in SERVICES.into_iter().zip(services.ask_all(token).await) {
        if tokens::refused(response).await.is_ok() {
            refusing.push(service);
        }
    }
    refusing
}

/// Runs `command` on `username`'s account as the command side does:
/// through the account aggregate, appending its event.
async fn change_account(app: &App, username: &str, command: impl Fn() -> AccountCommand) {
    let user_id = UserId::for_username(&Username::parse(username).unwrap());
    Aggregates::<Account>::new(Arc::clone(&app.store))
        .execute(user_id, Causation::request(uuid::Uuid::now_v7(), None), command)
        .await
        .unwrap();
}

/// Appends `AccountPasswordChanged` for `username`.
async fn change_password(app: &App, username: &str, password: &str) {
    let password_hash = Hasher::default().hash(&Password::parse(password).unwrap()).unwrap();
    change_account(app, username, || AccountCommand::ChangePassword {
        password_hash: password_hash.clone(),
        now: chrono::Utc::now(),
    })
    .await;
}

/// Polls until all three services refuse `token`, failing past the bound:
/// the projection lag allowance plus the version cache's TTL.
async fn refused_everywhere_within_the_bound(services: &Services, token: &str, changed: Instant) {
    let bound = VERSION_CACHE_TTL + LAG_ALLOWANCE;
    loop {
        let refusing = refusing(services, token).await;
        if refusing == SERVICES {
            break;
        }
        assert!(changed.elapsed() < bound, "after {bound:?} only {refusing:?} refuse");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "the earlier token was refused everywhere {:?} after the change",
        changed.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_refuses_earlier_tokens_on_all_three_services_within_the_bound() {
    let services = Services::start().await;
    let (admin, password) = App::ADMIN;
    let before = services.system.login(admin, password).await;
    // Accepted everywhere, so the query and admin APIs have cached the
    // version this token carries.
    services.accepted_everywhere(&before).await;

    change_password(&services.system.app, admin, "a-new-admin-password").await;
    let changed = Instant::now();
    assert_eq!(
        refusing(&services, &before).await.first(),
        Some(&"command API"),
        "the command API refuses at once"
    );
    refused_everywhere_within_the_bound(&services, &before, changed).await;

    let after = services.system.login(admin, "a-new-admin-password").await;
    services.accepted_everywhere(&after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_change_refuses_earlier_tokens_on_all_three_services_within_the_bound() {
    let services = Services::start().await;
    let (customer, _) = services.system.customer("carol").await;
    // A customer's token: forbidden the admin's operations, shown its profile.
    services.answered_everywhere(&customer, [403, 200, 403]).await;

    change_account(&services.system.app, "carol", || AccountCommand::ChangeRole {
        role: domain::account::Role::Admin,
        now: chrono::Utc::now(),
    })
    .await;
    let changed = Instant::now();
    assert_eq!(
        refusing(&services, &customer).await.first(),
        Some(&"command API"),
        "the command API refuses at once"
    );
    refused_everywhere_within_the_bound(&services, &customer, changed).await;

    let promoted = services.system.login("carol", App::CUSTOMER_PASSWORD).await;
    services.accepted_everywhere(&promoted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_naming_no_key_an_unknown_key_or_living_too_long_is_refused_everywhere() {
    let services = Services::start().await;
    let issued = services.system.app.admin().await;
    let kid = tokens::key_id(&issued).unwrap();
    assert_eq!(
        kid,
        tokens::server_key().public_key().id(),
        "the kid is the key's thumbprint"
    );
    let control = tokens::resigned(&issued, Some(&kid), 3600);
    services.accepted_everywhere(&control).await;
    let too_long = i64::try_from(api_common::verifier::MAX_TOKEN_LIFETIME.as_secs()).unwrap() + 1;
    for (what, token) in [
        ("no kid", tokens::resigned(&issued, None, 3600)),
        (
            "an unknown kid",
            tokens::resigned(&issued, Some("not-a-key-we-hold"), 3600),
        ),
        (
            "a lifetime past the maximum",
            tokens::resigned(&issued, Some(&kid), too_long),
        ),
    ] {
        assert_eq!(refusing(&services, &token).await, SERVICES, "{what}");
    }
}

/// The command API over the store in `folder`, signing with `key` and
/// still verifying `previous`.
async fn command_api(folder: &Arc<tempfile::TempDir>, key: &SigningKey, previous: &[&SigningKey]) -> App {
    let mut config = App::config();
    config.signing_key = key.clone();
    config.previous_keys = previous.iter().map(|key| key.public_key().clone()).collect();
    App::start_on(Arc::clone(folder), config).await
}

/// A query API configured as in production, from `JWT_PUBLIC_KEY` and
/// `JWT_PREVIOUS_PUBLIC_KEYS`, over empty views; its base URL.
async fn query_api(app: &App, views_url: &str, key: &SigningKey, previous: &[&SigningKey]) -> String {
    let previous: String = previous.iter().map(|key| key.public_key_pem()).collect();
    let current = key.public_key_pem();
    let mut env = vec![
        ("VIEWS_DATABASE_URL", views_url),
        ("QUERY_API_ADDR", "127.0.0.1:0"),
        ("JWT_PUBLIC_KEY", current.as_str()),
    ];
    if !previous.is_empty() {
        env.push(("JWT_PREVIOUS_PUBLIC_KEYS", previous.as_str()));
    }
    let config = query_api::config::Config::from_env(&Env::from_pairs(env), PublicKey::FromEnv).unwrap();
    let db = projectors::database::connect_and_migrate(views_url, 2).await.unwrap();
    let api = query_api::startup::start(db, config, app.shutdown()).await.unwrap();
    format!("http://{}", api.address)
}

/// `token`'s answer from the command API (an admin's harmless command) and
/// from the query API (the caller's orders).
async fn answers(app: &App, query_api: &str, token: &str) -> [(u16, Value); 2] {
    let command = app
        .http
        .post(app.url(&format!("/products/{}/restock", uuid::Uuid::nil())))
        .bearer_auth(token)
        .json(&json!({"quantity": 1}));
    let query = app.http.get(format!("{query_api}/me/orders")).bearer_auth(token);
    let (command, query) = (respond(command).await, respond(query).await);
    [(command.0.as_u16(), command.1), (query.0.as_u16(), query.1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_out_keys_tokens_verify_while_it_is_previous_and_stop_when_it_is_dropped() {
    let folder = Arc::new(tempfile::tempdir().unwrap());
    let (views_url, _views) = test_support::sqlite_views();
    let (old, new) = (tokens::server_key(), SigningKey::generate().unwrap());

    let app = command_api(&folder, &old, &[]).await;
    let issued_before = app.admin().await;
    app.stop().await;

    let app = command_api(&folder, &new, &[&old]).await;
    let queries = query_api(&app, &views_url, &new, &[&old]).await;
    let [(command, _), (query, _)] = answers(&app, &queries, &issued_before).await;
    assert_eq!((command, query), (404, 200), "the previous key still verifies");
    let issued_after = app.admin().await;
    assert_eq!(
        tokens::key_id(&issued_after).unwrap(),
        new.public_key().id(),
        "the new key signs"
    );
    let (status, jwks) = respond(app.http.get(app.url("/.well-known/jwks.json"))).await;
    assert_eq!(status.as_u16(), 200);
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(published, [new.public_key().id(), old.public_key().id()]);
    app.stop().await;

    let app = command_api(&folder, &new, &[]).await;
    let queries = query_api(&app, &views_url, &new, &[]).await;
    for (service, (status, body)) in ["command API", "query API"]
        .into_iter()
        .zip(answers(&app, &queries, &issued_before).await)
    {
        assert_eq!(status, 401, "{service}, once the old key is dropped: {body}");
    }
    let [(command, _), (query, _)] = answers(&app, &queries, &issued_after).await;
    assert_eq!((command, query), (404, 200), "the new key's tokens verify");
}
