//! A read model whose every row is one document folded from events: the
//! projection loads the rows a batch touches, folds the batch into them in
//! memory (a pure function per model), and writes them back — three
//! statements per batch whatever its size, so catching up and rebuilding
//! run set-wise, and one event at a time gives the same rows by
//! construction.
//!
//! A row is a serde struct whose fields are the table's columns; it goes
//! to and from PostgreSQL as JSON (`to_jsonb` to read,
//! `jsonb_populate_recordset` to write), so a model is its DDL, its key
//! and its fold — nothing else to keep in step.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sportello_store::RecordedEvent;
use sportello_store::projection::{ApplyError, Projection};
use sqlx::PgConnection;
use std::collections::HashMap;
use std::marker::PhantomData;
use uuid::Uuid;

/// One read model of document rows.
pub trait RowModel: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The projection's name (and view).
    const NAME: &'static str;
    /// The key column (a `uuid` primary key).
    const KEY: &'static str;
    /// DDL of one generation's table named `table`; columns are the
    /// struct's fields.
    fn create_table(table: &str) -> String;
    /// The row an event touches, if any.
    fn key(event: &RecordedEvent) -> Option<Uuid>;
    /// Fold one event into its row (`None`: no row yet; returning `None`
    /// deletes it). Refuse what does not fit rather than guess.
    fn fold(row: Option<Self>, event: &RecordedEvent) -> Result<Option<Self>, ApplyError>;
}

/// The [`Projection`] of a [`RowModel`].
pub struct Rows<M>(PhantomData<fn() -> M>);

impl<M> Default for Rows<M> {
    fn default() -> Self {
        Rows(PhantomData)
    }
}

impl<M> Rows<M> {
    /// The projection.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl<M: RowModel> Projection for Rows<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }

    fn create_table(&self, table: &str) -> String {
        M::create_table(table)
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        table: &str,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        self.apply_batch(conn, table, std::slice::from_ref(event))
            .await
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        table: &str,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let keyed: Vec<(Uuid, &RecordedEvent)> = events
            .iter()
            .filter_map(|e| M::key(e).map(|k| (k, e)))
            .collect();
        if keyed.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<Uuid> = keyed.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut rows: HashMap<Uuid, Option<M>> = load_docs::<M>(conn, table, M::KEY, &keys)
            .await?
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        for (key, e) in keyed {
            let row = rows.remove(&key).flatten();
            rows.insert(key, M::fold(row, e)?);
        }
        let kept: Vec<&M> = keys.iter().filter_map(|k| rows[k].as_ref()).collect();
        store_docs(conn, table, M::KEY, &keys, &kept).await
    }
}

/// The rows of `table` whose `key` column is one of `keys`, read back as
/// documents.
pub async fn load_docs<T: DeserializeOwned>(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    keys: &[Uuid],
) -> Result<HashMap<Uuid, T>, ApplyError> {
    let sql = format!("SELECT to_jsonb(t) FROM {table} t WHERE {key} = ANY($1)");
    let found: Vec<serde_json::Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(keys)
        .fetch_all(&mut *conn)
        .await?;
    let mut rows = HashMap::with_capacity(found.len());
    for v in found {
        let id = v
            .get(key)
            .and_then(|k| k.as_str())
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| ApplyError::Invalid(format!("a row of {table} without a key")))?;
        let row: T = serde_json::from_value(v)
            .map_err(|e| ApplyError::Invalid(format!("a row of {table} unreadable: {e}")))?;
        rows.insert(id, row);
    }
    Ok(rows)
}

/// Replace the rows of `table` whose `key` is one of `keys` by `rows`
/// (documents whose fields are the table's columns): a delete and one
/// insert, whatever the number of rows.
pub async fn store_docs<T: Serialize>(
    conn: &mut PgConnection,
    table: &str,
    key: &str,
    keys: &[Uuid],
    rows: &[&T],
) -> Result<(), ApplyError> {
    let delete = format!("DELETE FROM {table} WHERE {key} = ANY($1)");
    sqlx::query(sqlx::AssertSqlSafe(delete))
        .bind(keys)
        .execute(&mut *conn)
        .await?;
    if !rows.is_empty() {
        let json = serde_json::to_value(rows)
            .map_err(|e| ApplyError::Invalid(format!("a row of {table}: {e}")))?;
        let insert = format!(
            "INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1)"
        );
        sqlx::query(sqlx::AssertSqlSafe(insert))
            .bind(json)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Deserialise an event's public payload, refusing a malformed one.
pub fn payload<T: DeserializeOwned>(e: &RecordedEvent) -> Result<T, ApplyError> {
    T::deserialize(&e.payload).map_err(|err| {
        ApplyError::Invalid(format!(
            "{} at position {}: {err}",
            e.event_type, e.cursor.position
        ))
    })
}

/// Refuse an event that does not follow the row's version (`row_version`
/// 0: no row yet): a gap or a repeat means the feed is wrong.
pub fn check_follows(row_version: i64, e: &RecordedEvent) -> Result<(), ApplyError> {
    if e.version != row_version + 1 {
        return Err(ApplyError::Invalid(format!(
            "stream {} version {} does not follow the projected version {row_version}",
            e.stream_id, e.version
        )));
    }
    Ok(())
}
