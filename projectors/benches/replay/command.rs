//! `projectors replay all` and `projectors rebuild all` as users run them
//! (a child process), and what they report: each projection's time and
//! differences from the command's output, and the phases of its blue/green
//! rebuild from the timestamps the rebuild leaves in
//! `projection_generations` (started, built, promoted), so the
//! command needs no timing of its own for the bench.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// What one run of the command reported.
pub struct Reported {
    /// The whole command, process start to exit.
    pub total: Duration,
    /// Each projection's seconds, as the command prints them.
    pub each: BTreeMap<String, f64>,
    /// Each projection's rows that differed between the rebuilt
    /// generation and the live one.
    pub differences: BTreeMap<String, u64>,
}

/// Runs `projectors <mode> all` on the log in the SQLite `store` and the
/// views at `views_url`; stops the bench if it fails.
pub fn run(mode: &str, store: &Path, views_url: &str) -> Reported {
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_projectors"))
        .args([mode, "all"])
        .env("EVENT_STORE_URL", format!("sqlite://{}", store.display()))
        .env("VIEWS_DATABASE_URL", views_url)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let total = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "projectors {mode} all failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Reported {
        total,
        each: seconds(&stdout),
        differences: differences(&stdout),
    }
}

/// "catalog: rebuilt and promoted at position 1000000 in 4.2 s": 4.2 for
/// catalog.
fn seconds(stdout: &str) -> BTreeMap<String, f64> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(": rebuilt and promoted at position ")?;
            let seconds = rest.rsplit_once(" in ")?.1.strip_suffix(" s")?.parse().ok()?;
            Some((name.to_owned(), seconds))
        })
        .collect()
}

/// "catalog: next generation against live at position 1000000: 1000 rows
/// differ": 1000 for catalog.
fn differences(stdout: &str) -> BTreeMap<String, u64> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(": next generation against live at position ")?;
            let rows = rest.rsplit_once(": ")?.1.strip_suffix(" rows differ")?.parse().ok()?;
            Some((name.to_owned(), rows))
        })
        .collect()
}

/// The seconds a projection's last blue/green rebuild spent in each phase.
#[derive(Clone, Copy)]
pub struct Phases {
    /// Creating the next generation and applying the log to it in batches.
    pub build: f64,
    /// Comparing it with the live generation page by page, then topping it
    /// up and renaming the tables, up to the promotion's stamp. (A
    /// promotion clears the verification's stamp from the record: said of
    /// the new live generation it would mislead, so the two are one here.)
    pub verify_and_promote: f64,
}

/// The phases of the rebuild that made each projection's live generation,
/// from its record in `projection_generations`.
pub async fn phases(db: &DatabaseConnection) -> BTreeMap<String, Phases> {
    let sql = "SELECT projection, \
         extract(epoch FROM built_at - started_at)::float8 AS build, \
         extract(epoch FROM promoted_at - built_at)::float8 AS verify_and_promote \
         FROM projection_generations WHERE generation = projection";
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let phases = Phases {
                build: row.try_get("", "build").unwrap(),
                verify_and_promote: row.try_get("", "verify_and_promote").unwrap(),
            };
            (row.try_get("", "projection").unwrap(), phases)
        })
        .collect()
}
