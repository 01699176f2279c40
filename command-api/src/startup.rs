//! Wiring: from a store and a configuration to a listening server, with the
//! order saga and the decision watcher running beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use api_common::problem::ErrorChain;
use api_common::serve::Server;
use api_common::startup_wait::{Failure, until_available};
use domain::order::Order;
use domain::product::Product;
use event_store::EventStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::accounts::{Accounts, AccountsError};
use crate::aggregates::{Aggregates, Causation};
use crate::auth::passwords::{HashingError, Passwords};
use crate::auth::throttle::Throttle;
use crate::auth::tokens::Tokens;
use crate::auth::versions::StoreVersions;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::http::{self, Services};
use crate::order_outcomes::OrderOutcomes;
use crate::orders::Orders;
use crate::saga::admin::ParkedAdmin;
use crate::saga::health::SagaHealth;
use crate::saga::{self, OrderSaga};
use crate::settlement::Settlement;
use crate::webhook::Webhooks;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up password hashing: {0}")]
    Passwords(#[source] HashingError),
    /// Printed by the binaries as one line, so it names every cause.
    #[error("cannot ensure the configured administrator: {}", ErrorChain(.0))]
    Admin(#[from] AccountsError),
}

/// The event store at `url`, once it answers (its head reads), waited for
/// with back-off up to `within` (`STARTUP_WAIT_MS`); the error redacts the
/// URL's password.
pub async fn store_when_available(url: &str, within: std::time::Duration) -> Result<Arc<dyn EventStore>, String> {
    let failure = |e: event_store::StoreError| {
        let passing = matches!(e, event_store::StoreError::Unavailable { .. });
        Failure::of(passing, api_common::redact::url_error(url, e))
    };
    until_available("the event store", within, || async {
        let store = event_store::connect(url).map_err(failure)?;
        store.head().await.map_err(failure)?;
        Ok(store)
    })
    .await
}

/// A running command API.
pub struct CommandApi {
    /// Where it listens (with the real port when port 0 was asked for).
    pub address: SocketAddr,
    /// The public keys that verify its tokens (the signing key's, then the
    /// previous ones), as PEMs one after the other.
    pub public_key_pem: String,
    /// The catalog service, for seeding sample products.
    pub catalog: Arc<Catalog>,
    server: Server,
    saga: Option<JoinHandle<()>>,
}

impl CommandApi {
    /// Waits until the server and saga have stopped after shutdown.
    pub async fn stopped(self) -> std::io::Result<()> {
        if let Some(saga) = self.saga {
            let _ = saga.await;
        }
        self.server.stopped().await
    }
}

/// The command side's parts: what the HTTP operations use, and the
/// aggregates the saga shares with them.
struct Parts {
    services: Services,
    products: Arc<Aggregates<Product>>,
    orders: Arc<Aggregates<Order>>,
}

/// The aggregates and services of the command side, without HTTP.
fn parts(store: Arc<dyn EventStore>, config: &Config, outcomes: Arc<OrderOutcomes>) -> Result<Parts, StartError> {
    let versions = StoreVersions::new(Arc::clone(&store));
    let tokens = Arc::new(
        Tokens::new(
            config.signing_key.clone(),
            config.issuer.clone(),
            config.audience.clone(),
            config.token_lifetime,
        )
        .with_previous_keys(config.previous_keys.clone())
        .with_versions(Arc::new(versions.clone())),
    );
    let passwords = Passwords::new(config.hash_queue).map_err(StartError::Passwords)?;
    let products = Arc::new(Aggregates::<Product>::new(Arc::clone(&store)));
    let orders = Arc::new(Aggregates::<Order>::new(Arc::clone(&store)));
    let parked = Arc::new(ParkedAdmin::new(
        Arc::clone(&store),
        Arc::clone(&orders),
        config.saga.payment_window,
    ));
    let services = Services {
        accounts: Arc::new(Accounts::new(
            &store,
            passwords,
            Arc::clone(&tokens),
            versions,
            Throttle::new(&config.throttle),
        )),
        catalog: Arc::new(Catalog::new(Arc::clone(&products))),
        orders: Arc::new(Orders::new(
            Arc::clone(&orders),
            outcomes,
            config.order_wait,
            config.max_order_waiters,
        )),
        settlement: Arc::new(Settlement::new(Arc::clone(&orders))),
        webhooks: Arc::new(Webhooks::new(config.payment_webhook_secret.clone())),
        tokens,
        store,
        parked,
        saga_health: config.run_saga.then(|| SagaHealth::new(config.saga.lag_limit)),
    };
    Ok(Parts {
        services,
        products,
        orders,
    })
}

/// Starts the command API (and, if configured, the order saga) on `store`;
/// everything stops when `shutdown` is cancelled.
pub async fn start(
    store: Arc<dyn EventStore>,
    config: Config,
    shutdown: CancellationToken,
) -> Result<CommandApi, StartError> {
    let outcomes = OrderOutcomes::start(Arc::clone(&store), shutdown.clone()).await;
    let Parts {
        services,
        products,
        orders,
    } = parts(Arc::clone(&store), &config, outcomes)?;
    if let Some((username, password)) = &config.admin {
        let causation = Causation::request(uuid::Uuid::now_v7(), None);
        services.accounts.ensure_admin(username, password, causation).await?;
        tracing::info!(%username, "administrator ready");
    }
    let saga = config.run_saga.then(|| {
        let saga = OrderSaga::new(Arc::clone(&store), products, orders, config.saga.clone());
        let saga = match &services.saga_health {
            Some(health) => saga.with_health(Arc::clone(health)),
            None => saga,
        };
        tokio::spawn(saga::supervise(saga, shutdown.clone()))
    });
    let routes = http::routes(&services);
    let server = api_common::serve::serve_within("command API", config.listen, config.http, routes, shutdown)
        .await
        .map_err(|source| StartError::Listen {
            address: config.listen,
            source,
        })?;
    Ok(CommandApi {
        address: server.address,
        public_key_pem: services.tokens.verifier().keys_pem(),
        catalog: services.catalog,
        server,
        saga,
    })
}
