//! Verifying a generation: comparing its rows with another generation's,
//! table by table, row by row (paired by primary key, compared column by
//! column), and reporting how many rows differ and the first differences
//! in full.
//!
//! Both generations are caught up first. Then each table is read in pages
//! in key order, each page in a short transaction of its own that holds
//! both generations' locks (their projectors wait that long; readers never
//! do) and first tops up the generation behind to the other's position, so
//! that both pages are read at one log position. Every row present when
//! the verification starts is compared at some position where both
//! generations stood level; as both apply the same events afterwards, rows
//! that agreed there keep agreeing. No transaction lasts longer than a
//! page, whatever the tables' sizes.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use event_store::{Position, StreamFilter};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, FromQueryResult, JsonValue, Statement, Value};
use serde::Serialize;
use views::checkpoint;

use super::rebuild::Rebuilder;
use super::{GenerationError, Slot, Writer, metrics, record, swap};
use crate::projection::{KeyKind, Table};
use crate::runner::{self, ProjectorError};

/// How many differences a report shows in full.
pub const SHOWN: usize = 10;

/// Rows read from each generation in one page.
const PAGE: usize = 2_000;

/// What a verification found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub projection: String,
    /// The generation verified, and the one it was compared with.
    pub generation: Slot,
    pub compared_with: Slot,
    /// The log position both stood at for the last page.
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

/// Compares `generation` of the rebuilder's projection with `compared_with`,
/// records the result with `generation` and in the metrics, and returns it.
pub async fn verify(rebuilder: &Rebuilder, generation: Slot, compared_with: Slot) -> Result<Report, GenerationError> {
    let projection = rebuilder.projection.as_ref();
    let name = projection.name();
    for slot in [generation, compared_with] {
        if !rebuilder.has(slot).await? {
            return Err(GenerationError::Missing { projection: name, slot });
        }
        rebuilder.catch_up(slot).await?;
    }
    let mut report = Report {
        projection: name.to_owned(),
        generation,
        compared_with,
        position: None,
        tables: Vec::new(),
        differences: 0,
        first: Vec::new(),
    };
    for table in projection.tables() {
        compare_table(rebuilder, table, &mut report).await?;
    }
    let verified = record::Verified {
        compared_with: &compared_with.name(name),
        position: report.position,
        differences: report.differences,
        report: serde_json::to_string(&report).unwrap_or_default(),
    };
    record::verified(&rebuilder.db, name, generation, verified).await?;
    metrics::verified(name, generation, report.differences, chrono::Utc::now());
    Ok(report)
}

/// Compares `table` in the report's two generations a page at a time,
/// adding what differs to the report.
async fn compare_table(
    rebuilder: &Rebuilder,
    table: &'static Table,
    report: &mut Report,
) -> Result<(), GenerationError> {
    let mut counts = TableRows {
        table: table.name,
        rows: 0,
        compared_rows: 0,
    };
    let mut after: Option<Vec<JsonValue>> = None;
    loop {
        let started = tokio::time::Instant::now();
        let transaction = swap::locked(rebuilder, &[report.generation, report.compared_with]).await?;
        report.position = level(rebuilder, &transaction, [report.generation, report.compared_with]).await?;
        let rows = page(&transaction, table, report.generation, after.as_deref()).await?;
        let others = page(&transaction, table, report.compared_with, after.as_deref()).await?;
        transaction.commit().await.map_err(ProjectorError::from)?;
        let Some(upto) = page_end(&rows, &others) else {
            let upto = None;
            compare_rows(table, rows, others, upto, &mut counts, report);
            break;
        };
        compare_rows(table, rows, others, Some(&upto), &mut counts, report);
        after = Some(upto);
        rebuilder.pace.rest(started).await;
    }
    report.tables.push(counts);
    Ok(())
}

/// Where the compared range of two pages ends: the smaller of their last
/// keys, among the pages that are full (a page that is not full holds
/// every row left); `None` when neither is full: the range runs to the end.
fn page_end(rows: &[(Vec<JsonValue>, JsonValue)], others: &[(Vec<JsonValue>, JsonValue)]) -> Option<Vec<JsonValue>> {
    fn last_of_full(page: &[(Vec<JsonValue>, JsonValue)]) -> Option<&(Vec<JsonValue>, JsonValue)> {
        if page.len() >= PAGE { page.last() } else { None }
    }
    match (last_of_full(rows), last_of_full(others)) {
        (Some((a, _)), Some((b, _))) => Some(if compare_keys(a, b) == Ordering::Less { a } else { b }.clone()),
        (Some((last, _)), None) | (None, Some((last, _))) => Some(last.clone()),
        (None, None) => None,
    }
}

/// Compares the rows of two pages up to `upto` (inclusive; all of them
/// without it), counting them and what differs.
fn compare_rows(
    table: &'static Table,
    rows: Vec<(Vec<JsonValue>, JsonValue)>,
    others: Vec<(Vec<JsonValue>, JsonValue)>,
    upto: Option<&Vec<JsonValue>>,
    counts: &mut TableRows,
    report: &mut Report,
) {
    let within = |key: &Vec<JsonValue>| upto.is_none_or(|upto| compare_keys(key, upto) != Ordering::Greater);
    let mut paired: BTreeMap<String, (Option<JsonValue>, Option<JsonValue>)> = BTreeMap::new();
    for (key, row) in rows.into_iter().filter(|(key, _)| within(key)) {
        counts.rows += 1;
        paired.entry(key_text(&key)).or_default().0 = Some(row);
    }
    for (key, row) in others.into_iter().filter(|(key, _)| within(key)) {
        counts.compared_rows += 1;
        paired.entry(key_text(&key)).or_default().1 = Some(row);
    }
    for (key, (row, compared_row)) in paired {
        if row.is_some() && row == compared_row {
            continue;
        }
        report.differences += 1;
        if report.first.len() < SHOWN {
            report.first.push(Difference {
                table: table.name,
                columns: differing_columns(row.as_ref(), compared_row.as_ref()),
                key: serde_json::from_str(&key).unwrap_or(JsonValue::Null),
                row,
                compared_row,
            });
        }
    }
}

/// Up to [`PAGE`] rows of `slot`'s copy of `table` after the key `after`
/// (from the first without it), in key order, each with its key.
async fn page(
    transaction: &DatabaseTransaction,
    table: &Table,
    slot: Slot,
    after: Option<&[JsonValue]>,
) -> Result<Vec<(Vec<JsonValue>, JsonValue)>, DbErr> {
    let backend = transaction.get_database_backend();
    let column = |index: usize| format!(r#""{}""#, table.key[index].column);
    let order = (0..table.key.len()).map(column).collect::<Vec<_>>().join(", ");
    let (condition, values) = match after {
        Some(after) => after_key(table, after, backend)?,
        None => ("1 = 1".to_owned(), Vec::new()),
    };
    let name = slot.name(table.name);
    let sql = format!(r#"SELECT * FROM "{name}" WHERE {condition} ORDER BY {order} LIMIT {PAGE}"#);
    let rows = JsonValue::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
        .all(transaction)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (table.key.iter().map(|key| row[key.column].clone()).collect(), row))
        .collect())
}

/// The condition "the key comes after `after`" in key order, and its
/// values: a row-value comparison, `("k1", "k2") > ($1, $2)`, which both
/// Postgres and SQLite answer with a range scan of the primary key's
/// index. (Spelled `k1 > v1 OR (k1 = v1 AND k2 > v2)` it is a filter over
/// the index from its start instead: every page then reads all the rows
/// before it, and a verification takes time quadratic in the table's size.)
fn after_key(table: &Table, after: &[JsonValue], backend: DbBackend) -> Result<(String, Vec<Value>), DbErr> {
    let mut values = Vec::new();
    for (key, value) in table.key.iter().zip(after) {
        let unreadable = || DbErr::Custom(format!("key {} of {} reads as {value}", key.column, table.name));
        values.push(match key.kind {
            KeyKind::Uuid => {
                let text = value.as_str().ok_or_else(unreadable)?;
                Value::Uuid(Some(uuid::Uuid::parse_str(text).map_err(|_| unreadable())?))
            }
            KeyKind::Integer => Value::BigInt(Some(value.as_i64().ok_or_else(unreadable)?)),
        });
    }
    let columns: Vec<String> = table.key.iter().map(|key| format!(r#""{}""#, key.column)).collect();
    let placeholders: Vec<String> = (1..=values.len())
        .map(|n| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        })
        .collect();
    let condition = match columns.len() {
        1 => format!("{} > {}", columns[0], placeholders[0]),
        _ => format!("({}) > ({})", columns.join(", "), placeholders.join(", ")),
    };
    Ok((condition, values))
}

/// The databases' order of keys: UUIDs as their bytes (which their
/// lower-case text keeps), integers as numbers.
fn compare_keys(a: &[JsonValue], b: &[JsonValue]) -> Ordering {
    for (a, b) in a.iter().zip(b) {
        let order = match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => a.as_str().unwrap_or_default().cmp(b.as_str().unwrap_or_default()),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

fn key_text(key: &[JsonValue]) -> String {
    serde_json::to_string(key).unwrap_or_default()
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
        checkpoint::load(transaction, &slots[0].name(name))
            .await
            .map_err(ProjectorError::from)?,
        checkpoint::load(transaction, &slots[1].name(name))
            .await
            .map_err(ProjectorError::from)?,
    ];
    let (behind, mut from, to) = if a < b { (slots[0], a, b) } else { (slots[1], b, a) };
    let Some(to) = to else { return Ok(None) };
    let writer = Writer {
        transaction,
        slot: behind,
    };
    while from < Some(to) {
        let batch = rebuilder
            .store
            .read_all(from, rebuilder.options.batch_size, &StreamFilter::all())
            .await
            .map_err(ProjectorError::from)?;
        let batch: Vec<_> = batch.into_iter().take_while(|event| event.position <= to).collect();
        let Some(last) = batch.last().map(|event| event.position) else {
            break;
        };
        runner::apply(&writer, rebuilder.projection.as_ref(), &batch).await?;
        if behind == Slot::Next {
            record::progress(transaction, name, batch.len() as u64).await?;
        }
        from = Some(last);
    }
    checkpoint::overwrite(transaction, &behind.name(name), Some(to))
        .await
        .map_err(ProjectorError::from)?;
    Ok(Some(to))
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
    }

    #[test]
    fn keys_compare_as_the_databases_order_them() {
        let key = |uuid: &str, line: i64| vec![json!(uuid), json!(line)];
        let (low, high) = (
            "0a000000-0000-0000-0000-000000000000",
            "f0000000-0000-0000-0000-000000000000",
        );
        assert_eq!(compare_keys(&key(low, 9), &key(high, 1)), Ordering::Less);
        assert_eq!(
            compare_keys(&key(low, 2), &key(low, 10)),
            Ordering::Less,
            "numbers, not text"
        );
        assert_eq!(compare_keys(&key(high, 3), &key(high, 3)), Ordering::Equal);
    }

    #[test]
    fn after_a_key_is_a_row_value_comparison_the_index_answers() {
        const LINES: Table = Table {
            name: "order_lines",
            key: &[
                crate::projection::Key::uuid("order_id"),
                crate::projection::Key::integer("line_no"),
            ],
        };
        let table = LINES;
        let id = "0a000000-0000-0000-0000-000000000000";
        let (condition, values) = after_key(&table, &[json!(id), json!(2)], DbBackend::Postgres).unwrap();
        assert_eq!(condition, r#"("order_id", "line_no") > ($1, $2)"#);
        assert_eq!(values.len(), 2);
        let (condition, _) = after_key(&table, &[json!(id), json!(2)], DbBackend::Sqlite).unwrap();
        assert_eq!(condition, r#"("order_id", "line_no") > (?, ?)"#);
        const PRODUCTS: Table = Table {
            name: "products",
            key: &[crate::projection::Key::uuid("product_id")],
        };
        let (condition, _) = after_key(&PRODUCTS, &[json!(id)], DbBackend::Postgres).unwrap();
        assert_eq!(condition, r#""product_id" > $1"#);
        assert!(after_key(&table, &[json!(7), json!(2)], DbBackend::Sqlite).is_err());
    }
}
