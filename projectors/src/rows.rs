//! Reading and writing a batch's rows: the rows a batch touches are loaded
//! with one query, changed in memory, and written back with multi-row
//! upserts, instead of a statement per event.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IdenStatic, IntoActiveModel, Iterable, PrimaryKeyToColumn,
    QueryFilter, Value,
};

/// The most bind parameters in one statement: under SQLite's limit
/// (32,766) and Postgres' (65,535).
const MAX_PARAMETERS: usize = 30_000;

/// The rows of `E` whose `column` is one of `keys` (repeats allowed), by that
/// key.
pub async fn load<E, K>(
    db: &impl ConnectionTrait,
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
        for row in E::find().filter(column.is_in(chunk)).all(db).await? {
            rows.insert(key_of(&row), row);
        }
    }
    Ok(rows)
}

/// Inserts `rows`, overwriting every column of a row whose primary key is
/// already there.
pub async fn upsert<E>(db: &impl ConnectionTrait, rows: impl IntoIterator<Item = E::Model>) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    let keys: Vec<E::Column> = E::PrimaryKey::iter().map(PrimaryKeyToColumn::into_column).collect();
    let is_key = |column: &E::Column| keys.iter().any(|key| key.as_str() == column.as_str());
    let others: Vec<E::Column> = E::Column::iter().filter(|column| !is_key(column)).collect();
    let on_conflict = OnConflict::columns(keys.clone()).update_columns(others).to_owned();
    let per_statement = MAX_PARAMETERS / E::Column::iter().count();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk = rows
            .by_ref()
            .take(per_statement)
            .map(IntoActiveModel::into_active_model);
        E::insert_many(chunk)
            .on_conflict(on_conflict.clone())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}
