//! Projector replay into Postgres views:
//! `cargo bench -p projectors --bench replay`.
//!
//! Builds a log of about `BENCH_EVENTS` events (default 1,000,000) the way
//! the system builds it: every command goes through the domain's deciders,
//! and the order saga's `evolve` and `react` decide what follows each
//! order. Customers register and place orders of 1 to 4 lines; the saga
//! reserves every line, then confirms the order, or rejects it when a scarce
//! product has run out and releases what it held; a fifth of the confirmed
//! orders are cancelled later and their stock released; the admin restocks
//! the scarce products and reprices one now and then; the saga saves its
//! checkpoint in the log. The events are appended by 64 concurrent writers
//! in rounds of about 4,000 events, each stream's events in order.
//!
//! Then it times `projectors replay all` — the command users run, as a
//! child process: a blue/green rebuild of each projection (`generations/`:
//! the next generation built in batches of the projectors' size, each its
//! own transaction, then verified against the live one page by page, then
//! promoted by renaming tables) — into a fresh Postgres database whose live
//! views are already at the head of the log (written by hand first,
//! untimed: admins rebuild running projections), against a baseline in the
//! same run doing the same work by hand into an empty one: the
//! same three rebuilds one after another, each one transaction that reads
//! the whole log in batches of the projectors' size and writes the rows
//! each batch touches (products, users, order headers at every status
//! change, order lines when placed and when priced) with multi-row
//! `INSERT ... ON CONFLICT`, then its checkpoint. The baseline keeps the
//! rows it wrote in memory instead of reading them back. Afterwards both
//! databases must hold the same rows. Each blue/green rebuild's phases
//! (build, then verify and promote) come from the timestamps it records in
//! `projection_generations` (`command.rs`). The
//! longest transaction on the database during every run comes from
//! `pg_stat_activity`, sampled every 50 ms (`transactions.rs`).
//!
//! Last, on the views the second replay left (live and populated), the
//! query API is loaded at a fixed rate, half of what it sustains, first
//! idle, then while `projectors rebuild all` runs: its p50 and p99 in each
//! window, their ratio, non-200 answers and errors (`under_load.rs`).
//!
//! Postgres: `BENCH_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres` (a database per run,
//! dropped at the end). `BENCH_EVENTS=100000` for a quick run.

// A benchmark that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

mod command;
mod transactions;
mod under_load;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::Timestamp;
use domain::account::{Account, AccountCommand, AccountEvent, AccountState, DisplayName, PasswordHash, Role, Username};
use domain::decider::Decider;
use domain::event::DomainEvent;
use domain::ids::{OrderId, ProductId, UserId};
use domain::money::Price;
use domain::order::{
    Customer, LineFailure, Order, OrderCommand, OrderEvent, OrderLines, OrderState, OrderStatus, PaymentStatus,
    PlaceOrder, PlacedOrder, ShippingAddress,
};
use domain::order_saga::{self, SagaCommand, SagaEvent, SagaState};
use domain::product::{Product, ProductCommand, ProductEvent, ProductName, ProductState, Sku};
use domain::quantity::{RestockQuantity, StockLevel};
use domain::text::Reason;
use event_store::sqlite::WriterStats;
use event_store::{
    EventMetadata, EventStore, ExpectedRevision, NewEvent, Position, RecordedEvent, StreamFilter, StreamName,
};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, Statement, TransactionTrait,
};
use test_support::postgres::Scratch;
use uuid::Uuid;
use views::tables::{order_lines, orders, products, users};

use crate::command::{Phases, Reported};
use crate::transactions::{Longest, Sampler};

const PRODUCTS: usize = 1000;
/// Every 25th product starts with 20 units and runs out: orders for it are
/// rejected until the next restock.
const SCARCE_EVERY: usize = 25;
const WRITERS: usize = 64;
const ROUND: usize = 4000;

fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let server = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(events, &server));
}

/// splitmix64: the same log on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// The command side, played in memory: deciders and the saga decide every
/// event; [`Generator::take_appends`] hands over the appends made so far.
struct Generator {
    rng: Rng,
    now: Timestamp,
    password_hash: PasswordHash,
    admin: UserId,
    products: Vec<(ProductId, ProductState)>,
    product_index: HashMap<ProductId, usize>,
    customers: Vec<UserId>,
    customer: Customer,
    shipping: ShippingAddress,
    to_cancel: VecDeque<(OrderId, OrderState, SagaState, UserId)>,
    orders: usize,
    events: usize,
    counts: BTreeMap<String, usize>,
    /// The events in each stream so far: the revision the next append
    /// expects.
    revisions: HashMap<String, u64>,
    appends: Vec<Append>,
}

/// One command's events, to be appended to `stream` at `expected`.
struct Append {
    stream: StreamName,
    expected: ExpectedRevision,
    events: Vec<NewEvent>,
}

impl Generator {
    fn new(password_hash: PasswordHash) -> Self {
        let mut generator = Self {
            rng: Rng(17),
            now: chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
                .unwrap()
                .to_utc(),
            password_hash,
            admin: UserId::from_uuid(Uuid::nil()),
            products: Vec::new(),
            product_index: HashMap::new(),
            customers: Vec::new(),
            customer: Customer::parse(Some("Bench Customer"), Some("bench@example.com"), "0812345678").unwrap(),
            shipping: ShippingAddress::parse("1 Main St", "Bangkok", "Bangkok", "TH", "10110").unwrap(),
            to_cancel: VecDeque::new(),
            orders: 0,
            events: 0,
            counts: BTreeMap::new(),
            revisions: HashMap::new(),
            appends: Vec::new(),
        };
        generator.admin = generator.register("admin", Role::Admin);
        for n in 0..PRODUCTS {
            let sku = Sku::parse(&format!("SKU-{n:04}")).unwrap();
            let product_id = ProductId::for_sku(&sku);
            let stock = if n.is_multiple_of(SCARCE_EVERY) { 20 } else { 1_000_000 };
            generator.products.push((product_id, ProductState::default()));
            generator.product_index.insert(product_id, n);
            let now = generator.tick();
            let command = ProductCommand::Create {
                product_id,
                sku,
                name: ProductName::parse(&format!("Product {n}")).unwrap(),
                price: Price::from_minor_units(500 + 7 * n as u64).unwrap(),
                initial_stock: StockLevel::parse_field("stock", stock).unwrap(),
                now,
            };
            generator.product(product_id, command, Uuid::now_v7(), None, Some(generator.admin));
        }
        generator
    }

    fn tick(&mut self) -> Timestamp {
        self.now += chrono::Duration::milliseconds(1);
        self.now
    }

    fn take_appends(&mut self) -> Vec<Append> {
        std::mem::take(&mut self.appends)
    }

    /// One command's events as one append to `stream`, expecting the
    /// stream's current revision as the command API's handlers do; their
    /// ids.
    fn append<E: DomainEvent>(
        &mut self,
        stream: String,
        events: &[E],
        correlation: Uuid,
        causation: Option<Uuid>,
        user: Option<UserId>,
    ) -> Vec<Uuid> {
        let new: Vec<NewEvent> = events
            .iter()
            .map(|event| {
                let encoded = event.encode().unwrap();
                *self.counts.entry(encoded.event_type.clone()).or_default() += 1;
                NewEvent {
                    id: Uuid::now_v7(),
                    event_type: encoded.event_type,
                    data: encoded.data,
                    metadata: EventMetadata {
                        correlation_id: correlation,
                        trace_id: None,
                        causation_id: causation,
                        user_id: user.map(|user| user.as_uuid()),
                        schema_version: encoded.schema_version,
                    },
                }
            })
            .collect();
        let ids = new.iter().map(|event| event.id).collect();
        if !new.is_empty() {
            self.events += new.len();
            let revision = self.revisions.entry(stream.clone()).or_default();
            let expected = ExpectedRevision::after(revision.checked_sub(1));
            *revision += new.len() as u64;
            self.appends.push(Append {
                stream: StreamName::new(stream).unwrap(),
                expected,
                events: new,
            });
        }
        ids
    }

    fn register(&mut self, username: &str, role: Role) -> UserId {
        let username = Username::parse(username).unwrap();
        let user_id = UserId::for_username(&username);
        let now = self.tick();
        let command = AccountCommand::Register {
            user_id,
            display_name: DisplayName::parse(&format!("User {username}")).unwrap(),
            username,
            password_hash: self.password_hash.clone(),
            role,
            now,
        };
        let events = Account::decide(&AccountState::default(), command).unwrap();
        self.append(AccountEvent::stream_name(user_id), &events, Uuid::now_v7(), None, None);
        user_id
    }

    fn product(
        &mut self,
        product_id: ProductId,
        command: ProductCommand,
        correlation: Uuid,
        causation: Option<Uuid>,
        user: Option<UserId>,
    ) -> Vec<(ProductEvent, Uuid)> {
        let n = self.product_index[&product_id];
        let events = Product::decide(&self.products[n].1, command).unwrap();
        let state = std::mem::take(&mut self.products[n].1);
        self.products[n].1 = events.iter().fold(state, Product::evolve);
        let ids = self.append(
            ProductEvent::stream_name(product_id),
            &events,
            correlation,
            causation,
            user,
        );
        events.into_iter().zip(ids).collect()
    }

    fn order(
        &mut self,
        state: &mut OrderState,
        order_id: OrderId,
        command: OrderCommand,
        correlation: Uuid,
        causation: Option<Uuid>,
        user: Option<UserId>,
    ) -> Vec<(OrderEvent, Uuid)> {
        let events = Order::decide(state, command).unwrap();
        *state = events.iter().fold(std::mem::take(state), Order::evolve);
        let ids = self.append(OrderEvent::stream_name(order_id), &events, correlation, causation, user);
        events.into_iter().zip(ids).collect()
    }

    /// Runs the saga from `events` of the order until it asks for nothing
    /// more, executing its commands in the order it asks for them.
    fn saga(
        &mut self,
        mut saga: SagaState,
        order: &mut OrderState,
        order_id: OrderId,
        events: Vec<(OrderEvent, Uuid)>,
        correlation: Uuid,
    ) -> SagaState {
        let mut queue = VecDeque::new();
        for (event, id) in &events {
            saga = order_saga::evolve(saga, SagaEvent::Order(event));
            queue.extend(
                order_saga::react(&saga, SagaEvent::Order(event))
                    .into_iter()
                    .map(|c| (c, *id)),
            );
        }
        while let Some((command, cause)) = queue.pop_front() {
            let now = self.tick();
            let (product_command, order_command) = match command {
                SagaCommand::Reserve {
                    product_id,
                    order_id,
                    quantity,
                } => (
                    Some((
                        product_id,
                        ProductCommand::Reserve {
                            order_id,
                            quantity,
                            now,
                        },
                    )),
                    None,
                ),
                SagaCommand::Release { product_id, order_id } => {
                    (Some((product_id, ProductCommand::Release { order_id, now })), None)
                }
                SagaCommand::Confirm { lines, .. } => (
                    None,
                    Some(OrderCommand::Confirm {
                        lines,
                        now,
                        payment_due: now + chrono::TimeDelta::minutes(30),
                    }),
                ),
                SagaCommand::Reject { failures, .. } => (None, Some(OrderCommand::Reject { failures, now })),
                SagaCommand::Refuse { refusal, .. } => (None, Some(OrderCommand::Refuse { refusal, now })),
                SagaCommand::Expire { .. } => unreachable!("the bench's log has no payment window"),
            };
            if let Some((product_id, command)) = product_command {
                for (event, id) in self.product(product_id, command, correlation, Some(cause), None) {
                    saga = order_saga::evolve(saga, SagaEvent::Product(&event));
                    queue.extend(
                        order_saga::react(&saga, SagaEvent::Product(&event))
                            .into_iter()
                            .map(|c| (c, id)),
                    );
                }
            }
            if let Some(command) = order_command {
                for (event, id) in self.order(order, order_id, command, correlation, Some(cause), None) {
                    saga = order_saga::evolve(saga, SagaEvent::Order(&event));
                    queue.extend(
                        order_saga::react(&saga, SagaEvent::Order(&event))
                            .into_iter()
                            .map(|c| (c, id)),
                    );
                }
            }
        }
        saga
    }

    /// A customer (now and then a new one) places an order and the saga
    /// settles it; an order picked for cancelling 100 picks ago is cancelled;
    /// now and then the admin restocks, reprices, and the saga checkpoints.
    fn next_order(&mut self) {
        if self.customers.is_empty() || self.rng.below(8) == 0 {
            let user = self.register(&format!("customer{}", self.customers.len()), Role::Customer);
            self.customers.push(user);
        }
        let customer_id = self.customers[self.rng.below(self.customers.len())];
        let requested: Vec<(ProductId, i64)> = (0..1 + self.rng.below(4))
            .map(|_| (self.products[self.rng.below(PRODUCTS)].0, 1 + self.rng.below(3) as i64))
            .collect();
        let order_id = OrderId::from_uuid(Uuid::now_v7());
        let correlation = Uuid::now_v7();
        let now = self.tick();
        let place = OrderCommand::Place(PlaceOrder {
            order: PlacedOrder {
                order_id,
                customer_id,
                lines: OrderLines::parse(&requested).unwrap(),
                customer: self.customer.clone(),
                shipping: self.shipping.clone(),
            },
            now,
        });
        let mut order = OrderState::default();
        let placed = self.order(&mut order, order_id, place, correlation, None, Some(customer_id));
        let saga = self.saga(SagaState::default(), &mut order, order_id, placed, correlation);
        if matches!(order.status(), Some((OrderStatus::Confirmed, _))) && self.rng.below(5) == 0 {
            self.to_cancel.push_back((order_id, order, saga, customer_id));
        }
        if self.to_cancel.len() > 100 {
            let (order_id, mut order, saga, customer_id) = self.to_cancel.pop_front().unwrap();
            let correlation = Uuid::now_v7();
            let now = self.tick();
            let cancel = OrderCommand::Cancel {
                requested_by: customer_id,
                reason: Reason::parse("changed my mind").unwrap(),
                now,
            };
            let cancelled = self.order(&mut order, order_id, cancel, correlation, None, Some(customer_id));
            self.saga(saga, &mut order, order_id, cancelled, correlation);
        }
        self.orders += 1;
        if self.orders.is_multiple_of(5000) {
            for n in (0..PRODUCTS).step_by(SCARCE_EVERY) {
                let now = self.tick();
                let product_id = self.products[n].0;
                let restock = ProductCommand::Restock {
                    quantity: RestockQuantity::parse_field("quantity", 10).unwrap(),
                    now,
                };
                self.product(product_id, restock, Uuid::now_v7(), None, Some(self.admin));
            }
        }
        if self.orders.is_multiple_of(2000) {
            let (n, now) = (self.rng.below(PRODUCTS), self.tick());
            let price = Price::from_minor_units(500 + self.rng.below(10_000) as u64).unwrap();
            let product_id = self.products[n].0;
            self.product(
                product_id,
                ProductCommand::Reprice { price, now },
                Uuid::now_v7(),
                None,
                Some(self.admin),
            );
        }
        if self.orders.is_multiple_of(600) {
            self.saga_checkpoint();
        }
    }

    fn saga_checkpoint(&mut self) {
        let event = NewEvent {
            id: Uuid::now_v7(),
            event_type: "SagaCheckpointed".to_owned(),
            data: serde_json::to_vec(&serde_json::json!({"after": Position::at(self.events as u64).to_string()}))
                .unwrap(),
            metadata: EventMetadata {
                correlation_id: Uuid::now_v7(),
                trace_id: None,
                causation_id: None,
                user_id: None,
                schema_version: 1,
            },
        };
        *self.counts.entry(event.event_type.clone()).or_default() += 1;
        self.events += 1;
        // The saga saves its checkpoint without an expected revision.
        self.appends.push(Append {
            stream: StreamName::new(command_api::saga::CHECKPOINT_STREAM).unwrap(),
            expected: ExpectedRevision::Any,
            events: vec![event],
        });
    }
}

/// Appends a round as the command side does: one append per command, by
/// [`WRITERS`] concurrent writers (so group commit batches them), each
/// stream pinned to one writer (by a hash of its name) so its appends stay
/// in order. Returns how many appends it made.
async fn write_round(store: &Arc<dyn EventStore>, appends: Vec<Append>) -> usize {
    let count = appends.len();
    let mut writers: Vec<Vec<Append>> = (0..WRITERS).map(|_| Vec::new()).collect();
    for append in appends {
        let mut hasher = std::hash::DefaultHasher::new();
        append.stream.as_str().hash(&mut hasher);
        writers[(hasher.finish() % WRITERS as u64) as usize].push(append);
    }
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|appends| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                for append in appends {
                    store
                        .append(&append.stream, append.expected, append.events)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    count
}

/// The log of about `target` events; the generator (with its counts) and
/// the number of appends made.
async fn build_log(store: &Arc<dyn EventStore>, target: usize) -> (Generator, usize) {
    let password = domain::account::Password::parse("bench-password").unwrap();
    let mut generator = Generator::new(command_api::auth::argon2id::Hasher::default().hash(&password).unwrap());
    let mut appends = 0;
    while generator.events < target {
        generator.next_order();
        if generator
            .appends
            .iter()
            .map(|append| append.events.len())
            .sum::<usize>()
            >= ROUND
        {
            appends += write_round(store, generator.take_appends()).await;
        }
    }
    appends += write_round(store, generator.take_appends()).await;
    (generator, appends)
}

async fn fresh_database(server: &str) -> (DatabaseConnection, Scratch) {
    let database = Scratch::create(server, "shop_bench").await;
    let db = projectors::database::connect_and_migrate(&database.url, 4)
        .await
        .unwrap();
    (db, database)
}

/// A view row as the baseline writes it.
trait Row {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    const KEY: &'static [&'static str];
    fn values(&self, out: &mut Vec<sea_orm::Value>);
}

impl Row for products::Model {
    const TABLE: &'static str = "products";
    const COLUMNS: &'static [&'static str] = &[
        "product_id",
        "sku",
        "name",
        "name_folded",
        "price_minor",
        "available",
        "created_at",
        "updated_at",
    ];
    const KEY: &'static [&'static str] = &["product_id"];
    fn values(&self, out: &mut Vec<sea_orm::Value>) {
        out.extend([
            self.product_id.into(),
            self.sku.clone().into(),
            self.name.clone().into(),
            self.name_folded.clone().into(),
            self.price_minor.into(),
            self.available.into(),
            self.created_at.into(),
            self.updated_at.into(),
        ]);
    }
}

impl Row for users::Model {
    const TABLE: &'static str = "users";
    const COLUMNS: &'static [&'static str] = &[
        "user_id",
        "username",
        "display_name",
        "role",
        "registered_at",
        "credential_version",
    ];
    const KEY: &'static [&'static str] = &["user_id"];
    fn values(&self, out: &mut Vec<sea_orm::Value>) {
        out.extend([
            self.user_id.into(),
            self.username.clone().into(),
            self.display_name.clone().into(),
            self.role.clone().into(),
            self.registered_at.into(),
            self.credential_version.into(),
        ]);
    }
}

impl Row for orders::Model {
    const TABLE: &'static str = "orders";
    const COLUMNS: &'static [&'static str] = &[
        "order_id",
        "customer_id",
        "status",
        "payment_status",
        "total_minor",
        "customer_name",
        "customer_email",
        "customer_phone",
        "address",
        "city",
        "state",
        "country",
        "postal_code",
        "failures",
        "cancel_reason",
        "placed_at",
        "updated_at",
        "payment_reference",
        "settled_at",
        "closed_at",
        "expires_at",
        "refusal",
    ];
    const KEY: &'static [&'static str] = &["order_id"];
    fn values(&self, out: &mut Vec<sea_orm::Value>) {
        out.extend([
            self.order_id.into(),
            self.customer_id.into(),
            self.status.clone().into(),
            self.payment_status.clone().into(),
            self.total_minor.into(),
            self.customer_name.clone().into(),
            self.customer_email.clone().into(),
            self.customer_phone.clone().into(),
            self.address.clone().into(),
            self.city.clone().into(),
            self.state.clone().into(),
            self.country.clone().into(),
            self.postal_code.clone().into(),
            self.failures.clone().into(),
            self.cancel_reason.clone().into(),
            self.placed_at.into(),
            self.updated_at.into(),
            self.payment_reference.clone().into(),
            self.settled_at.into(),
            self.closed_at.into(),
            self.expires_at.into(),
            self.refusal.clone().into(),
        ]);
    }
}

impl Row for order_lines::Model {
    const TABLE: &'static str = "order_lines";
    const COLUMNS: &'static [&'static str] = &[
        "order_id",
        "line_no",
        "product_id",
        "sku",
        "name",
        "quantity",
        "unit_price_minor",
        "line_total_minor",
    ];
    const KEY: &'static [&'static str] = &["order_id", "line_no"];
    fn values(&self, out: &mut Vec<sea_orm::Value>) {
        out.extend([
            self.order_id.into(),
            self.line_no.into(),
            self.product_id.into(),
            self.sku.clone().into(),
            self.name.clone().into(),
            self.quantity.into(),
            self.unit_price_minor.into(),
            self.line_total_minor.into(),
        ]);
    }
}

/// Upsert statements and rows written, per table.
type Writes = BTreeMap<&'static str, (usize, usize)>;

/// Multi-row `INSERT ... ON CONFLICT DO UPDATE`, at most 30,000 parameters a
/// statement (the projectors' limit too), counted in `writes`.
async fn upsert<'a, R: Row + 'a>(
    transaction: &DatabaseTransaction,
    writes: &mut Writes,
    rows: impl IntoIterator<Item = &'a R>,
) {
    let rows: Vec<&R> = rows.into_iter().collect();
    let update = R::COLUMNS
        .iter()
        .filter(|column| !R::KEY.contains(column))
        .map(|column| format!("{column} = excluded.{column}"))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in rows.chunks(30_000 / R::COLUMNS.len()) {
        let mut values = Vec::with_capacity(chunk.len() * R::COLUMNS.len());
        let mut tuples = Vec::with_capacity(chunk.len());
        for row in chunk {
            let first = values.len() + 1;
            row.values(&mut values);
            let placeholders: Vec<String> = (first..=values.len()).map(|n| format!("${n}")).collect();
            tuples.push(format!("({})", placeholders.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {update}",
            R::TABLE,
            R::COLUMNS.join(", "),
            tuples.join(", "),
            R::KEY.join(", ")
        );
        transaction
            .execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
            .await
            .unwrap();
        let (statements, written) = writes.entry(R::TABLE).or_default();
        (*statements, *written) = (*statements + 1, *written + chunk.len());
    }
}

/// The batch's events of `E`'s streams, decoded.
fn decode<E: DomainEvent>(batch: &[RecordedEvent]) -> Vec<E> {
    batch
        .iter()
        .filter(|event| {
            event
                .stream
                .strip_prefix(E::CATEGORY)
                .is_some_and(|rest| rest.starts_with('-'))
        })
        .map(|event| E::decode(&event.event_type, event.metadata.schema_version, &event.data).unwrap())
        .collect()
}

/// The rows the baseline has written so far, kept in memory.
#[derive(Default)]
struct Written {
    products: HashMap<Uuid, products::Model>,
    users: HashMap<Uuid, users::Model>,
    orders: HashMap<Uuid, orders::Model>,
    writes: Writes,
}

impl Written {
    async fn catalog(&mut self, transaction: &DatabaseTransaction, batch: &[RecordedEvent]) {
        let mut touched = HashSet::new();
        for event in decode::<ProductEvent>(batch) {
            let id = event.product_id().as_uuid();
            if let ProductEvent::Created {
                sku,
                name,
                price,
                available,
                at,
                ..
            } = &event
            {
                let row = products::Model {
                    product_id: id,
                    sku: sku.to_string(),
                    name: name.to_string(),
                    name_folded: domain::search::fold(name.as_str()),
                    price_minor: price.money().minor_units() as i64,
                    available: i64::from(available.get()),
                    created_at: *at,
                    updated_at: *at,
                };
                self.products.insert(id, row);
            }
            let Some(row) = self.products.get_mut(&id) else {
                continue;
            };
            touched.insert(id);
            match event {
                ProductEvent::Created { .. } | ProductEvent::StockReservationRefused { .. } => {}
                ProductEvent::Renamed { name, at, .. } => {
                    (row.name, row.updated_at) = (name.to_string(), at);
                    row.name_folded = domain::search::fold(&row.name);
                }
                ProductEvent::Repriced { price, at, .. } => {
                    (row.price_minor, row.updated_at) = (price.money().minor_units() as i64, at);
                }
                ProductEvent::Restocked { available, at, .. }
                | ProductEvent::StockReserved { available, at, .. }
                | ProductEvent::StockReleased { available, at, .. } => {
                    (row.available, row.updated_at) = (i64::from(available.get()), at);
                }
            }
        }
        upsert(
            transaction,
            &mut self.writes,
            touched.iter().map(|id| &self.products[id]),
        )
        .await;
    }

    async fn users(&mut self, transaction: &DatabaseTransaction, batch: &[RecordedEvent]) {
        let mut touched = HashSet::new();
        for recorded in batch {
            // The credential version: the account stream's event count.
            let version = recorded.revision as i64 + 1;
            let Some(event) = decode::<AccountEvent>(std::slice::from_ref(recorded)).pop() else {
                continue;
            };
            let id = match event {
                AccountEvent::Registered {
                    user_id,
                    username,
                    display_name,
                    role,
                    at,
                    ..
                } => {
                    let row = users::Model {
                        user_id: user_id.as_uuid(),
                        username: username.to_string(),
                        display_name: display_name.to_string(),
                        role: projectors::users::role_name(role).to_owned(),
                        registered_at: at,
                        credential_version: version,
                    };
                    self.users.insert(user_id.as_uuid(), row);
                    user_id.as_uuid()
                }
                AccountEvent::RoleChanged { user_id, role, .. } => {
                    if let Some(row) = self.users.get_mut(&user_id.as_uuid()) {
                        row.role = projectors::users::role_name(role).to_owned();
                    }
                    user_id.as_uuid()
                }
                AccountEvent::PasswordChanged { user_id, .. } | AccountEvent::LoggedOutEverywhere { user_id, .. } => {
                    user_id.as_uuid()
                }
            };
            if let Some(row) = self.users.get_mut(&id) {
                row.credential_version = version;
            }
            if self.users.contains_key(&id) {
                touched.insert(id);
            }
        }
        upsert(transaction, &mut self.writes, touched.iter().map(|id| &self.users[id])).await;
    }

    async fn orders(&mut self, transaction: &DatabaseTransaction, batch: &[RecordedEvent]) {
        let mut touched = HashSet::new();
        let mut lines: HashMap<Uuid, Vec<order_lines::Model>> = HashMap::new();
        for event in decode::<OrderEvent>(batch) {
            let id = event.order_id().as_uuid();
            if let OrderEvent::Placed {
                customer_id,
                lines: placed,
                customer,
                shipping,
                at,
                ..
            } = &event
            {
                let header = orders::Model {
                    order_id: id,
                    customer_id: customer_id.as_uuid(),
                    status: OrderStatus::Pending.as_str().to_owned(),
                    payment_status: PaymentStatus::Pending.as_str().to_owned(),
                    total_minor: None,
                    customer_name: customer.name.as_ref().map(ToString::to_string),
                    customer_email: customer.email.clone(),
                    customer_phone: customer.phone.clone(),
                    address: shipping.address.to_string(),
                    city: shipping.city.to_string(),
                    state: shipping.state.to_string(),
                    country: shipping.country.to_string(),
                    postal_code: shipping.postal_code.clone(),
                    failures: None,
                    cancel_reason: None,
                    placed_at: *at,
                    updated_at: *at,
                    payment_reference: None,
                    settled_at: None,
                    closed_at: None,
                    expires_at: None,
                    refusal: None,
                };
                self.orders.insert(id, header);
                let rows = placed
                    .as_slice()
                    .iter()
                    .enumerate()
                    .map(|(n, line)| order_lines::Model {
                        order_id: id,
                        line_no: n as i32,
                        product_id: line.product_id.as_uuid(),
                        sku: None,
                        name: None,
                        quantity: line.quantity.get() as i32,
                        unit_price_minor: None,
                        line_total_minor: None,
                    });
                lines.insert(id, rows.collect());
            }
            let Some(header) = self.orders.get_mut(&id) else {
                continue;
            };
            touched.insert(id);
            match event {
                OrderEvent::Placed { .. } => {}
                OrderEvent::Confirmed {
                    lines: priced,
                    total,
                    at,
                    payment_due,
                    ..
                } => {
                    (header.status, header.payment_status) = (
                        OrderStatus::Confirmed.as_str().to_owned(),
                        PaymentStatus::Arranged.as_str().to_owned(),
                    );
                    (header.total_minor, header.updated_at) = (Some(total.minor_units() as i64), at);
                    header.expires_at = payment_due;
                    let rows = priced.iter().enumerate().map(|(n, line)| order_lines::Model {
                        order_id: id,
                        line_no: n as i32,
                        product_id: line.product_id.as_uuid(),
                        sku: Some(line.sku.to_string()),
                        name: Some(line.name.to_string()),
                        quantity: line.quantity.get() as i32,
                        unit_price_minor: Some(line.unit_price.money().minor_units() as i64),
                        line_total_minor: Some(line.line_total.minor_units() as i64),
                    });
                    lines.insert(id, rows.collect());
                }
                OrderEvent::Rejected { failures, at, .. } => {
                    (header.status, header.payment_status) = (
                        OrderStatus::Rejected.as_str().to_owned(),
                        PaymentStatus::Void.as_str().to_owned(),
                    );
                    (header.failures, header.updated_at) = (Some(failures_json(&failures)), at);
                }
                OrderEvent::Cancelled { reason, at, .. } => {
                    // The bench's log never settles: every cancelled order is unpaid.
                    (header.status, header.payment_status) = (
                        OrderStatus::Cancelled.as_str().to_owned(),
                        PaymentStatus::Cancelled.as_str().to_owned(),
                    );
                    (header.cancel_reason, header.updated_at) = (Some(reason.to_string()), at);
                    header.expires_at = None;
                }
                OrderEvent::Refused { .. }
                | OrderEvent::PaymentSettled { .. }
                | OrderEvent::PaymentRefunded { .. }
                | OrderEvent::Closed { .. } => unreachable!("the bench's log has no payments and no limit"),
            }
        }
        upsert(transaction, &mut self.writes, touched.iter().map(|id| &self.orders[id])).await;
        upsert(transaction, &mut self.writes, lines.values().flatten()).await;
    }
}

/// The failures as the orders view keeps them: the domain's serde form.
fn failures_json(failures: &[LineFailure]) -> String {
    serde_json::to_string(failures).unwrap()
}

/// One projection rebuilt by hand, as `replay` does it: one transaction,
/// its tables emptied, the whole log read in batches, the checkpoint moved.
/// Its time and the upserts it made.
async fn baseline(store: &dyn EventStore, db: &DatabaseConnection, projection: &str) -> (Duration, Writes) {
    let batch_size = projectors::runner::ProjectorOptions::default().batch_size;
    let started = Instant::now();
    let transaction = db.begin().await.unwrap();
    let tables: &[&str] = match projection {
        "catalog" => &["products"],
        "users" => &["users"],
        _ => &["order_lines", "orders"],
    };
    for table in tables {
        transaction
            .execute_unprepared(&format!("DELETE FROM {table}"))
            .await
            .unwrap();
    }
    let mut written = Written::default();
    let mut after = None;
    loop {
        let batch = store.read_all(after, batch_size, &StreamFilter::all()).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = Some(last.position);
        match projection {
            "catalog" => written.catalog(&transaction, &batch).await,
            "users" => written.users(&transaction, &batch).await,
            _ => written.orders(&transaction, &batch).await,
        }
    }
    let position = after.unwrap();
    transaction
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO checkpoints (projection, commit_position, prepare_position, updated_at) VALUES ($1, $2, $3, now()) \
             ON CONFLICT (projection) DO UPDATE SET commit_position = excluded.commit_position, \
             prepare_position = excluded.prepare_position, updated_at = excluded.updated_at",
            [
                projection.into(),
                (position.commit as i64).into(),
                (position.prepare as i64).into(),
            ],
        ))
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    (started.elapsed(), written.writes)
}

/// Each view's row count and a digest of every row, and the live
/// generations' checkpoints (a promotion also leaves the previous one's).
async fn contents(db: &DatabaseConnection) -> Vec<String> {
    let mut contents = Vec::new();
    for (table, key) in [
        ("products", "product_id"),
        ("users", "user_id"),
        ("orders", "order_id"),
        ("order_lines", "order_id, line_no"),
        ("checkpoints", "projection"),
    ] {
        let (columns, rows) = if table == "checkpoints" {
            (
                "(projection, commit_position, prepare_position)::text",
                " WHERE projection IN ('catalog', 'users', 'orders')",
            )
        } else {
            ("t::text", "")
        };
        let sql = format!(
            "SELECT '{table} ' || count(*) || ' ' || coalesce(md5(string_agg({columns}, '|' ORDER BY {key})), '') AS digest FROM {table} t{rows}"
        );
        let row = db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap()
            .unwrap();
        contents.push(row.try_get::<String>("", "digest").unwrap());
    }
    contents
}

/// One run: its seconds, the whole and each projection's, and the longest
/// transaction seen on its database; for a blue/green run, each
/// projection's phases and the rows it found differing from live.
#[derive(Default)]
struct Timed {
    total: f64,
    each: BTreeMap<String, f64>,
    longest: Longest,
    phases: BTreeMap<String, Phases>,
    differences: BTreeMap<String, u64>,
}

impl Timed {
    /// The seconds `projection`'s blue/green rebuild spent building.
    fn build(&self, projection: &str) -> f64 {
        self.phases.get(projection).map_or(f64::NAN, |phases| phases.build)
    }

    fn blue_green(reported: Reported, phases: BTreeMap<String, Phases>, longest: Longest) -> Self {
        Self {
            total: reported.total.as_secs_f64(),
            each: reported.each,
            longest,
            phases,
            differences: reported.differences,
        }
    }
}

/// The three rebuilds by hand, one after another, into `db`; the upserts
/// they made.
async fn baseline_all(store: &dyn EventStore, db: &DatabaseConnection) -> (Timed, Writes) {
    let (mut total, mut each, mut writes) = (0.0, BTreeMap::new(), Writes::new());
    for projection in projectors::all() {
        let (elapsed, written) = baseline(store, db, projection.name()).await;
        each.insert(projection.name().to_owned(), elapsed.as_secs_f64());
        total += elapsed.as_secs_f64();
        writes.extend(written);
    }
    let timed = Timed {
        total,
        each,
        ..Timed::default()
    };
    (timed, writes)
}

/// One run into a fresh database, by hand or as `projectors replay all`
/// on the log at `path`, its transactions sampled meanwhile; its time,
/// the upserts made by hand, and the database.
///
/// A replay runs as admins run it: on views already at the head of the
/// log (written by hand first, untimed), so its verification compares the
/// rebuilt generation with a live one at the same position instead of
/// first catching an empty live generation up with the whole log.
async fn run_once(
    store: &Arc<dyn EventStore>,
    path: &Path,
    server: &str,
    by_hand: bool,
) -> (Timed, Option<Writes>, DatabaseConnection, Scratch) {
    let (db, database) = fresh_database(server).await;
    if by_hand {
        let sampler = Sampler::start(server, &database.name).await;
        let (mut timed, writes) = baseline_all(store.as_ref(), &db).await;
        timed.longest = sampler.stop().await;
        return (timed, Some(writes), db, database);
    }
    baseline_all(store.as_ref(), &db).await;
    db.execute_unprepared("CHECKPOINT").await.unwrap();
    let sampler = Sampler::start(server, &database.name).await;
    let (path, url) = (path.to_owned(), database.url.clone());
    let reported = tokio::task::spawn_blocking(move || command::run("replay", &path, &url))
        .await
        .unwrap();
    let longest = sampler.stop().await;
    let timed = Timed::blue_green(reported, command::phases(&db).await, longest);
    (timed, None, db, database)
}

/// The runs of both sides, the upserts the baseline made, the rows, and
/// the database of the second replay, kept for the load.
struct Measured {
    baselines: [Timed; 2],
    replays: [Timed; 2],
    writes: Writes,
    rows: Vec<String>,
    kept: (DatabaseConnection, Scratch),
}

/// Runs the baseline and the replay in the order baseline, replay, replay,
/// baseline (so a drift of the machine shows as a gap between a side's two
/// runs), each into a fresh database whose rows must be the first run's,
/// dropped then (but the second replay's, kept for the load) and followed
/// by a `CHECKPOINT`, so no run inherits the previous one's dirty pages or
/// background work.
async fn measure(store: &Arc<dyn EventStore>, path: &Path, server: &str) -> Measured {
    let admin = Database::connect(server).await.unwrap();
    let (mut baselines, mut replays, mut writes, mut kept) = (Vec::new(), Vec::new(), Writes::new(), None);
    let mut first: Option<Vec<String>> = None;
    for by_hand in [true, false, false, true] {
        let (timed, written, db, database) = run_once(store, path, server, by_hand).await;
        let found = contents(&db).await;
        assert_eq!(
            first.get_or_insert_with(|| found.clone()),
            &found,
            "the baseline and the replay wrote different rows"
        );
        if by_hand {
            writes = written.unwrap();
            baselines.push(timed);
        } else {
            replays.push(timed);
        }
        if !by_hand && replays.len() == 2 {
            kept = Some((db, database));
        } else {
            db.close().await.unwrap();
            database.remove().await;
        }
        admin.execute_unprepared("CHECKPOINT").await.unwrap();
    }
    Measured {
        baselines: <[Timed; 2]>::try_from(baselines).ok().unwrap(),
        replays: <[Timed; 2]>::try_from(replays).ok().unwrap(),
        writes,
        rows: first.unwrap(),
        kept: kept.unwrap(),
    }
}

async fn run(target: usize, server: &str) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("events.db");
    let sqlite = Arc::new(event_store::sqlite::SqliteEventStore::open(&path).unwrap());
    let store: Arc<dyn EventStore> = sqlite.clone();
    println!("## Projector replay into Postgres\n");
    println!("{}\n", test_support::bench::machine());
    let started = Instant::now();
    let (log, appends) = build_log(&store, target).await;
    describe_log(&log, appends, started.elapsed(), &sqlite.writer_stats());
    let measured = measure(&store, &path, server).await;
    report(log.events, &measured.baselines, &measured.replays, &measured.rows);
    report_writes(&measured.writes, &measured.rows);
    let (db, database) = measured.kept;
    let load = under_load::measure(server, &database, &db, &path).await;
    db.close().await.unwrap();
    database.remove().await;
    under_load::report(&load);
    let rebuild = Timed::blue_green(load.reported, load.phases, load.longest);
    let [b1, b2] = &measured.baselines;
    let [r1, r2] = &measured.replays;
    report_phases(&[
        ("replay, 1st run", r1),
        ("replay, 2nd run", r2),
        ("rebuild under load", &rebuild),
    ]);
    report_transactions(&[
        ("baseline, 1st run", b1),
        ("`projectors replay all`, 1st run", r1),
        ("`projectors replay all`, 2nd run", r2),
        ("baseline, 2nd run", b2),
        ("`projectors rebuild all` under load", &rebuild),
    ]);
}

/// The pace the commands rebuild at (they inherit this process's
/// environment), as the README names it.
fn pace() -> String {
    match std::env::var("REBUILD_BUSY_PERCENT") {
        Ok(percent) => format!("`REBUILD_BUSY_PERCENT={percent}`"),
        Err(_) => format!(
            "the default pace (`REBUILD_BUSY_PERCENT` unset: busy {}% of the time)",
            projectors::generations::pace::DEFAULT_BUSY_PERCENT
        ),
    }
}

/// The log's paragraph: its events by type and how they were appended.
fn describe_log(log: &Generator, appends: usize, built: Duration, stats: &WriterStats) {
    let count = |types: &[&str]| {
        types
            .iter()
            .map(|t| log.counts.get(*t).copied().unwrap_or(0))
            .sum::<usize>()
    };
    println!(
        "The log: {} events: {} accounts, {} products, {} orders ({} confirmed, {} rejected, \
         {} later cancelled), {} reservations, {} refusals, {} releases, {} restocks, {} reprices, \
         {} saga checkpoints. Appended as {appends} appends (one per command) by {WRITERS} writers \
         in rounds of about {ROUND} events, each stream pinned to one writer; the store committed \
         them in {} commits ({:.1} appends per commit), in {:.1} s.\n",
        log.events,
        count(&["AccountRegistered"]),
        count(&["ProductCreated"]),
        count(&["OrderPlaced"]),
        count(&["OrderConfirmed"]),
        count(&["OrderRejected"]),
        count(&["OrderCancelled"]),
        count(&["StockReserved"]),
        count(&["StockReservationRefused"]),
        count(&["StockReleased"]),
        count(&["ProductRestocked"]),
        count(&["ProductRepriced"]),
        count(&["SagaCheckpointed"]),
        stats.commits,
        stats.taken_appends as f64 / stats.commits as f64,
        built.as_secs_f64()
    );
}

/// The timings table: each side's two runs, the rate and the ratio of
/// their means, and the ratio within each adjacent pair of runs.
fn report(events: usize, baselines: &[Timed; 2], replays: &[Timed; 2], rows: &[String]) {
    let counts: Vec<&str> = rows
        .iter()
        .map(|digest| digest.rsplit_once(' ').map_or(digest.as_str(), |(rows, _)| rows))
        .collect();
    println!(
        "Runs in the order baseline, replay, replay, baseline, each into a fresh database (a replay's \
         live views written by hand first, untimed); all four wrote the same rows: {}. The commands \
         rebuild at {}.\n",
        counts.join(", "),
        pace()
    );
    println!(
        "| measurement | log events | seconds, 1st run | seconds, 2nd run | log events/s (mean) | ratio to baseline (1st pair, 2nd pair) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let line = |name: &str, base: [f64; 2], timed: [f64; 2]| {
        let mean = (timed[0] + timed[1]) / 2.0;
        let ratio = if timed == base {
            "1.00x".to_owned()
        } else {
            format!(
                "**{:.2}x** ({:.2}x, {:.2}x)",
                (base[0] + base[1]) / 2.0 / mean,
                base[0] / timed[0],
                base[1] / timed[1]
            )
        };
        println!(
            "| {name} | {events} | {:.1} | {:.1} | {:.0} | {ratio} |",
            timed[0],
            timed[1],
            events as f64 / mean
        );
    };
    for projection in projectors::all() {
        let name = projection.name();
        let base = [baselines[0].each[name], baselines[1].each[name]];
        line(&format!("{name}: by hand (baseline)"), base, base);
        let replayed = [replays[0].each[name], replays[1].each[name]];
        line(
            &format!("{name}: as `projectors replay all` reports it"),
            base,
            replayed,
        );
        line(
            &format!("{name}: its build phase alone"),
            base,
            replays.each_ref().map(|r| r.build(name)),
        );
    }
    let base = [baselines[0].total, baselines[1].total];
    line("all three by hand, one after another (baseline)", base, base);
    let replayed = [replays[0].total, replays[1].total];
    line("`projectors replay all`, the whole command", base, replayed);
    let built = replays
        .each_ref()
        .map(|r| projectors::all().iter().map(|p| r.build(p.name())).sum());
    line("`projectors replay all`, its three build phases", base, built);
}

/// The upserts of one baseline run per table, against the rows the table
/// ends with (`rows`: "table count digest").
fn report_writes(writes: &Writes, rows: &[String]) {
    println!("\nUpserts of one baseline run (each batch upserts the rows its events touch, as the projections do):\n");
    println!("| table | statements | rows written | rows per statement | rows in the table | writes per row |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (table, (statements, written)) in writes {
        let final_rows: usize = rows
            .iter()
            .find_map(|row| row.strip_prefix(&format!("{table} "))?.split(' ').next()?.parse().ok())
            .unwrap_or(0);
        println!(
            "| {table} | {statements} | {written} | {:.1} | {final_rows} | {:.1} |",
            *written as f64 / *statements as f64,
            *written as f64 / final_rows as f64
        );
    }
}

/// Each blue/green run's phases per projection, from the timestamps the
/// rebuild recorded, beside the seconds the command printed for it.
fn report_phases(runs: &[(&str, &Timed)]) {
    println!(
        "\nThe phases of each blue/green rebuild, from the timestamps it records in `projection_generations`: \
         build (the next generation, in batches), then verify (against the live one, page by page) and \
         promote (topping up and renaming), up to the promotion's stamp:\n"
    );
    println!(
        "| run | projection | build s | verify and promote s | as the command reports it, s | rows differing from live |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for (run, timed) in runs {
        for (name, phases) in &timed.phases {
            println!(
                "| {run} | {name} | {:.2} | {:.2} | {:.1} | {} |",
                phases.build,
                phases.verify_and_promote,
                timed.each.get(name).copied().unwrap_or(f64::NAN),
                timed.differences.get(name).copied().unwrap_or_default()
            );
        }
    }
}

/// The longest transaction seen on each run's database.
fn report_transactions(runs: &[(&str, &Timed)]) {
    println!(
        "\nThe longest transaction on each run's database, from `pg_stat_activity` sampled every 50 ms \
         (client backends; seen up to 50 ms short of its end), and the statement it was running then:\n"
    );
    println!("| run | whole run, s | longest transaction, s | its statement then |");
    println!("| --- | ---: | ---: | --- |");
    for (run, timed) in runs {
        println!(
            "| {run} | {:.1} | {:.2} | `{}` |",
            timed.total,
            timed.longest.seconds,
            timed.longest.query.replace('|', "\\|").replace('`', "'")
        );
    }
}
