//! The longest transaction open on a database while a run goes on, seen
//! from outside in `pg_stat_activity`: issue #13 bounds a rebuild's longest
//! transaction (under 5 s whatever the log's size), and an observer does
//! not depend on the rebuild timing itself correctly.
//!
//! Every 50 ms it reads the oldest open transaction of the database's
//! client backends (not autovacuum, not the sampler), so a transaction is
//! seen at most about 50 ms short of its full length.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const EVERY: Duration = Duration::from_millis(50);

const OLDEST: &str = "SELECT extract(epoch FROM clock_timestamp() - xact_start)::float8 AS seconds, \
     left(regexp_replace(query, '\\s+', ' ', 'g'), 48) AS query \
     FROM pg_stat_activity \
     WHERE datname = $1 AND backend_type = 'client backend' \
     AND xact_start IS NOT NULL AND pid <> pg_backend_pid() \
     ORDER BY xact_start LIMIT 1";

/// The longest transaction seen: its age when last seen, and the start of
/// the statement it was running then.
#[derive(Debug, Clone, Default)]
pub struct Longest {
    pub seconds: f64,
    pub query: String,
}

/// A sampler running beside a run.
pub struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<Longest>,
}

impl Sampler {
    /// Starts sampling the transactions on `database`, through the server
    /// at `server`.
    pub async fn start(server: &str, database: &str) -> Self {
        let db = Database::connect(server).await.unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(sample(db, database.to_owned(), stop.clone()));
        Self { stop, task }
    }

    /// Stops sampling; the longest transaction seen.
    pub async fn stop(self) -> Longest {
        self.stop.cancel();
        self.task.await.unwrap()
    }
}

async fn sample(db: DatabaseConnection, database: String, stop: CancellationToken) -> Longest {
    let mut longest = Longest::default();
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.run_until_cancelled(ticks.tick()).await.is_some() {
        let oldest = Statement::from_sql_and_values(DbBackend::Postgres, OLDEST, [database.clone().into()]);
        let Some(row) = db.query_one_raw(oldest).await.unwrap() else {
            continue;
        };
        let seconds: f64 = row.try_get("", "seconds").unwrap();
        if seconds > longest.seconds {
            let query: Option<String> = row.try_get("", "query").unwrap();
            longest = Longest {
                seconds,
                query: query.unwrap_or_default(),
            };
        }
    }
    db.close().await.unwrap();
    longest
}
