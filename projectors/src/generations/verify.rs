//! Verifying a generation: comparing its rows with another generation's at
//! the same log position, table by table, row by row (paired by primary
//! key, compared by a digest of every column), and reporting how many rows
//! differ and the first differences in full.
//!
//! Both generations are brought to the same position first: each is caught
//! up in batches, then, holding both generations' locks (their projectors
//! wait), the one behind is topped up to the other inside the comparing
//! transaction. Readers are not held up; the projectors of the two
//! generations are, for as long as the comparison reads.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use event_store::{Position, StreamFilter};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, FromQueryResult, JsonValue, Statement};
use serde::Serialize;
use views::checkpoint;

use super::rebuild::Rebuilder;
use super::{GenerationError, Slot, Writer, record};
use crate::database;
use crate::projection::Table;
use crate::runner::{self, ProjectorError};

/// How many differences a report shows in full.
pub const SHOWN: usize = 10;

/// Rows read at once while comparing.
const PAGE: u64 = 5_000;

/// What a verification found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub projection: String,
    /// The generation verified, and the one it was compared with.
    pub generation: Slot,
    pub compared_with: Slot,
    /// The log position both stood at.
    pub position: Option<Position>,
    pub tables: Vec<TableRows>,
    /// Rows that differ, or are in one generation only.
    pub differences: u64,
    /// The first [`SHOWN`] of them.
    pub first: Vec<Difference>,
}

/// How many rows a table has in each generation.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRows {
    pub table: &'static str,
    pub rows: u64,
    pub compared_rows: u64,
}

/// A row that differs: its key and both versions (absent where a
/// generation has no such row), with the columns that differ.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub table: &'static str,
    pub key: JsonValue,
    pub columns: Vec<String>,
    pub row: Option<JsonValue>,
    pub compared_row: Option<JsonValue>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.differences == 0
    }
}

/// Compares `generation` of the rebuilder's projection with `compared_with`
/// at one log position, records the result with `generation` and in the
/// metrics, and returns it.
pub async fn verify(rebuilder: &Rebuilder, generation: Slot, compared_with: Slot) -> Result<Report, GenerationError> {
    let projection = rebuilder.projection.as_ref();
    let name = projection.name();
    for slot in [generation, compared_with] {
        if !rebuilder.has(slot).await? {
            return Err(GenerationError::Missing { projection: name, slot });
        }
        rebuilder.catch_up(slot).await?;
    }
    let transaction = database::begin_write(&rebuilder.db).await?;
    let mut keys = [generation.name(name), compared_with.name(name)];
    keys.sort();
    for key in &keys {
        database::lock_projection(&transaction, key).await?;
    }
    let position = level(rebuilder, &transaction, [generation, compared_with]).await?;
    let mut report = Report {
        projection: name.to_owned(),
        generation,
        compared_with,
        position,
        tables: Vec::new(),
        differences: 0,
        first: Vec::new(),
    };
    for table in projection.tables() {
        compare(&transaction, table, &mut report).await?;
    }
    let verified = record::Verified {
        compared_with: &compared_with.name(name),
        position,
        differences: report.differences,
        report: serde_json::to_string(&report).unwrap_or_default(),
    };
    record::verified(&transaction, name, generation, verified).await?;
    transaction.commit().await.map_err(ProjectorError::from)?;
    let labels = [("projection", name.to_owned()), ("generation", generation.label().to_owned())];
    metrics::gauge!("projection_verify_differences", &labels).set(report.differences as f64);
    metrics::gauge!("projection_verify_timestamp_seconds", &labels).set(chrono::Utc::now().timestamp() as f64);
    Ok(report)
}

/// Brings the generation behind up to the other's position inside
/// `transaction` (both locked); the position both stand at.
pub(super) async fn level(
    rebuilder: &Rebuilder,
    transaction: &DatabaseTransaction,
    slots: [Slot; 2],
) -> Result<Option<Position>, GenerationError> {
    let name = rebuilder.projection.name();
    let [a, b] = [
        checkpoint::load(transaction, &slots[0].name(name)).await.map_err(ProjectorError::from)?,
        checkpoint::load(transaction, &slots[1].name(name)).await.map_err(ProjectorError::from)?,
    ];
    let (behind, mut from, to) = if a < b { (slots[0], a, b) } else { (slots[1], b, a) };
    let Some(to) = to else { return Ok(None) };
    let writer = Writer { transaction, slot: behind };
    while from < Some(to) {
        let batch = rebuilder
            .store
            .read_all(from, rebuilder.options.batch_size, &StreamFilter::all())
            .await
            .map_err(ProjectorError::from)?;
        let batch: Vec<_> = batch.into_iter().take_while(|event| event.position <= to).collect();
        let Some(last) = batch.last().map(|event| event.position) else { break };
        runner::apply(&writer, rebuilder.projection.as_ref(), &batch).await?;
        from = Some(last);
    }
    checkpoint::overwrite(transaction, &behind.name(name), Some(to)).await.map_err(ProjectorError::from)?;
    Ok(Some(to))
}

/// Compares `table` in the report's two generations, adding what differs.
async fn compare(transaction: &DatabaseTransaction, table: &Table, report: &mut Report) -> Result<(), DbErr> {
    let mut compared = digests(transaction, table, report.compared_with).await?;
    let compared_rows = compared.len() as u64;
    let mut rows = 0;
    let mut shown = Vec::new();
    read_pages(transaction, table, report.generation, |key, row| {
        rows += 1;
        let same = compared.remove(&key).is_some_and(|digest| digest == digest_of(row));
        if !same {
            report.differences += 1;
            if report.first.len() + shown.len() < SHOWN {
                shown.push((key, Some(row.clone())));
            }
        }
    })
    .await?;
    report.differences += compared.len() as u64;
    let room = SHOWN.saturating_sub(report.first.len() + shown.len());
    shown.extend(compared.into_keys().take(room).map(|key| (key, None)));
    let mut others = rows_at(transaction, table, report.compared_with, shown.iter().map(|(key, _)| key)).await?;
    for (key, row) in shown {
        let compared_row = others.remove(&key);
        report.first.push(Difference {
            table: table.name,
            columns: differing_columns(row.as_ref(), compared_row.as_ref()),
            key: serde_json::from_str(&key).unwrap_or(JsonValue::Null),
            row,
            compared_row,
        });
    }
    report.tables.push(TableRows {
        table: table.name,
        rows,
        compared_rows,
    });
    Ok(())
}

/// Each row's key (as JSON text) and digest, in `slot`'s copy of `table`.
async fn digests(transaction: &DatabaseTransaction, table: &Table, slot: Slot) -> Result<HashMap<String, u64>, DbErr> {
    let mut digests = HashMap::new();
    read_pages(transaction, table, slot, |key, row| {
        digests.insert(key, digest_of(row));
    })
    .await?;
    Ok(digests)
}

/// The rows of `slot`'s copy of `table` whose keys are `keys`, by key.
async fn rows_at<'k>(
    transaction: &DatabaseTransaction,
    table: &Table,
    slot: Slot,
    keys: impl Iterator<Item = &'k String>,
) -> Result<HashMap<String, JsonValue>, DbErr> {
    let wanted: std::collections::HashSet<&String> = keys.collect();
    let mut rows = HashMap::new();
    if wanted.is_empty() {
        return Ok(rows);
    }
    read_pages(transaction, table, slot, |key, row| {
        if wanted.contains(&key) {
            rows.insert(key, row.clone());
        }
    })
    .await?;
    Ok(rows)
}

/// Calls `each` with every row of `slot`'s copy of `table` (its key as
/// JSON text, and the row), a page at a time in key order.
async fn read_pages(
    transaction: &DatabaseTransaction,
    table: &Table,
    slot: Slot,
    mut each: impl FnMut(String, &JsonValue),
) -> Result<(), DbErr> {
    let order = table.key.iter().map(|column| format!(r#""{column}""#)).collect::<Vec<_>>().join(", ");
    let name = slot.name(table.name);
    let backend = transaction.get_database_backend();
    for page in 0.. {
        let sql = format!(r#"SELECT * FROM "{name}" ORDER BY {order} LIMIT {PAGE} OFFSET {}"#, page * PAGE);
        let rows = JsonValue::find_by_statement(Statement::from_string(backend, sql)).all(transaction).await?;
        for row in &rows {
            let key: Vec<&JsonValue> = table.key.iter().map(|column| &row[*column]).collect();
            each(serde_json::to_string(&key).unwrap_or_default(), row);
        }
        if (rows.len() as u64) < PAGE {
            break;
        }
    }
    Ok(())
}

/// A digest of every column of `row`.
fn digest_of(row: &JsonValue) -> u64 {
    let mut hasher = DefaultHasher::new();
    if let Some(columns) = row.as_object() {
        let sorted: std::collections::BTreeMap<_, _> = columns.iter().collect();
        for (column, value) in sorted {
            (column, value.to_string()).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The columns whose values differ between two versions of a row (all of
/// them when one is missing).
fn differing_columns(row: Option<&JsonValue>, other: Option<&JsonValue>) -> Vec<String> {
    let columns = |row: Option<&JsonValue>| row.and_then(JsonValue::as_object).cloned().unwrap_or_default();
    let (row, other) = (columns(row), columns(other));
    let mut names: Vec<String> = row.keys().chain(other.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names.retain(|name| row.get(name) != other.get(name));
    names
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_columns_that_differ_are_named() {
        let row = json!({"id": 1, "name": "Lamp", "available": 4});
        let other = json!({"id": 1, "name": "Lamp", "available": 5});
        assert_eq!(differing_columns(Some(&row), Some(&other)), ["available"]);
        assert_eq!(differing_columns(Some(&row), None), ["available", "id", "name"]);
        assert_eq!(digest_of(&row), digest_of(&row.clone()));
        assert_ne!(digest_of(&row), digest_of(&other));
    }
}
