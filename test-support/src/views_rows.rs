//! Every row of a SQLite views database as JSON, table by table: what a
//! test compares between two databases (the views a system kept through
//! faults, and a fresh replay of the same log) and reads its invariants
//! from, whatever columns the migrations add.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
use serde_json::Value;

/// The rows of every live table of the SQLite database at `url` (not a
/// projection's next or previous generation) but `skipped` (bookkeeping
/// such as checkpoints and leases), each as a JSON object
/// from column name to value, sorted, so two databases holding the same
/// rows compare equal. BLOBs (SQLite's UUIDs) are lower-case hex, without
/// dashes. The tables are read in one transaction: one moment's rows.
pub async fn snapshot(url: &str, skipped: &[&str]) -> Result<BTreeMap<String, Vec<Value>>, String> {
    let db = Database::connect(url).await.map_err(|e| format!("{url}: {e}"))?;
    if db.get_database_backend() != DbBackend::Sqlite {
        return Err(format!("{url}: SQLite views only"));
    }
    let read = async {
        let transaction = db.begin().await.map_err(|e| e.to_string())?;
        let mut tables = BTreeMap::new();
        for table in names(
            &transaction,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .await?
        {
            // A replay's previous (or next) generation is not what readers
            // see: only the live tables are compared.
            let generation = ["__next", "__prev", "__swap"]
                .iter()
                .any(|suffix| table.ends_with(suffix));
            if !skipped.contains(&table.as_str()) && !generation {
                let rows = rows(&transaction, &table).await?;
                tables.insert(table, rows);
            }
        }
        Ok::<_, String>(tables)
    };
    let tables = read.await;
    let _ = db.close().await;
    tables
}

/// The first column of every row `sql` answers, as text.
async fn names(db: &impl ConnectionTrait, sql: &str) -> Result<Vec<String>, String> {
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .map_err(|e| format!("{sql}: {e}"))?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).map_err(|e| format!("{sql}: {e}")))
        .collect()
}

/// Every row of `table`, each as one JSON object built by SQLite itself.
async fn rows(db: &impl ConnectionTrait, table: &str) -> Result<Vec<Value>, String> {
    let columns = names(db, &format!("SELECT name FROM pragma_table_info('{table}')")).await?;
    let pairs: Vec<String> = columns
        .iter()
        .map(|column| {
            format!(
                "'{column}', CASE WHEN typeof(\"{column}\") = 'blob' THEN lower(hex(\"{column}\")) ELSE \"{column}\" END"
            )
        })
        .collect();
    let sql = format!("SELECT json_object({}) FROM \"{table}\"", pairs.join(", "));
    let mut rows = names(db, &sql)
        .await?
        .iter()
        .map(|text| serde_json::from_str(text).map_err(|e| format!("{table}: {e}")))
        .collect::<Result<Vec<Value>, String>>()?;
    rows.sort_by_key(Value::to_string);
    Ok(rows)
}
