//! A generation's tables: created as copies of the live ones (columns,
//! constraints and indexes as the migrations left them, no rows), dropped,
//! and renamed from one generation to another with their indexes, so that
//! the live tables always carry the names the migrations gave them.
//!
//! The copies follow the database's own record of the live tables (the
//! catalog on Postgres, `sqlite_master` on SQLite), not a second
//! description of the schema that could drift from the migrations.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};

use super::Slot;
use crate::projection::Table;

/// Creates `slot`'s copy of each of `tables`, empty, with the live
/// table's columns, constraints and indexes.
pub async fn create(transaction: &DatabaseTransaction, tables: &[Table], slot: Slot) -> Result<(), DbErr> {
    for table in tables {
        match transaction.get_database_backend() {
            DbBackend::Postgres => postgres::copy(transaction, table.name, slot).await?,
            _ => sqlite::copy(transaction, table.name, slot).await?,
        }
    }
    Ok(())
}

/// Drops `slot`'s copies of `tables`, with their indexes, where they exist.
pub async fn remove(transaction: &DatabaseTransaction, tables: &[Table], slot: Slot) -> Result<(), DbErr> {
    for table in tables {
        let name = slot.name(table.name);
        transaction
            .execute_unprepared(&format!(r#"DROP TABLE IF EXISTS "{name}""#))
            .await?;
    }
    Ok(())
}

/// Renames `from`'s tables and their indexes to `to`'s names, which must
/// be free.
pub async fn rename(transaction: &DatabaseTransaction, tables: &[Table], from: Slot, to: Slot) -> Result<(), DbErr> {
    for table in tables {
        match transaction.get_database_backend() {
            DbBackend::Postgres => postgres::rename(transaction, table.name, from, to).await?,
            _ => sqlite::rename(transaction, table.name, from, to).await?,
        }
    }
    Ok(())
}

/// Whether `slot` has a copy of each of `tables`.
pub async fn exist(transaction: &impl ConnectionTrait, tables: &[Table], slot: Slot) -> Result<bool, DbErr> {
    for table in tables {
        if columns(transaction, &slot.name(table.name)).await?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The columns of `table` with their types, in order; none when it does
/// not exist. Two generations whose columns differ cannot replace each
/// other (a migration ran while a rebuild did).
pub async fn columns(db: &impl ConnectionTrait, table: &str) -> Result<Vec<(String, String)>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
        }
        _ => "SELECT name, type FROM pragma_table_info(?) ORDER BY cid",
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, [table.into()]))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("", "name")?, row.try_get("", "type")?)))
        .collect()
}

mod postgres {
    use super::*;

    /// `CREATE TABLE … (LIKE …)` copies columns, defaults and checks; the
    /// indexes are created under the generation's names, and the primary
    /// key and unique constraints put back on them.
    pub async fn copy(transaction: &DatabaseTransaction, table: &str, slot: Slot) -> Result<(), DbErr> {
        let copy = slot.name(table);
        transaction
            .execute_unprepared(&format!(
                r#"CREATE TABLE "{copy}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING IDENTITY)"#
            ))
            .await?;
        for index in indexes(transaction, table).await? {
            let Some(using) = index.definition.find(" USING ") else {
                return Err(DbErr::Custom(format!(
                    "unexpected index definition: {}",
                    index.definition
                )));
            };
            let unique = if index.definition.starts_with("CREATE UNIQUE") {
                "UNIQUE "
            } else {
                ""
            };
            let name = slot.name(&index.name);
            let rest = &index.definition[using..];
            transaction
                .execute_unprepared(&format!(r#"CREATE {unique}INDEX "{name}" ON "{copy}"{rest}"#))
                .await?;
            if let Some((constraint, kind)) = index.constraint {
                let constraint = slot.name(&constraint);
                transaction
                    .execute_unprepared(&format!(
                        r#"ALTER TABLE "{copy}" ADD CONSTRAINT "{constraint}" {kind} USING INDEX "{name}""#
                    ))
                    .await?;
            }
        }
        Ok(())
    }

    /// Renames the table and each of its indexes (with the constraint an
    /// index backs).
    pub async fn rename(transaction: &DatabaseTransaction, table: &str, from: Slot, to: Slot) -> Result<(), DbErr> {
        let (old, new) = (from.name(table), to.name(table));
        for index in indexes(transaction, &old).await? {
            let renamed = to.name(&index.name);
            transaction
                .execute_unprepared(&format!(r#"ALTER INDEX "{}" RENAME TO "{renamed}""#, index.name))
                .await?;
        }
        transaction
            .execute_unprepared(&format!(r#"ALTER TABLE "{old}" RENAME TO "{new}""#))
            .await?;
        Ok(())
    }

    struct Index {
        name: String,
        definition: String,
        /// The constraint it backs, and its kind (`PRIMARY KEY`, `UNIQUE`).
        constraint: Option<(String, &'static str)>,
    }

    async fn indexes(transaction: &DatabaseTransaction, table: &str) -> Result<Vec<Index>, DbErr> {
        let sql = "SELECT i.relname::text AS name, pg_get_indexdef(i.oid) AS definition, \
                   c.conname::text AS constraint_name, c.contype::text AS kind \
                   FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                   LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u') \
                   WHERE x.indrelid = to_regclass(quote_ident($1)) ORDER BY i.relname";
        let rows = transaction
            .query_all_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, [table.into()]))
            .await?;
        rows.iter()
            .map(|row| {
                let constraint: Option<String> = row.try_get("", "constraint_name")?;
                let kind: Option<String> = row.try_get("", "kind")?;
                let kind = if kind.as_deref() == Some("p") {
                    "PRIMARY KEY"
                } else {
                    "UNIQUE"
                };
                Ok(Index {
                    name: row.try_get("", "name")?,
                    definition: row.try_get("", "definition")?,
                    constraint: constraint.map(|name| (name, kind)),
                })
            })
            .collect()
    }
}

mod sqlite {
    use super::*;

    /// Replays the live table's `CREATE TABLE` and `CREATE INDEX`
    /// statements under the generation's names. The indexes SQLite makes
    /// for primary keys and unique columns come with the table.
    pub async fn copy(transaction: &DatabaseTransaction, table: &str, slot: Slot) -> Result<(), DbErr> {
        let copy = slot.name(table);
        let Some(create) = schema_sql(transaction, "table", table).await?.pop() else {
            return Err(DbErr::Custom(format!("no table {table}")));
        };
        let (_, columns) = after_name(&create, "CREATE TABLE ")?;
        transaction
            .execute_unprepared(&format!(r#"CREATE TABLE "{copy}"{columns}"#))
            .await?;
        create_indexes(transaction, table, &copy, slot).await
    }

    /// Renames the table; SQLite cannot rename an index, so each is
    /// created again under its new name and the old one dropped.
    pub async fn rename(transaction: &DatabaseTransaction, table: &str, from: Slot, to: Slot) -> Result<(), DbErr> {
        let (old, new) = (from.name(table), to.name(table));
        transaction
            .execute_unprepared(&format!(r#"ALTER TABLE "{old}" RENAME TO "{new}""#))
            .await?;
        let indexes = index_names(transaction, &new).await?;
        create_indexes(transaction, &new, &new, to).await?;
        for index in indexes {
            transaction
                .execute_unprepared(&format!(r#"DROP INDEX "{index}""#))
                .await?;
        }
        Ok(())
    }

    /// Creates each explicit index of `source` on `target`, named for `slot`.
    async fn create_indexes(
        transaction: &DatabaseTransaction,
        source: &str,
        target: &str,
        slot: Slot,
    ) -> Result<(), DbErr> {
        for create in schema_sql(transaction, "index", source).await? {
            let unique = if create.starts_with("CREATE UNIQUE INDEX ") {
                "UNIQUE "
            } else {
                ""
            };
            let (index, rest) = after_name(&create, &format!("CREATE {unique}INDEX "))?;
            let (_, columns) = after_name(rest, " ON ")?;
            let name = slot.name(&index);
            transaction
                .execute_unprepared(&format!(r#"CREATE {unique}INDEX "{name}" ON "{target}"{columns}"#))
                .await?;
        }
        Ok(())
    }

    async fn index_names(transaction: &DatabaseTransaction, table: &str) -> Result<Vec<String>, DbErr> {
        let sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL";
        let rows = transaction
            .query_all_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, [table.into()]))
            .await?;
        rows.iter().map(|row| row.try_get("", "name")).collect()
    }

    /// The `CREATE` statements SQLite recorded for `table` (`kind`
    /// `table`) or for its explicit indexes (`index`).
    async fn schema_sql(transaction: &DatabaseTransaction, kind: &str, table: &str) -> Result<Vec<String>, DbErr> {
        let sql = "SELECT sql FROM sqlite_master WHERE type = ? AND tbl_name = ? AND sql IS NOT NULL ORDER BY name";
        let rows = transaction
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sql,
                [kind.into(), table.into()],
            ))
            .await?;
        rows.iter().map(|row| row.try_get("", "sql")).collect()
    }

    /// The identifier after `prefix` at the start of `sql`, unquoted, and
    /// what follows it.
    pub(super) fn after_name<'a>(sql: &'a str, prefix: &str) -> Result<(String, &'a str), DbErr> {
        let unexpected = || DbErr::Custom(format!("unexpected schema statement: {sql}"));
        let rest = sql.strip_prefix(prefix).ok_or_else(unexpected)?;
        let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
        let (name, after) = match rest.chars().next() {
            Some(open @ ('"' | '`' | '[')) => {
                let close = if open == '[' { ']' } else { open };
                let end = rest[1..].find(close).ok_or_else(unexpected)? + 1;
                (&rest[1..end], &rest[end + 1..])
            }
            _ => {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        if name.is_empty() {
            return Err(unexpected());
        }
        Ok((name.to_owned(), after))
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite::after_name;

    #[test]
    fn names_in_sqlite_schema_statements_are_found_quoted_or_not() {
        let (name, rest) = after_name(r#"CREATE TABLE "products" ( "a" int )"#, "CREATE TABLE ").unwrap();
        assert_eq!((name.as_str(), rest), ("products", r#" ( "a" int )"#));
        let (name, rest) =
            after_name("CREATE INDEX IF NOT EXISTS by_name ON products (name)", "CREATE INDEX ").unwrap();
        assert_eq!((name.as_str(), rest), ("by_name", " ON products (name)"));
        let (table, rest) = after_name(rest, " ON ").unwrap();
        assert_eq!((table.as_str(), rest), ("products", " (name)"));
        assert!(after_name("CREATE VIEW v AS SELECT 1", "CREATE TABLE ").is_err());
    }
}
