//! Account management over real listening servers, on SQLite views and on
//! Postgres views: changing one's password, logging out (one token or
//! everywhere), administrators changing roles and listing users.
//!
//! Every way of retiring a token is checked on all three services: the
//! command API refuses the token at once, the query API and the
//! projectors' admin API within the users projection's lag plus the
//! credential cache's TTL (`VERSION_CACHE_TTL`), as README documents.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use api_common::credentials::VERSION_CACHE_TTL;
use api_common::http_limits::HttpLimits;
use api_common::verifier::Verifier;
use domain::account::{Role, Username};
use domain::ids::UserId;
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::system::{Settings, System};
use test_support::{App, PATIENCE, tokens, wait_for};

/// How long the views may take to project a change, on top of the cache's
/// TTL, before the test calls the bound broken.
const LAG_ALLOWANCE: Duration = Duration::from_secs(5);

const SERVICES: [&str; 3] = ["command API", "query API", "projectors admin API"];

/// The system, plus the projectors' admin API over the same views.
struct Services {
    system: System,
    admin_api: String,
}

async fn start(views_url: &str) -> Services {
    let settings = Settings {
        signing_key: tokens::server_key(),
        order_wait: Some(PATIENCE),
        read_wait: PATIENCE,
    };
    let system = test_support::system::start_with(views_url, settings).await;
    let projectors = projectors::admin::Projectors {
        store: Arc::clone(&system.app.store),
        db: views::connect(views_url, 4).await.unwrap(),
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
    Services {
        admin_api: format!("http://{}", api.address),
        system,
    }
}

fn user_id(username: &str) -> String {
    UserId::for_username(&Username::parse(username).unwrap()).to_string()
}

impl Services {
    fn app(&self) -> &App {
        &self.system.app
    }

    /// `token`'s request to each service, harmless whatever its role: a
    /// restock of no product (admin 404, customer 403), the profile, a
    /// replay of no projection (admin 404, customer 403).
    async fn ask_all(&self, token: &str) -> [reqwest::Response; 3] {
        let http = &self.app().http;
        let command = http
            .post(self.app().url(&format!("/products/{}/restock", uuid::Uuid::nil())))
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

    /// Which services refuse `token` (401 problem+json with the Bearer
    /// challenge).
    async fn refusing(&self, token: &str) -> Vec<&'static str> {
        let mut refusing = Vec::new();
        for (service, response) in SERVICES.into_iter().zip(self.ask_all(token).await) {
            if tokens::refused(response).await.is_ok() {
                refusing.push(service);
            }
        }
        refusing
    }

    /// Polls until every service accepts `token` and the query API shows
    /// its profile, so its verifier has cached the token's standing.
    async fn accepted_everywhere(&self, token: &str) {
        wait_for("the token accepted by all three services", || async {
            let statuses = self.ask_all(token).await.map(|response| response.status().as_u16());
            if statuses[1] == 200 && !statuses.contains(&401) {
                Ok(())
            } else {
                Err(format!("command, query, admin answered {statuses:?}"))
            }
        })
        .await;
    }

    /// The command API refuses `token` at once; all three within the
    /// bound after `changed`.
    async fn refused_everywhere_within_the_bound(&self, token: &str, changed: Instant) {
        assert_eq!(
            self.refusing(token).await.first(),
            Some(&"command API"),
            "the command API refuses at once"
        );
        let bound = VERSION_CACHE_TTL + LAG_ALLOWANCE;
        loop {
            let refusing = self.refusing(token).await;
            if refusing == SERVICES {
                break;
            }
            assert!(changed.elapsed() < bound, "after {bound:?} only {refusing:?} refuse");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("refused everywhere {:?} after the change", changed.elapsed());
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.app().post(path, token, &body).await
    }

    async fn change_password(&self, token: &str, current: &str, new: &str) -> (StatusCode, Value) {
        let body = json!({"currentPassword": current, "newPassword": new});
        self.post("/me/password", Some(token), body).await
    }

    async fn set_role(&self, token: &str, user: &str, role: &str) -> (StatusCode, Value) {
        let path = format!("/users/{user}/role");
        self.app().put(&path, Some(token), &json!({ "role": role })).await
    }
}

/// A problem of `status` naming `field` (or none).
fn assert_problem(answer: &(StatusCode, Value), status: u16, field: Option<&str>, case: &str) {
    let (got, body) = answer;
    assert_eq!(got.as_u16(), status, "{case}: {body}");
    assert_eq!(body["status"], status, "{case}: a problem body: {body}");
    assert_eq!(body["field"].as_str(), field, "{case}: {body}");
}

/// The role `token` carries, verified with the command API's key.
fn role_of(app: &App, token: &str) -> Role {
    let verifier = Verifier::from_pem(app.public_key_pem(), "shop".to_owned(), "shop".to_owned()).unwrap();
    verifier.verify(token).unwrap().role
}

async fn a_password_change_retires_earlier_tokens_everywhere_and_its_new_token_works(views_url: &str) {
    let services = start(views_url).await;
    let (before, _) = services.system.customer("carol").await;
    services.accepted_everywhere(&before).await;

    let answer = services
        .change_password(&before, App::CUSTOMER_PASSWORD, "carols-new-password")
        .await;
    let changed = Instant::now();
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    services.refused_everywhere_within_the_bound(&before, changed).await;

    let handed_out = answer.1["accessToken"].as_str().unwrap();
    services.accepted_everywhere(handed_out).await;
    let logged_in = services.system.login("carol", "carols-new-password").await;
    services.accepted_everywhere(&logged_in).await;
    let old_password = json!({"username": "carol", "password": App::CUSTOMER_PASSWORD});
    assert_problem(
        &services.post("/auth/login", None, old_password).await,
        401,
        None,
        "the old password",
    );
}

async fn password_change_refusals_name_their_field(views_url: &str) {
    let services = start(views_url).await;
    let (dora, _) = services.system.customer("dora").await;
    let (token, current) = (Some(dora.as_str()), App::CUSTOMER_PASSWORD);
    let cases = [
        (
            "no token",
            None,
            json!({"currentPassword": current, "newPassword": "another-password"}),
            401,
            None,
        ),
        (
            "a wrong current password",
            token,
            json!({"currentPassword": "not-the-password", "newPassword": "another-password"}),
            422,
            Some("currentPassword"),
        ),
        (
            "the same password",
            token,
            json!({"currentPassword": current, "newPassword": current}),
            422,
            Some("newPassword"),
        ),
        (
            "a new password too short",
            token,
            json!({"currentPassword": current, "newPassword": "short"}),
            400,
            Some("newPassword"),
        ),
        (
            "no current password",
            token,
            json!({"newPassword": "another-password"}),
            400,
            Some("currentPassword"),
        ),
        (
            "a new password that is no string",
            token,
            json!({"currentPassword": current, "newPassword": 12_345_678}),
            400,
            Some("newPassword"),
        ),
    ];
    for (case, token, body, status, field) in cases {
        assert_problem(&services.post("/me/password", token, body).await, status, field, case);
    }
    services.accepted_everywhere(&dora).await;
}

/// Wrong current passwords spend the username's login budget (5 at once by
/// default): past it even the right password is answered 429, before it is
/// checked, and so is a login.
async fn wrong_current_passwords_are_throttled_like_logins(views_url: &str) {
    let services = start(views_url).await;
    let (token, _) = services.system.customer("eve").await;
    let mut wrong = 0;
    let throttled = loop {
        let answer = services
            .change_password(&token, "not-the-password", "another-password")
            .await;
        if answer.0 == StatusCode::TOO_MANY_REQUESTS {
            break answer;
        }
        assert_problem(&answer, 422, Some("currentPassword"), "a wrong password");
        wrong += 1;
        assert!(wrong <= 5, "still not throttled after {wrong} wrong passwords");
    };
    assert_eq!(throttled.1["status"], 429, "{}", throttled.1);
    let right = services
        .change_password(&token, App::CUSTOMER_PASSWORD, "another-password")
        .await;
    assert_eq!(right.0, StatusCode::TOO_MANY_REQUESTS, "{}", right.1);
    let login = json!({"username": "eve", "password": App::CUSTOMER_PASSWORD});
    assert_eq!(
        services.post("/auth/login", None, login).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn a_logout_retires_the_token_presented_and_everywhere_every_token(views_url: &str) {
    let services = start(views_url).await;
    let (first, _) = services.system.customer("finn").await;
    let second = services.system.login("finn", App::CUSTOMER_PASSWORD).await;
    services.accepted_everywhere(&first).await;
    services.accepted_everywhere(&second).await;
    let bad = services
        .post("/auth/logout", Some(&first), json!({"everywhere": "yes"}))
        .await;
    assert_problem(&bad, 400, Some("everywhere"), "everywhere not a boolean");
    assert_problem(
        &services.post("/auth/logout", None, json!({})).await,
        401,
        None,
        "no token",
    );

    let (status, body) = services.post("/auth/logout", Some(&first), json!({})).await;
    let logged_out = Instant::now();
    assert_eq!(status, StatusCode::OK, "{body}");
    services.refused_everywhere_within_the_bound(&first, logged_out).await;
    services.accepted_everywhere(&second).await;

    let (status, body) = services
        .post("/auth/logout", Some(&second), json!({"everywhere": true}))
        .await;
    let logged_out = Instant::now();
    assert_eq!(status, StatusCode::OK, "{body}");
    services.refused_everywhere_within_the_bound(&second, logged_out).await;
    let third = services.system.login("finn", App::CUSTOMER_PASSWORD).await;
    services.accepted_everywhere(&third).await;
}

async fn an_admin_changes_a_role_and_earlier_tokens_lose_the_old_one(views_url: &str) {
    let services = start(views_url).await;
    let admin = services.app().admin().await;
    let (customer, _) = services.system.customer("gina").await;
    let (gina, root) = (user_id("gina"), user_id(App::ADMIN.0));
    assert_problem(
        &services.set_role(&customer, &root, "customer").await,
        403,
        None,
        "a customer",
    );
    services.accepted_everywhere(&customer).await;

    let (status, changed) = services.set_role(&admin, &gina, "admin").await;
    let promoted = Instant::now();
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (changed["userId"].as_str(), changed["role"].as_str()),
        (Some(gina.as_str()), Some("admin"))
    );
    services.refused_everywhere_within_the_bound(&customer, promoted).await;
    let stream = event_store::StreamName::new(format!("account-{gina}")).unwrap();
    let last = services.app().store.read_last(&stream).await.unwrap().unwrap();
    assert_eq!(last.event_type, "AccountRoleChanged");
    assert_eq!(
        last.metadata.user_id.map(|id| id.to_string()),
        Some(root.clone()),
        "the acting admin is recorded"
    );

    let new_admin = services.system.login("gina", App::CUSTOMER_PASSWORD).await;
    assert_eq!(role_of(services.app(), &new_admin), Role::Admin);
    services.accepted_everywhere(&new_admin).await;
    let self_demotion = services.set_role(&admin, &root, "customer").await;
    assert_problem(&self_demotion, 409, None, "self-demotion");
    assert_eq!(self_demotion.1["type"], "/problems/self-demotion");

    let (status, body) = services.set_role(&new_admin, &root, "customer").await;
    assert_eq!(status, StatusCode::OK, "another admin demotes the first: {body}");
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases = [
        ("an unknown user", unknown.as_str(), json!({"role": "admin"}), 404, None),
        (
            "a malformed id",
            "not-a-uuid",
            json!({"role": "admin"}),
            400,
            Some("id"),
        ),
        (
            "an unknown role",
            gina.as_str(),
            json!({"role": "owner"}),
            400,
            Some("role"),
        ),
    ];
    for (case, user, body, status, field) in cases {
        let answer = services
            .app()
            .put(&format!("/users/{user}/role"), Some(&new_admin), &body)
            .await;
        assert_problem(&answer, status, field, case);
    }
}

/// Two administrators demoting each other at the same moment: the roster
/// decides one after the other, so exactly one succeeds and one
/// administrator remains.
async fn two_administrators_demoting_each_other_at_once_leave_one(views_url: &str) {
    let services = start(views_url).await;
    let admin = services.app().admin().await;
    services.system.customer("hank").await;
    let (hank, root) = (user_id("hank"), user_id(App::ADMIN.0));
    assert_eq!(services.set_role(&admin, &hank, "admin").await.0, StatusCode::OK);
    let hanks = services.system.login("hank", App::CUSTOMER_PASSWORD).await;

    let (first, second) = tokio::join!(
        services.set_role(&admin, &hank, "customer"),
        services.set_role(&hanks, &root, "customer"),
    );
    let mut statuses = [first.0.as_u16(), second.0.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses[0], 200, "{first:?} {second:?}");
    assert!(matches!(statuses[1], 401 | 409), "{first:?} {second:?}");
    let roles = [
        role_of(services.app(), &services.app().admin().await),
        role_of(
            services.app(),
            &services.system.login("hank", App::CUSTOMER_PASSWORD).await,
        ),
    ];
    assert_eq!(
        roles.iter().filter(|role| **role == Role::Admin).count(),
        1,
        "one administrator remains: {roles:?}"
    );
}

/// `GET /users?{query}` at `position` with `token`.
async fn list(services: &Services, token: &str, position: &str, query: &str) -> (StatusCode, Value) {
    let path = format!("/users?minPosition={position}&{query}");
    services.system.query(&path, Some(token)).await
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn admins_list_users_by_page_role_and_name(views_url: &str) {
    let services = start(views_url).await;
    let admin = services.app().admin().await;
    let mut at = String::new();
    for name in ["ivy", "ian", "jack", "jill"] {
        at = services.system.customer(name).await.1;
    }
    let (status, first) = list(&services, &admin, &at, "limit=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(names(&first), ["admin", "ian"]);
    let item = &first["items"][1];
    assert_eq!(
        (item["role"].as_str(), item["displayName"].as_str()),
        (Some("customer"), Some("ian"))
    );
    assert!(item["registeredAt"].as_str().is_some(), "{item}");
    let cursor = format!("limit=2&cursor={}", first["nextCursor"].as_str().unwrap());
    let (_, second) = list(&services, &admin, &at, &cursor).await;
    assert_eq!(names(&second), ["ivy", "jack"]);
    let cursor = format!("limit=2&cursor={}", second["nextCursor"].as_str().unwrap());
    let (_, last) = list(&services, &admin, &at, &cursor).await;
    assert_eq!((names(&last), last.get("nextCursor")), (vec!["jill".to_owned()], None));

    assert_eq!(names(&list(&services, &admin, &at, "role=admin").await.1), ["admin"]);
    assert_eq!(
        names(&list(&services, &admin, &at, "username=J").await.1),
        ["jack", "jill"]
    );
    assert_eq!(
        names(&list(&services, &admin, &at, "role=customer&username=ia").await.1),
        ["ian"]
    );
    services.system.customer("ma_x").await;
    let at = services.system.customer("maax").await.1;
    assert_eq!(
        names(&list(&services, &admin, &at, "username=a_x").await.1),
        ["ma_x"],
        "`_` is no wildcard"
    );

    let (customer, _) = services.system.customer("kim").await;
    assert_problem(&list(&services, &customer, &at, "").await, 403, None, "a customer");
    for (query, field) in [
        ("role=owner", "role"),
        ("limit=0", "limit"),
        ("username=a%25", "username"),
    ] {
        let (status, body) = list(&services, &admin, &at, query).await;
        assert_eq!(status.as_u16(), 400, "{query}: {body}");
        let named = body["field"] == field || body["detail"].as_str().unwrap_or_default().contains(field);
        assert!(named, "{query}: the problem names {field}: {body}");
    }
}

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

on_both_databases!(
    a_password_change_retires_earlier_tokens_everywhere_and_its_new_token_works,
    password_change_refusals_name_their_field,
    wrong_current_passwords_are_throttled_like_logins,
    a_logout_retires_the_token_presented_and_everywhere_every_token,
    an_admin_changes_a_role_and_earlier_tokens_lose_the_old_one,
    two_administrators_demoting_each_other_at_once_leave_one,
    admins_list_users_by_page_role_and_name,
);
