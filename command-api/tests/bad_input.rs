//! Bad input, for every field's bounds: a 4xx problem+json naming the field,
//! and nothing appended.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    path: String,
    body: Body,
    status: StatusCode,
    /// The field the problem must name, when it is about one field.
    field: Option<&'static str>,
}

enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

fn case(name: &'static str, path: &str, body: Value, status: StatusCode, field: Option<&'static str>) -> Case {
    Case {
        name,
        path: path.to_owned(),
        body: Body::Json(body),
        status,
        field,
    }
}

fn order_with(change: impl FnOnce(&mut Value), product: &str) -> Value {
    let mut body = support::order_body(&[(product, 1)]);
    change(&mut body);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_problem_naming_the_field_and_appends_nothing() {
    let app = support::start().await;
    let admin = app.admin().await;
    let customer = app.customer("frank").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let before = app.events().await.len();
    let bad = StatusCode::BAD_REQUEST;
    let register = |username: &str, password: &str, display: &str| json!({"username": username, "password": password, "displayName": display});
    let product = |sku: &str, name: &str, price: Value, stock: Value| json!({"sku": sku, "name": name, "price": price, "stock": stock});
    let many: Vec<Value> = (0..51).map(|_| json!({"productId": mug, "quantity": 1})).collect();

    let admin_cases = vec![
        case(
            "sku empty",
            "/products",
            product("", "Mug", json!("1.00"), json!(1)),
            bad,
            Some("sku"),
        ),
        case(
            "sku spaces",
            "/products",
            product("A B", "Mug", json!("1.00"), json!(1)),
            bad,
            Some("sku"),
        ),
        case(
            "sku long",
            "/products",
            product(&"A".repeat(65), "Mug", json!("1.00"), json!(1)),
            bad,
            Some("sku"),
        ),
        case(
            "name blank",
            "/products",
            product("X-1", " ", json!("1.00"), json!(1)),
            bad,
            Some("name"),
        ),
        case(
            "name long",
            "/products",
            product("X-1", &"n".repeat(201), json!("1.00"), json!(1)),
            bad,
            Some("name"),
        ),
        case(
            "price zero",
            "/products",
            product("X-1", "Mug", json!("0.00"), json!(1)),
            bad,
            Some("price"),
        ),
        case(
            "price negative",
            "/products",
            product("X-1", "Mug", json!("-1.00"), json!(1)),
            bad,
            Some("price"),
        ),
        case(
            "price three decimals",
            "/products",
            product("X-1", "Mug", json!("1.005"), json!(1)),
            bad,
            Some("price"),
        ),
        case(
            "price a float",
            "/products",
            product("X-1", "Mug", json!(1.5), json!(1)),
            bad,
            Some("price"),
        ),
        case(
            "stock negative",
            "/products",
            product("X-1", "Mug", json!("1.00"), json!(-1)),
            bad,
            Some("stock"),
        ),
        case(
            "stock huge",
            "/products",
            product("X-1", "Mug", json!("1.00"), json!(10_000_000_000i64)),
            bad,
            Some("stock"),
        ),
        case(
            "sku missing",
            "/products",
            json!({"name": "Mug", "price": "1.00", "stock": 1}),
            bad,
            Some("sku"),
        ),
        case(
            "restock zero",
            &format!("/products/{mug}/restock"),
            json!({"quantity": 0}),
            bad,
            Some("quantity"),
        ),
        case(
            "restock negative",
            &format!("/products/{mug}/restock"),
            json!({"quantity": -3}),
            bad,
            Some("quantity"),
        ),
        case(
            "reprice bad",
            &format!("/products/{mug}/price"),
            json!({"price": "abc"}),
            bad,
            Some("price"),
        ),
        case(
            "rename blank",
            &format!("/products/{mug}/name"),
            json!({"name": ""}),
            bad,
            Some("name"),
        ),
        case(
            "malformed product id",
            "/products/not-a-uuid/restock",
            json!({"quantity": 1}),
            bad,
            Some("id"),
        ),
        case(
            "unknown product",
            &format!("/products/{}/restock", uuid::Uuid::new_v4()),
            json!({"quantity": 1}),
            StatusCode::NOT_FOUND,
            None,
        ),
        case(
            "duplicate sku",
            "/products",
            product("mug-1", "Mug", json!("1.00"), json!(1)),
            StatusCode::CONFLICT,
            None,
        ),
    ];
    let customer_cases = vec![
        case(
            "no items",
            "/orders",
            order_with(|b| b["items"] = json!([]), &mug),
            bad,
            Some("items"),
        ),
        case(
            "too many lines",
            "/orders",
            order_with(|b| b["items"] = json!(many), &mug),
            bad,
            Some("items"),
        ),
        case(
            "zero quantity",
            "/orders",
            order_with(|b| b["items"][0]["quantity"] = json!(0), &mug),
            bad,
            Some("items[0].quantity"),
        ),
        case(
            "negative quantity",
            "/orders",
            order_with(|b| b["items"][0]["quantity"] = json!(-2), &mug),
            bad,
            Some("items[0].quantity"),
        ),
        case(
            "quantity over 1000",
            "/orders",
            order_with(|b| b["items"][0]["quantity"] = json!(1001), &mug),
            bad,
            Some("items[0].quantity"),
        ),
        case(
            "malformed product id",
            "/orders",
            order_with(|b| b["items"][0]["productId"] = json!("nope"), &mug),
            bad,
            Some("items[0].productId"),
        ),
        case(
            "phone missing",
            "/orders",
            order_with(|b| b["customer"]["phone"] = json!("12"), &mug),
            bad,
            Some("customer.phone"),
        ),
        case(
            "email malformed",
            "/orders",
            order_with(|b| b["customer"]["email"] = json!("not-an-email"), &mug),
            bad,
            Some("customer.email"),
        ),
        case(
            "city blank",
            "/orders",
            order_with(|b| b["shipping"]["city"] = json!(" "), &mug),
            bad,
            Some("shipping.city"),
        ),
        case(
            "postal code bad",
            "/orders",
            order_with(|b| b["shipping"]["postalCode"] = json!("!!"), &mug),
            bad,
            Some("shipping.postalCode"),
        ),
        case(
            "shipping missing",
            "/orders",
            order_with(
                |b| {
                    b.as_object_mut().unwrap().remove("shipping");
                },
                &mug,
            ),
            bad,
            Some("shipping"),
        ),
        case(
            "cancel reason blank",
            &format!("/orders/{}/cancel", uuid::Uuid::new_v4()),
            json!({"reason": ""}),
            bad,
            Some("reason"),
        ),
        case(
            "cancel malformed id",
            "/orders/42/cancel",
            json!({"reason": "x"}),
            bad,
            Some("id"),
        ),
        case(
            "customer manages catalog",
            "/products",
            product("X-1", "Mug", json!("1.00"), json!(1)),
            StatusCode::FORBIDDEN,
            None,
        ),
    ];
    let anonymous_cases = vec![
        case(
            "username short",
            "/auth/register",
            register("ab", "password-1", "A"),
            bad,
            Some("username"),
        ),
        case(
            "username long",
            "/auth/register",
            register(&"a".repeat(33), "password-1", "A"),
            bad,
            Some("username"),
        ),
        case(
            "username chars",
            "/auth/register",
            register("al ice", "password-1", "A"),
            bad,
            Some("username"),
        ),
        case(
            "password short",
            "/auth/register",
            register("george", "short", "G"),
            bad,
            Some("password"),
        ),
        case(
            "password long",
            "/auth/register",
            register("george", &"p".repeat(129), "G"),
            bad,
            Some("password"),
        ),
        case(
            "display name blank",
            "/auth/register",
            register("george", "password-1", "  "),
            bad,
            Some("displayName"),
        ),
        case(
            "display name long",
            "/auth/register",
            register("george", "password-1", &"d".repeat(65)),
            bad,
            Some("displayName"),
        ),
        case(
            "password missing",
            "/auth/register",
            json!({"username": "george", "displayName": "G"}),
            bad,
            Some("password"),
        ),
        case(
            "username a number",
            "/auth/register",
            json!({"username": 5, "password": "password-1", "displayName": "G"}),
            bad,
            Some("username"),
        ),
        case(
            "order without token",
            "/orders",
            support::order_body(&[(&mug, 1)]),
            StatusCode::UNAUTHORIZED,
            None,
        ),
        case(
            "product without token",
            "/products",
            product("X-1", "Mug", json!("1.00"), json!(1)),
            StatusCode::UNAUTHORIZED,
            None,
        ),
        Case {
            name: "malformed json",
            path: "/auth/register".to_owned(),
            body: Body::Raw("application/json", b"{\"username\": ".to_vec()),
            status: bad,
            field: None,
        },
        Case {
            name: "wrong content type",
            path: "/auth/register".to_owned(),
            body: Body::Raw("text/plain", b"username=x".to_vec()),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            field: None,
        },
        Case {
            name: "oversized body",
            path: "/auth/register".to_owned(),
            body: Body::Raw(
                "application/json",
                format!("{{\"username\": \"{}\"}}", "x".repeat(100_000)).into_bytes(),
            ),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            field: None,
        },
        Case {
            name: "a json array",
            path: "/auth/register".to_owned(),
            body: Body::Raw("application/json", b"[]".to_vec()),
            status: bad,
            field: None,
        },
    ];
    let groups = [
        (Some(admin.as_str()), admin_cases),
        (Some(customer.as_str()), customer_cases),
        (None, anonymous_cases),
    ];
    let mut failures = Vec::new();
    for (token, cases) in groups {
        for case in cases {
            let mut request = app.http.post(app.url(&case.path));
            if case.path.ends_with("/price") || case.path.ends_with("/name") {
                request = app.http.put(app.url(&case.path));
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request = match &case.body {
                Body::Json(value) => request.json(value),
                Body::Raw(content_type, bytes) => request.header("content-type", *content_type).body(bytes.clone()),
            };
            let response = request.send().await.unwrap();
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let field_ok = case.field.is_none_or(|field| body["field"] == field);
            if status != case.status
                || !content_type.starts_with("application/problem+json")
                || !field_ok
                || body["status"] != status.as_u16()
            {
                failures.push(format!("{}: got {status} {content_type} {body}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(app.events().await.len(), before, "bad requests append nothing");
    app.stop().await;
}
