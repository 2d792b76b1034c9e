//! Connecting to PostgreSQL and applying the migrations in `migrations/`.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::time::Duration;

/// The migrations of the whole installation, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Connect a pool of at most `max_connections`, with JIT compilation off
/// (see [`options`]).
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options(url)?)
        .await
}

/// The connection options of `url`, with JIT compilation off: this is
/// short, indexed work, and when statistics are missing or stale
/// (autovacuum behind, a table just loaded) the planner's inflated costs
/// made PostgreSQL spend a third of a second compiling a 10 ms look-up.
pub fn options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let opts: PgConnectOptions = url.parse()?;
    Ok(opts.options([("jit", "off")]))
}

/// Apply any migration not yet applied.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Create the database named in `url` if the server does not have it yet
/// (connecting to the server's `postgres` database to do so).
pub async fn create_database_if_missing(url: &str) -> Result<(), sqlx::Error> {
    use sqlx::ConnectOptions;
    let opts: PgConnectOptions = url.parse()?;
    let Some(name) = opts.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = opts.clone().database("postgres").connect().await?;
    let (exists,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // A concurrent creator may win the race; that is fine.
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut admin)
            .await
        {
            let duplicate = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42P04");
            if !duplicate {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// `url` with its database name replaced by `database` (query string kept):
/// how tests and the benchmark reach a database of their own on the same
/// server.
pub fn url_with_database(url: &str, database: &str) -> String {
    let host_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (base, rest) = match url[host_start..].find('/') {
        Some(i) => url.split_at(host_start + i),
        None => (url, ""),
    };
    let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
    format!("{base}/{database}{query}")
}

#[cfg(test)]
mod tests {
    use super::url_with_database;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            url_with_database("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://h", "x"), "postgres://h/x");
    }
}
