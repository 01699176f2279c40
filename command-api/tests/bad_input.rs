//! Bad input, for every field's bounds: a 4xx problem+json naming the field,
//! and nothing appended.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::{App, order_body};

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
    let mut body = order_body(&[(product, 1)]);
    change(&mut body);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_problem_naming_the_field_and_appends_nothing() {
    let app = App::start().await;
    let admin = app.admin().await;
    let customer = app.customer("frank").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let before = app.decisions().await.len();
    let bad = StatusCode::BAD_REQUEST;
    let register = |username: &str, password: &str, display: &str| json!({"username": username, "password": password, "displayName": display});
    let product = |sku: &str, name: &str, price: Value, stock: Value| json!({"sku": sku, "name": name, "price": price, "stock": stock});

    let admin_cases = vec![
        case(
            "sku spaces",
            "/products",
            product("A B", "Mug", json!("1.00"), json!(1)),
            bad,
            Some("sku"),
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
            "logout everywhere null",
            "/auth/logout",
            json!({"everywhere": null}),
            bad,
            Some("everywhere"),
        ),
        case(
            "logout everywhere a string",
            "/auth/logout",
            json!({"everywhere": "yes"}),
            bad,
            Some("everywhere"),
        ),
        case(
            "negative quantity",
            "/orders",
            order_with(|b| b["items"][0]["quantity"] = json!(-2), &mug),
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
            "phone absent",
            "/orders",
            order_with(
                |b| {
                    b["customer"].as_object_mut().unwrap().remove("phone");
                },
                &mug,
            ),
            bad,
            Some("customer.phone"),
        ),
        case(
            "phone with letters",
            "/orders",
            order_with(|b| b["customer"]["phone"] = json!("081 CALL ME"), &mug),
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
            "username chars",
            "/auth/register",
            register("al ice", "password-1", "A"),
            bad,
            Some("username"),
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
            order_body(&[(&mug, 1)]),
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
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    failures.push(format!("{}: no answer: {error:?}", case.name));
                    continue;
                }
            };
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
    assert_eq!(app.decisions().await.len(), before, "bad requests append nothing");
    app.stop().await;
}

/// One bound of one field: the last value accepted and the first refused
/// past it, in otherwise identical requests.
struct Bound {
    name: String,
    path: String,
    /// The customer's or the admin's token; `None` for registrations.
    token: Option<String>,
    accepted: Value,
    refused: Value,
    /// The `Idempotency-Key` of the accepted and of the refused request.
    keys: Option<(String, String)>,
    field: &'static str,
}

/// Pairs of requests at a bound: `change` makes the accepted one from the
/// first value and the refused one from the second.
fn bound<V>(
    name: &str,
    path: &str,
    token: Option<&str>,
    field: &'static str,
    (accepted, refused): (V, V),
    change: impl Fn(V) -> Value,
) -> Bound {
    Bound {
        name: name.to_owned(),
        path: path.to_owned(),
        token: token.map(str::to_owned),
        accepted: change(accepted),
        refused: change(refused),
        keys: None,
        field,
    }
}

/// The bounds of a text field at both ends, `values` (accepted, refused)
/// at its shortest and at its longest, in requests `body` makes from the
/// end and the value.
fn ends(
    path: &str,
    token: Option<&str>,
    field: &'static str,
    [shortest, longest]: [(String, String); 2],
    body: impl Fn(&str, String) -> Value,
) -> [Bound; 2] {
    [("shortest", shortest), ("longest", longest)].map(|(end, values)| {
        bound(&format!("{field}, {end}"), path, token, field, values, |value| {
            body(end, value)
        })
    })
}

async fn send(app: &App, bound: &Bound, body: &Value, key: Option<&String>) -> (StatusCode, String, Value) {
    let url = app.url(&bound.path);
    let mut request = if bound.path.ends_with("/price") || bound.path.ends_with("/name") {
        app.http.put(url)
    } else {
        app.http.post(url)
    };
    if let Some(token) = &bound.token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.json(body).send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

/// For every bounded field, the value at each bound is accepted and the
/// value just past it is refused with a problem naming the field: the bounds
/// are where the API documents them, not merely somewhere. The refused
/// requests go first, each checked to append nothing, then the accepted
/// ones, each checked to succeed (orders confirmed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_value_at_every_bound_is_accepted_and_the_one_past_it_refused() {
    let app = App::start().await;
    let admin = app.admin().await;
    let customer = app.customer("frank").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 100_000).await;
    let renamed = app.product(&admin, "RENAMED-1", "1.00", 1).await;
    let repriced = app.product(&admin, "REPRICED-1", "1.00", 1).await;
    let restocked_to_max = app.product(&admin, "RESTOCK-MAX", "1.00", 0).await;
    let restocked_by_one = app.product(&admin, "RESTOCK-ONE", "1.00", 0).await;
    let mut to_cancel = Vec::new();
    for _ in 0..2 {
        let (status, order) = app.order(&customer, &[(&mug, 1)]).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        to_cancel.push(order["orderId"].as_str().unwrap().to_owned());
    }

    let (admin, customer) = (Some(admin.as_str()), Some(customer.as_str()));
    let register = |username: &str, password: &str, display: &str| json!({"username": username, "password": password, "displayName": display});
    let product = |sku: &str, name: &str, price: &str, stock: i64| json!({"sku": sku, "name": name, "price": price, "stock": stock});
    let order = |change: &dyn Fn(&mut Value)| {
        let mut body = order_body(&[(&mug, 1)]);
        change(&mut body);
        body
    };
    let text = |c: &str, n: usize| c.repeat(n);
    let items = |n: usize| {
        let items: Vec<Value> = (0..n).map(|_| json!({"productId": mug, "quantity": 1})).collect();
        order(&|body| body["items"] = json!(items))
    };
    let quantity = |q: i64| order(&|body| body["items"][0]["quantity"] = json!(q));

    let mut bounds = vec![
        bound("sku, shortest", "/products", admin, "sku", ("A", ""), |sku| {
            product(sku, "Mug", "1.00", 1)
        }),
        bound(
            "sku, longest",
            "/products",
            admin,
            "sku",
            (text("S", 64), text("S", 65)),
            |sku| product(&sku, "Mug", "1.00", 1),
        ),
        bound("name, shortest", "/products", admin, "name", ("N", " "), |name| {
            product("NAME-SHORT", name, "1.00", 1)
        }),
        bound(
            "name, longest",
            "/products",
            admin,
            "name",
            (text("n", 200), text("n", 201)),
            |name| product("NAME-LONG", &name, "1.00", 1),
        ),
        bound(
            "price, lowest",
            "/products",
            admin,
            "price",
            ("0.01", "0.00"),
            |price| product("PRICE-LOW", "Mug", price, 1),
        ),
        bound(
            "price, highest",
            "/products",
            admin,
            "price",
            ("1000000000.00", "1000000000.01"),
            |price| product("PRICE-HIGH", "Mug", price, 1),
        ),
        bound("stock, lowest", "/products", admin, "stock", (0, -1), |stock| {
            product("STOCK-LOW", "Mug", "1.00", stock)
        }),
        bound(
            "stock, highest",
            "/products",
            admin,
            "stock",
            (1_000_000_000, 1_000_000_001),
            |stock| product("STOCK-HIGH", "Mug", "1.00", stock),
        ),
        bound(
            "new name, shortest",
            &format!("/products/{renamed}/name"),
            admin,
            "name",
            ("N", ""),
            |name| json!({"name": name}),
        ),
        bound(
            "new name, longest",
            &format!("/products/{renamed}/name"),
            admin,
            "name",
            (text("n", 200), text("n", 201)),
            |name| json!({"name": name}),
        ),
        bound(
            "new price, lowest",
            &format!("/products/{repriced}/price"),
            admin,
            "price",
            ("0.01", "0.00"),
            |price| json!({"price": price}),
        ),
        bound(
            "new price, highest",
            &format!("/products/{repriced}/price"),
            admin,
            "price",
            ("1000000000.00", "1000000000.01"),
            |price| json!({"price": price}),
        ),
        bound(
            "restock, fewest",
            &format!("/products/{restocked_by_one}/restock"),
            admin,
            "quantity",
            (1, 0),
            |quantity| json!({"quantity": quantity}),
        ),
        bound(
            "restock, most",
            &format!("/products/{restocked_to_max}/restock"),
            admin,
            "quantity",
            (1_000_000_000, 1_000_000_001),
            |quantity| json!({"quantity": quantity}),
        ),
        bound("items, fewest", "/orders", customer, "items", (1, 0), items),
        bound("items, most", "/orders", customer, "items", (50, 51), items),
        bound(
            "quantity, fewest",
            "/orders",
            customer,
            "items[0].quantity",
            (1, 0),
            quantity,
        ),
        bound(
            "quantity, most",
            "/orders",
            customer,
            "items[0].quantity",
            (1000, 1001),
            quantity,
        ),
    ];
    // Text fields: the shortest and the longest value each accepts, each
    // beside the value just past it. Registrations each of their own user.
    for (field, values) in [
        (
            "username",
            [("abc".to_owned(), "ab".to_owned()), (text("u", 32), text("u", 33))],
        ),
        (
            "password",
            [(text("p", 8), text("p", 7)), (text("p", 128), text("p", 129))],
        ),
        (
            "displayName",
            [("G".to_owned(), " ".to_owned()), (text("d", 64), text("d", 65))],
        ),
    ] {
        bounds.extend(ends("/auth/register", None, field, values, |end, value| {
            let mut body = register(&format!("{}-{end}", field.to_lowercase()), "password-1", "Gil");
            body[field] = json!(value);
            body
        }));
    }
    let lengths = |shortest: usize, longest: usize| {
        [
            (text("1", shortest), text("1", shortest - 1)),
            (text("1", longest), text("1", longest + 1)),
        ]
    };
    for (field, values) in [
        (
            "customer.phone",
            [
                ("1234567".to_owned(), "123456".to_owned()),
                (format!("+{}", text("1", 19)), format!("+{}", text("1", 20))),
            ],
        ),
        (
            "customer.email",
            [
                ("a@b.c".to_owned(), "@b.c".to_owned()),
                (format!("{}@b.com", text("a", 248)), format!("{}@b.com", text("a", 249))),
            ],
        ),
        (
            "customer.name",
            [("A".to_owned(), " ".to_owned()), (text("a", 100), text("a", 101))],
        ),
        ("shipping.address", lengths(1, 200)),
        ("shipping.city", lengths(1, 100)),
        ("shipping.state", lengths(1, 100)),
        ("shipping.country", lengths(1, 100)),
        ("shipping.postalCode", lengths(2, 12)),
    ] {
        let pointer = format!("/{}", field.replace('.', "/"));
        bounds.extend(ends("/orders", customer, field, values, |_, value| {
            order(&|body| *body.pointer_mut(&pointer).unwrap() = json!(value))
        }));
    }
    for (n, (accepted, refused)) in [(text("x", 1), String::new()), (text("x", 500), text("x", 501))]
        .into_iter()
        .enumerate()
    {
        bounds.push(bound(
            if n == 0 {
                "cancel reason, shortest"
            } else {
                "cancel reason, longest"
            },
            &format!("/orders/{}/cancel", to_cancel[n]),
            customer,
            "reason",
            (accepted, refused),
            |reason| json!({"reason": reason}),
        ));
    }
    for (name, accepted, refused) in [
        ("Idempotency-Key, shortest", "k".to_owned(), String::new()),
        ("Idempotency-Key, longest", text("k", 255), text("k", 256)),
    ] {
        let mut pair = bound(name, "/orders", customer, "Idempotency-Key", ((), ()), |()| {
            order(&|_| {})
        });
        pair.keys = Some((accepted, refused));
        bounds.push(pair);
    }

    let mut failures = Vec::new();
    for bound in &bounds {
        let before = app.decisions().await.len();
        let key = bound.keys.as_ref().map(|(_, refused)| refused);
        let (status, content_type, body) = send(&app, bound, &bound.refused, key).await;
        if status != StatusCode::BAD_REQUEST
            || !content_type.starts_with("application/problem+json")
            || body["field"] != bound.field
        {
            failures.push(format!(
                "{}, refused side: got {status} {content_type} {body}",
                bound.name
            ));
        }
        let after = app.decisions().await.len();
        if after != before {
            failures.push(format!(
                "{}, refused side: appended {} events",
                bound.name,
                after - before
            ));
        }
    }
    for bound in &bounds {
        let key = bound.keys.as_ref().map(|(accepted, _)| accepted);
        let (status, content_type, answer) = send(&app, bound, &bound.accepted, key).await;
        let confirmed = bound.path != "/orders" || answer["status"] == "confirmed";
        if !status.is_success() || !confirmed {
            failures.push(format!(
                "{}, accepted side: got {status} {content_type} {answer}",
                bound.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bounds failed:\n{}",
        failures.len(),
        bounds.len(),
        failures.join("\n")
    );
    assert_eq!(
        app.available(&restocked_to_max).await,
        1_000_000_000,
        "restocked to the maximum"
    );
    let before = app.decisions().await.len();
    let (status, body) = app
        .post(
            &format!("/products/{restocked_to_max}/restock"),
            admin,
            &json!({"quantity": 1}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "no restock past the maximum stock: {body}"
    );
    assert_eq!(app.decisions().await.len(), before);
    app.stop().await;
}

/// A body announced over the limit is refused unread, so the connection
/// cannot carry another request: the 413 says `Connection: close`, so that
/// the client opens a new connection for its next request instead of
/// writing it into a closed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_413_saying_the_connection_closes() {
    let app = App::start().await;
    let oversized = format!("{{\"username\": \"{}\"}}", "x".repeat(100_000));
    let before = app.decisions().await.len();
    for round in 0..10 {
        let response = app
            .http
            .post(app.url("/auth/register"))
            .header("content-type", "application/json")
            .body(oversized.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}, the oversized request: {e:?}"));
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "round {round}");
        assert_eq!(
            response.headers().get("connection").map(|v| v.to_str().unwrap()),
            Some("close"),
            "round {round}"
        );
        let (status, body) = app.post("/auth/register", None, &json!({"username": "x"})).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "round {round}, the next request: {body}"
        );
    }
    assert_eq!(app.decisions().await.len(), before, "nothing appended");
    app.stop().await;
}

/// Invisible format characters in a product name, a shipping address and a
/// display name are refused with a 400 naming the field, and nothing is
/// appended: a right-to-left override (U+202E) and a zero-width space
/// (U+200B), which the published patterns exclude, and a language tag
/// (U+E0001), which only the domain refuses (above the BMP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_format_characters_are_refused_naming_the_field() {
    let app = App::start().await;
    let admin = app.admin().await;
    let customer = app.customer("olga").await;
    let mug = app.product(&admin, "MUG-1", "12.50", 10).await;
    let before = app.decisions().await.len();
    let mut failures = Vec::new();
    for c in ['\u{202E}', '\u{200B}', '\u{E0001}'] {
        let text = format!("Mug{c}gpj.exe");
        let product = json!({"sku": "X-1", "name": text, "price": "1.00", "stock": 1});
        let order = order_with(|b| b["shipping"]["address"] = json!(text), &mug);
        let account = json!({"username": "mallory", "password": "password-1", "displayName": text});
        let requests = [
            (
                "create",
                app.http.post(app.url("/products")).bearer_auth(&admin).json(&product),
                "name",
            ),
            (
                "rename",
                app.http
                    .put(app.url(&format!("/products/{mug}/name")))
                    .bearer_auth(&admin)
                    .json(&json!({"name": text})),
                "name",
            ),
            (
                "order",
                app.http.post(app.url("/orders")).bearer_auth(&customer).json(&order),
                "shipping.address",
            ),
            (
                "register",
                app.http.post(app.url("/auth/register")).json(&account),
                "displayName",
            ),
        ];
        for (name, request, field) in requests {
            let response = request.send().await.unwrap();
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status != StatusCode::BAD_REQUEST
                || !content_type.starts_with("application/problem+json")
                || body["field"] != field
            {
                failures.push(format!("{name} U+{:04X}: {status} {content_type} {body}", u32::from(c)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(app.decisions().await.len(), before, "refused requests append nothing");
    app.stop().await;
}
