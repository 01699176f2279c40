//! The golden event corpus (`domain/corpus/`, see its README): every event
//! type at every schema version this build reads, stored as the build that
//! wrote it wrote it. A (type, version) without a sample fails, and so does
//! a sample this build does not know or cannot decode, and a type today's
//! encoder writes in a shape no sample holds. Every sample folds
//! through its aggregate's decider and the order saga, and projects through
//! every projection on SQLite and on Postgres, parking nothing, into the
//! rows the deciders' states say.

// In tests an unwrap is an assertion with a backtrace.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::Timestamp;
use domain::account::administrators::{Administrators, RosterEvent};
use domain::account::revocation::{AccessToken, TokenEvent, TokenState};
use domain::account::{Account, AccountEvent, AccountState};
use domain::decider::Decider;
use domain::event::DomainEvent;
use domain::order::{Order, OrderEvent, OrderState};
use domain::order_saga::{self, SagaEvent, SagaState, Unsettled};
use domain::product::{Product, ProductEvent, ProductState};
use event_store::{EventStore, ExpectedRevision, StreamName};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use uuid::Uuid;
use views::tables::{order_lines, orders, products, revoked_tokens, users};

/// One stream as its build appended it: a file `<category>/<name>.json`
/// with the stream's name, the commit whose code wrote it (`writtenBy`),
/// and its events.
struct Stream {
    /// The path under `domain/corpus/`, for messages.
    path: String,
    name: String,
    samples: Vec<Sample>,
}

/// An event as stored: its type, the schema version in its metadata, and
/// its data, byte for byte.
struct Sample {
    event_type: String,
    schema_version: u32,
    data: Box<RawValue>,
}

impl Sample {
    fn bytes(&self) -> &[u8] {
        self.data.get().as_bytes()
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../domain/corpus")
}

/// Every stream of the corpus, by path.
fn corpus() -> Vec<Stream> {
    let mut streams = Vec::new();
    for category in std::fs::read_dir(corpus_dir()).unwrap() {
        let category = category.unwrap().path();
        if !category.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&category).unwrap() {
            let file = file.unwrap().path();
            let path = file.strip_prefix(corpus_dir()).unwrap().display().to_string();
            streams.push(read_stream(path, &std::fs::read_to_string(&file).unwrap()));
        }
    }
    streams.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(!streams.is_empty(), "no corpus in {}", corpus_dir().display());
    streams
}

/// The JSON object `raw`, which must have exactly the fields `names`;
/// values kept as written.
fn fields(at: &str, raw: &str, names: &[&str]) -> BTreeMap<String, Box<RawValue>> {
    let fields: BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(raw).unwrap_or_else(|e| panic!("{at}: not a JSON object: {e}"));
    let found: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(found, names, "{at}: fields");
    fields
}

fn read_stream(path: String, text: &str) -> Stream {
    let top = fields(&path, text, &["events", "stream", "writtenBy"]);
    let text_of = |raw: &RawValue| {
        serde_json::from_str::<String>(raw.get())
            .ok()
            .filter(|text| !text.is_empty())
    };
    let name = text_of(&top["stream"]).unwrap_or_else(|| panic!("{path}: stream is not a name"));
    assert!(
        text_of(&top["writtenBy"]).is_some(),
        "{path}: writtenBy names no commit"
    );
    let events: Vec<Box<RawValue>> =
        serde_json::from_str(top["events"].get()).unwrap_or_else(|e| panic!("{path}: events: {e}"));
    let samples = events
        .iter()
        .enumerate()
        .map(|(index, raw)| {
            let at = format!("{path} event {index}");
            let mut event = fields(&at, raw.get(), &["data", "eventType", "schemaVersion"]);
            Sample {
                event_type: text_of(&event["eventType"]).unwrap_or_else(|| panic!("{at}: eventType")),
                schema_version: serde_json::from_str(event["schemaVersion"].get())
                    .unwrap_or_else(|e| panic!("{at}: schemaVersion: {e}")),
                data: event.remove("data").unwrap(),
            }
        })
        .collect();
    Stream { path, name, samples }
}

/// (category, event type, schema version)
type Kind = (String, String, u32);

/// What `E`'s decoder reads: each type at each readable version.
fn readable<E: DomainEvent>() -> Vec<Kind> {
    E::EVENT_TYPES
        .iter()
        .flat_map(|name| E::readable_versions().map(|version| (E::CATEGORY.to_owned(), (*name).to_owned(), version)))
        .collect()
}

/// Every (category, type, version) this build reads.
fn readable_kinds() -> BTreeSet<Kind> {
    [
        readable::<AccountEvent>(),
        readable::<ProductEvent>(),
        readable::<OrderEvent>(),
        readable::<TokenEvent>(),
        readable::<RosterEvent>(),
    ]
    .concat()
    .into_iter()
    .collect()
}

/// The category of `stream`'s stream, checked against the folder it is in.
fn category(stream: &Stream) -> &str {
    let (category, _) = stream.name.split_once('-').unwrap_or(("", ""));
    assert!(
        stream.path.starts_with(&format!("{category}/")),
        "{}: the stream {:?} belongs in {category}/",
        stream.path,
        stream.name
    );
    category
}

#[test]
fn every_event_type_at_every_readable_version_has_a_sample_and_every_sample_is_known() {
    let known = readable_kinds();
    let sampled: BTreeSet<Kind> = corpus()
        .iter()
        .flat_map(|stream| {
            let category = category(stream).to_owned();
            stream
                .samples
                .iter()
                .map(move |sample| (category.clone(), sample.event_type.clone(), sample.schema_version))
        })
        .collect();
    let missing: Vec<_> = known.difference(&sampled).collect();
    let unknown: Vec<_> = sampled.difference(&known).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "domain/corpus/ lacks a sample of (category, type, version) {missing:?} (add one: domain/corpus/README.md), \
         and holds samples this build does not read: {unknown:?}"
    );
}

/// The `index`th event of `stream`, decoded by today's code; fails naming
/// the sample that does not decode.
fn decode<E: DomainEvent>(stream: &Stream, index: usize) -> E {
    assert!(
        E::id_in_stream(&stream.name).is_some(),
        "{}: not a {} stream",
        stream.path,
        E::CATEGORY
    );
    let sample = &stream.samples[index];
    E::decode(&sample.event_type, sample.schema_version, sample.bytes()).unwrap_or_else(|e| {
        panic!(
            "{} event {index} ({} v{}) no longer decodes: {e}",
            stream.path, sample.event_type, sample.schema_version
        )
    })
}

/// Every event of `stream`, decoded.
fn decode_all<E: DomainEvent>(stream: &Stream) -> Vec<E> {
    (0..stream.samples.len()).map(|index| decode(stream, index)).collect()
}

/// The aggregate id in `stream`'s name.
fn stream_id(stream: &Stream) -> Uuid {
    let (_, id) = stream.name.split_once('-').unwrap();
    id.parse()
        .unwrap_or_else(|e| panic!("{}: stream id {id:?}: {e}", stream.path))
}

/// `E`'s event types whose current shape, as today's encoder writes it at
/// the version it writes, no sample holds: decoded and encoded again, no
/// sample of the type comes out as it went in (compared as JSON values).
fn shapes_not_held<E: DomainEvent>(streams: &[Stream]) -> Vec<String> {
    let mut held = BTreeSet::new();
    for stream in streams.iter().filter(|stream| E::id_in_stream(&stream.name).is_some()) {
        for (index, sample) in stream.samples.iter().enumerate() {
            let written = decode::<E>(stream, index).encode().unwrap();
            let same = |data: &[u8]| serde_json::from_slice::<Value>(data).unwrap();
            if written.schema_version == sample.schema_version && same(&written.data) == same(sample.bytes()) {
                held.insert(written.event_type);
            }
        }
    }
    E::EVENT_TYPES
        .iter()
        .filter(|name| !held.contains(**name))
        .map(|name| format!("{}/{name} v{}", E::CATEGORY, E::SCHEMA_VERSION))
        .collect()
}

#[test]
fn todays_encoder_writes_each_type_in_a_shape_a_sample_holds() {
    let streams = corpus();
    let not_held = [
        shapes_not_held::<AccountEvent>(&streams),
        shapes_not_held::<ProductEvent>(&streams),
        shapes_not_held::<OrderEvent>(&streams),
        shapes_not_held::<TokenEvent>(&streams),
        shapes_not_held::<RosterEvent>(&streams),
    ]
    .concat();
    assert!(
        not_held.is_empty(),
        "today's encoder writes {not_held:?} in a shape no sample holds: add a sample this build wrote \
         (domain/corpus/README.md), or raise SCHEMA_VERSION if older builds could not read it"
    );
}

/// Each stream's aggregate state, folded by its decider, as the rows the
/// projections should hold for it: by table, by id.
fn expected_rows(streams: &[Stream]) -> BTreeMap<&'static str, BTreeMap<Uuid, Value>> {
    let mut tables: BTreeMap<&'static str, BTreeMap<Uuid, Value>> = BTreeMap::new();
    for stream in streams {
        let (table, row) = match category(stream) {
            AccountEvent::CATEGORY => {
                let events: Vec<AccountEvent> = decode_all(stream);
                ("users", account_row(stream, &Account::fold(&events), events.len()))
            }
            ProductEvent::CATEGORY => ("products", product_row(stream, &Product::fold(&decode_all(stream)))),
            OrderEvent::CATEGORY => ("orders", order_row(stream, &Order::fold(&decode_all(stream)))),
            TokenEvent::CATEGORY => (
                "revoked_tokens",
                token_row(stream, &AccessToken::fold(&decode_all(stream)), &decode_all(stream)),
            ),
            RosterEvent::CATEGORY => {
                // The roster has no view; it folds to a roster with members.
                let roster = Administrators::fold(&decode_all::<RosterEvent>(stream));
                assert!(!roster.members.is_empty(), "{}: an empty roster", stream.path);
                continue;
            }
            other => panic!("{}: no event enum has the category {other:?}", stream.path),
        };
        tables.entry(table).or_default().insert(stream_id(stream), row);
    }
    tables
}

fn account_row(stream: &Stream, state: &AccountState, events: usize) -> Value {
    let AccountState::Registered(account) = state else {
        panic!("{}: folds to no account", stream.path)
    };
    assert_eq!(account.user_id.as_uuid(), stream_id(stream), "{}", stream.path);
    json!({
        "username": account.username.to_string(),
        "displayName": account.display_name.to_string(),
        "role": projectors::users::role_name(account.role),
        "credentialVersion": events,
    })
}

fn token_row(stream: &Stream, state: &TokenState, events: &[TokenEvent]) -> Value {
    let TokenState::Revoked { user_id } = state else {
        panic!("{}: folds to no revocation", stream.path)
    };
    let [
        TokenEvent::Revoked {
            token_id, expires_at, ..
        },
    ] = events
    else {
        panic!("{}: a token's stream holds its revocation alone", stream.path)
    };
    assert_eq!(*token_id, stream_id(stream), "{}", stream.path);
    json!({"userId": user_id.as_uuid(), "expiresAt": expires_at})
}

fn product_row(stream: &Stream, state: &ProductState) -> Value {
    let ProductState::Active(product) = state else {
        panic!("{}: folds to no product", stream.path)
    };
    assert_eq!(product.product_id.as_uuid(), stream_id(stream), "{}", stream.path);
    json!({
        "sku": product.sku.to_string(),
        "name": product.name.to_string(),
        "priceMinor": product.price.money().minor_units(),
        "available": product.available.get(),
    })
}

fn order_row(stream: &Stream, state: &OrderState) -> Value {
    let (Some(placed), Some((status, payment))) = (state.placed(), state.status()) else {
        panic!("{}: folds to no order", stream.path)
    };
    assert_eq!(placed.order_id.as_uuid(), stream_id(stream), "{}", stream.path);
    json!({
        "customerId": placed.customer_id.as_uuid(),
        "status": status.as_str(),
        "payment": payment.as_str(),
        "totalMinor": state.confirmed().map(|order| order.total.minor_units()),
        "lines": placed.lines.as_slice().len(),
    })
}

/// An event of the corpus: its stream, its index there, its time.
struct Logged<'a> {
    stream: &'a Stream,
    index: usize,
    at: Timestamp,
}

impl Logged<'_> {
    fn sample(&self) -> &Sample {
        &self.stream.samples[self.index]
    }
}

/// The `at` of an event's data: every domain event carries one.
fn at(stream: &Stream, sample: &Sample) -> Timestamp {
    let data: Value = serde_json::from_slice(sample.bytes()).unwrap();
    data["at"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .unwrap_or_else(|| panic!("{}: {} has no `at`", stream.path, sample.event_type))
}

/// Every event of the corpus in the order the log holds them: by `at`,
/// each stream's in its own order, which is the order of its times.
fn log(streams: &[Stream]) -> Vec<Logged<'_>> {
    let mut log = Vec::new();
    for stream in streams {
        let times: Vec<Timestamp> = stream.samples.iter().map(|sample| at(stream, sample)).collect();
        assert!(times.is_sorted(), "{}: events out of time order", stream.path);
        log.extend(
            times
                .into_iter()
                .enumerate()
                .map(|(index, at)| Logged { stream, index, at }),
        );
    }
    log.sort_by_key(|logged| logged.at);
    log
}

#[test]
fn every_sample_decodes_and_folds_through_its_decider_and_the_order_saga() {
    let streams = corpus();
    let expected = expected_rows(&streams);
    assert_eq!(
        expected.keys().copied().collect::<Vec<_>>(),
        ["orders", "products", "revoked_tokens", "users"],
        "a stream of each aggregate"
    );
    let window = chrono::TimeDelta::minutes(30);
    let mut unsettled = Unsettled::new(5, window);
    let mut sagas: HashMap<Uuid, SagaState> = HashMap::new();
    let log = log(&streams);
    for logged in &log {
        let (order, product): (Option<OrderEvent>, Option<ProductEvent>) = match category(logged.stream) {
            OrderEvent::CATEGORY => (Some(decode(logged.stream, logged.index)), None),
            ProductEvent::CATEGORY => (None, Some(decode(logged.stream, logged.index))),
            _ => continue,
        };
        if let Some(order) = &order {
            unsettled.observe(order);
        }
        let event = order
            .as_ref()
            .map_or_else(|| SagaEvent::Product(product.as_ref().unwrap()), SagaEvent::Order);
        if let Some(order_id) = event.order_id() {
            let state = sagas.remove(&order_id.as_uuid()).unwrap_or_default();
            sagas.insert(order_id.as_uuid(), order_saga::step(state, event).0);
        }
    }
    let orders = &expected["orders"];
    for id in orders.keys() {
        let state = sagas.get(id).unwrap_or(&SagaState::Idle);
        assert_ne!(state, &SagaState::Idle, "the saga saw order {id} placed");
    }
    let unpaid: BTreeSet<Uuid> = orders
        .iter()
        .filter(|(_, row)| row["payment"] == "arranged")
        .map(|(id, _)| *id)
        .collect();
    let last = log.last().unwrap().at;
    let due: BTreeSet<Uuid> = unsettled
        .take_due(last + window)
        .into_iter()
        .map(|id| id.as_uuid())
        .collect();
    assert_eq!(due, unpaid, "the saga expires exactly the orders confirmed and unpaid");
}

/// The corpus appended to an embedded event store in log order, one event
/// per append at the stream's revision, bytes as stored.
async fn store_with(streams: &[Stream], folder: &Path) -> Arc<dyn EventStore> {
    let store = test_support::embedded_store(folder);
    let mut revisions: HashMap<&str, Option<u64>> = HashMap::new();
    for logged in log(streams) {
        let (name, sample) = (logged.stream.name.as_str(), logged.sample());
        let revision = revisions.entry(name).or_default();
        let event = test_support::new_event(&sample.event_type, sample.schema_version, sample.bytes().to_vec());
        let appended = store
            .append(
                &StreamName::new(name).unwrap(),
                ExpectedRevision::after(*revision),
                vec![event],
            )
            .await
            .unwrap();
        *revision = Some(appended.revision);
    }
    store
}

/// The rows the projections hold, in the shape of [`expected_rows`].
async fn projected_rows(db: &DatabaseConnection) -> BTreeMap<&'static str, BTreeMap<Uuid, Value>> {
    let mut lines: HashMap<Uuid, usize> = HashMap::new();
    for line in order_lines::Entity::find().all(db).await.unwrap() {
        *lines.entry(line.order_id).or_default() += 1;
    }
    let users = users::Entity::find().all(db).await.unwrap().into_iter().map(|row| {
        let value = json!({
            "username": row.username,
            "displayName": row.display_name,
            "role": row.role,
            "credentialVersion": row.credential_version,
        });
        (row.user_id, value)
    });
    let products = products::Entity::find().all(db).await.unwrap().into_iter().map(|row| {
        let value =
            json!({"sku": row.sku, "name": row.name, "priceMinor": row.price_minor, "available": row.available});
        (row.product_id, value)
    });
    let orders = orders::Entity::find().all(db).await.unwrap().into_iter().map(|row| {
        let value = json!({
            "customerId": row.customer_id,
            "status": row.status,
            "payment": row.payment_status,
            "totalMinor": row.total_minor,
            "lines": lines.get(&row.order_id).copied().unwrap_or_default(),
        });
        (row.order_id, value)
    });
    let revoked = revoked_tokens::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            let value = json!({"userId": row.user_id, "expiresAt": row.expires_at});
            (row.token_id, value)
        });
    BTreeMap::from([
        ("revoked_tokens", revoked.collect()),
        ("users", users.collect()),
        ("products", products.collect()),
        ("orders", orders.collect()),
    ])
}

/// Rebuilds every projection from the corpus into `db` as `projectors
/// replay` does (a generation built in small batches, then promoted): each
/// reaches the head, parks nothing, and leaves the rows the deciders'
/// states say.
async fn the_corpus_projects_into(db: DatabaseConnection) {
    let streams = corpus();
    let folder = tempfile::tempdir().unwrap();
    let store = store_with(&streams, folder.path()).await;
    let head = store.head().await.unwrap();
    for projection in projectors::all() {
        let reached = projectors::generations::rebuild::replay(&store, &db, &projection, 4)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", projection.name()));
        assert_eq!(reached, head, "{} rebuilt up to the head", projection.name());
    }
    let parked = projectors::parked::all(&db).await.unwrap();
    assert!(parked.is_empty(), "the corpus parked events: {parked:?}");
    let projected = projected_rows(&db).await;
    for (table, expected) in expected_rows(&streams) {
        let rows = &projected[table];
        for (id, row) in &expected {
            assert_eq!(rows.get(id), Some(row), "the {table} row of {id}");
        }
        let ids = |rows: &BTreeMap<Uuid, Value>| rows.keys().copied().collect::<Vec<_>>();
        assert_eq!(ids(rows), ids(&expected), "the {table} rows");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_projects_on_sqlite() {
    let (url, _folder) = test_support::sqlite_views();
    the_corpus_projects_into(projectors::database::connect_and_migrate(&url, 4).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_projects_on_postgres() {
    let url = test_support::postgres::fresh_database().await;
    the_corpus_projects_into(projectors::database::connect_and_migrate(&url, 4).await.unwrap()).await;
}
