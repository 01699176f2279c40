//! Reading and writing a batch's rows: the rows a batch touches are loaded
//! with one query, changed in memory, and written back with multi-row
//! upserts, instead of a statement per event, in the tables of the
//! generation the [`Writer`] names.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use sea_orm::sea_query::{Alias, OnConflict};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, IdenStatic, IntoActiveModel, Iterable, PrimaryKeyToColumn, QueryFilter,
    QueryTrait, Value,
};

use crate::generations::Writer;

/// The most bind parameters in one statement: under SQLite's limit
/// (32,766) and Postgres' (65,535).
const MAX_PARAMETERS: usize = 30_000;

/// The rows of `E` whose `column` is one of `keys` (repeats allowed), by that
/// key, from the writer's generation of `E`'s table.
pub async fn load<E, K>(
    writer: &Writer<'_>,
    column: E::Column,
    keys: impl IntoIterator<Item = K>,
    key_of: impl Fn(&E::Model) -> K,
) -> Result<HashMap<K, E::Model>, DbErr>
where
    E: EntityTrait,
    K: Eq + Hash + Into<Value>,
{
    let keys: HashSet<K> = keys.into_iter().collect();
    let mut rows = HashMap::with_capacity(keys.len());
    let mut keys = keys.into_iter().peekable();
    while keys.peek().is_some() {
        let chunk: Vec<K> = keys.by_ref().take(MAX_PARAMETERS).collect();
        let mut select = E::find().filter(column.is_in(chunk));
        // The generation's table under the entity's name, which the
        // filter's columns are qualified with.
        QueryTrait::query(&mut select)
            .from_clear()
            .from_as(Alias::new(writer.table(E::default().table_name())), E::default());
        for row in select.all(writer.transaction).await? {
            rows.insert(key_of(&row), row);
        }
    }
    Ok(rows)
}

/// Inserts `rows` into the writer's generation of `E`'s table, overwriting
/// every column of a row whose primary key is already there.
pub async fn upsert<E>(writer: &Writer<'_>, rows: impl IntoIterator<Item = E::Model>) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    let keys: Vec<E::Column> = E::PrimaryKey::iter().map(PrimaryKeyToColumn::into_column).collect();
    let is_key = |column: &E::Column| keys.iter().any(|key| key.as_str() == column.as_str());
    let others: Vec<E::Column> = E::Column::iter().filter(|column| !is_key(column)).collect();
    let on_conflict = OnConflict::columns(keys.clone()).update_columns(others).to_owned();
    let per_statement = MAX_PARAMETERS / E::Column::iter().count();
    let table = writer.table(E::default().table_name());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk = rows
            .by_ref()
            .take(per_statement)
            .map(IntoActiveModel::into_active_model);
        let mut insert = E::insert_many(chunk).on_conflict(on_conflict.clone());
        insert.query().into_table(Alias::new(&table));
        insert.exec_without_returning(writer.transaction).await?;
    }
    Ok(())
}
