//! Accounts as stored: created by an administrator (or the demo loader)
//! with a role, an organisation, optionally a login and password or an
//! OpenID Connect identity; failed sign-ins counted and the account locked
//! for [`LOCK_FOR`] after [`MAX_FAILURES`] in a row.

use super::password;
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Failed sign-ins in a row that lock an account.
pub const MAX_FAILURES: i32 = 5;
/// How long a locked account stays locked.
pub const LOCK_FOR: Duration = Duration::minutes(15);

/// Create an account (or keep the existing one), without a login: it
/// signs in with the API tokens issued to it.
pub async fn create_account(
    pool: &PgPool,
    account: AccountId,
    network: NetworkId,
    organization: OrganizationId,
    role: &str,
    label: &str,
) -> Result<(), sqlx::Error> {
    insert_account(pool, account, network, organization, role, label, None).await
}

/// Create an account (nothing if its id exists), bound to a professional's
/// entry of the registry when `professional` is given (required for the
/// `professional` role, refused for any other by a CHECK).
pub async fn insert_account<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    account: AccountId,
    network: NetworkId,
    organization: OrganizationId,
    role: &str,
    label: &str,
    professional: Option<uuid::Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts (account_id, network_id, organization_id, role, label, professional_id)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO NOTHING",
    )
    .bind(account.0)
    .bind(network.0)
    .bind(organization.0)
    .bind(role)
    .bind(label)
    .bind(professional)
    .execute(executor)
    .await?;
    Ok(())
}

/// Give an account a login and a password (hashed here). The password
/// must already have passed [`password::policy`].
pub async fn set_login(
    pool: &PgPool,
    account: AccountId,
    login: &str,
    password: &str,
) -> Result<(), sqlx::Error> {
    let hashed = password::hash_blocking(password.to_owned())
        .await
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    set_login_hash(pool, account, login, &hashed).await
}

/// Give an account a login and an Argon2id hash (PHC string).
pub async fn set_login_hash(
    db: impl sqlx::PgExecutor<'_>,
    account: AccountId,
    login: &str,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET login = $2, password_hash = $3 WHERE account_id = $1")
        .bind(account.0)
        .bind(login)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}

/// Bind an account to an OpenID Connect identity (issuer and subject).
pub async fn set_oidc_identity(
    db: impl sqlx::PgExecutor<'_>,
    account: AccountId,
    issuer: &str,
    subject: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET oidc_issuer = $2, oidc_subject = $3 WHERE account_id = $1")
        .bind(account.0)
        .bind(issuer)
        .bind(subject)
        .execute(db)
        .await?;
    Ok(())
}

/// Disable a live account of `network`: no more sign-in, its sessions
/// ended and its tokens revoked, in one transaction. Whether there was
/// such an account.
pub async fn disable(
    pool: &PgPool,
    network: NetworkId,
    account: AccountId,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE accounts SET disabled_at = now()
          WHERE account_id = $1 AND network_id = $2 AND disabled_at IS NULL",
    )
    .bind(account.0)
    .bind(network.0)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE sessions SET ended_at = now() WHERE account_id = $1 AND ended_at IS NULL")
        .bind(account.0)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL",
    )
    .bind(account.0)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// What a password sign-in found.
pub enum SignIn {
    /// The password is right: the account.
    Ok(Uuid, Uuid),
    /// Wrong login or password (the account, when the login exists).
    Wrong(Option<(Uuid, Uuid)>),
    /// Wrong, and that locked the account.
    NowLocked(Uuid, Uuid),
    /// The account is locked: the password was not even checked.
    Locked(Uuid, Uuid),
}

/// Check a login and password, counting failures and locking the account
/// after [`MAX_FAILURES`]. Each attempt is counted *before* the password
/// is checked, in one statement that refuses a locked account, so
/// attempts made in parallel cannot get past the count; a right password
/// then clears it. The password is hashed whatever the login, so an
/// unknown login takes as long as a known one.
pub async fn sign_in(pool: &PgPool, login: &str, pass: &str) -> Result<SignIn, sqlx::Error> {
    type Claimed = (Uuid, Uuid, Option<String>, bool);
    let claimed: Option<Claimed> = sqlx::query_as(
        "UPDATE accounts
            SET failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
                locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END
          WHERE lower(login) = lower($1) AND disabled_at IS NULL
            AND (locked_until IS NULL OR locked_until <= now())
      RETURNING account_id, network_id, password_hash,
                locked_until IS NOT NULL AND locked_until > now()",
    )
    .bind(login)
    .bind(MAX_FAILURES)
    .bind(OffsetDateTime::now_utc() + LOCK_FOR)
    .fetch_optional(pool)
    .await?;
    let verify = |hash: Option<String>| {
        let pass = pass.to_owned();
        async move {
            tokio::task::spawn_blocking(move || password::verify(&pass, hash.as_deref()))
                .await
                .unwrap_or(false)
        }
    };
    let Some((account, network, hash, locks)) = claimed else {
        verify(None).await;
        // Unknown, disabled, or locked: which, for the record only.
        let locked: Option<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT account_id, network_id FROM accounts
              WHERE lower(login) = lower($1) AND disabled_at IS NULL AND locked_until > now()",
        )
        .bind(login)
        .fetch_optional(pool)
        .await?;
        return Ok(match locked {
            Some((a, n)) => SignIn::Locked(a, n),
            None => SignIn::Wrong(None),
        });
    };
    if verify(hash).await {
        sqlx::query(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE account_id = $1",
        )
        .bind(account)
        .execute(pool)
        .await?;
        return Ok(SignIn::Ok(account, network));
    }
    Ok(if locks {
        SignIn::NowLocked(account, network)
    } else {
        SignIn::Wrong(Some((account, network)))
    })
}
