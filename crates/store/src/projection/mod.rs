//! Projections: read models built from the events.
//!
//! A [`Projection`] is a table (per generation, for blue/green rebuilds)
//! and an `apply` that updates it for one event. The [`runner`] feeds it:
//! live from a JetStream durable consumer, and from the PostgreSQL log to
//! catch up or to rebuild. Every batch is applied in one transaction with
//! the projection's checkpoint, and an event at or before the checkpoint is
//! skipped, so a redelivery or a crash never applies an event twice. An
//! event the projection cannot apply stops it, visibly (`/readyz`,
//! metrics): it is never skipped silently.

pub mod checkpoint;
pub mod rebuild;
pub mod runner;

use crate::envelope::RecordedEvent;
use sqlx::PgConnection;

pub use checkpoint::{Checkpoint, wait_for_position};
pub use rebuild::rebuild;
pub use runner::{ProjectionRunner, ProjectionStatus, supervise};

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event is not what the projection expects (a bug or bad data).
    #[error("cannot apply: {0}")]
    Invalid(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A read model.
#[async_trait::async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Its name: letters, digits and `_` only. The read model is queried
    /// through a view of that name.
    fn name(&self) -> &'static str;

    /// DDL creating the table of one generation, named `table`.
    fn create_table(&self, table: &str) -> String;

    /// Apply one event to `table`, inside the caller's transaction.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        table: &str,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError>;

    /// Apply events in log order, inside the caller's transaction. The
    /// default applies them one by one; a projection may do it set-wise
    /// (far fewer round trips when catching up), as long as the rows come
    /// out the same as one by one. On a refusal the runner replays the
    /// batch one event at a time to find the event refused.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        table: &str,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        for e in events {
            self.apply(conn, table, e).await?;
        }
        Ok(())
    }
}

/// The table of a generation.
pub fn table_name(projection: &str, generation: i32) -> String {
    format!("{projection}_g{generation}")
}
