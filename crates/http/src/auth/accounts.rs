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
    sqlx::query(
        "INSERT INTO accounts (account_id, network_id, organization_id, role, label)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO NOTHING",
    )
    .bind(account.0)
    .bind(network.0)
    .bind(organization.0)
    .bind(role)
    .bind(label)
    .execute(pool)
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
    sqlx::query("UPDATE accounts SET login = $2, password_hash = $3 WHERE account_id = $1")
        .bind(account.0)
        .bind(login)
        .bind(password::hash(password))
        .execute(pool)
        .await?;
    Ok(())
}

/// Bind an account to an OpenID Connect identity (issuer and subject).
pub async fn set_oidc_identity(
    pool: &PgPool,
    account: AccountId,
    issuer: &str,
    subject: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET oidc_issuer = $2, oidc_subject = $3 WHERE account_id = $1")
        .bind(account.0)
        .bind(issuer)
        .bind(subject)
        .execute(pool)
        .await?;
    Ok(())
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
/// after [`MAX_FAILURES`]. The password is hashed whatever the login, so
/// an unknown login takes as long as a known one.
pub async fn sign_in(pool: &PgPool, login: &str, pass: &str) -> Result<SignIn, sqlx::Error> {
    type Row = (Uuid, Uuid, Option<String>, Option<OffsetDateTime>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT account_id, network_id, password_hash, locked_until FROM accounts
          WHERE lower(login) = lower($1) AND disabled_at IS NULL",
    )
    .bind(login)
    .fetch_optional(pool)
    .await?;
    let now = OffsetDateTime::now_utc();
    let Some((account, network, hash, locked_until)) = row else {
        password::verify(pass, None);
        return Ok(SignIn::Wrong(None));
    };
    if locked_until.is_some_and(|t| t > now) {
        password::verify(pass, None);
        return Ok(SignIn::Locked(account, network));
    }
    if password::verify(pass, hash.as_deref()) {
        sqlx::query(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE account_id = $1",
        )
        .bind(account)
        .execute(pool)
        .await?;
        return Ok(SignIn::Ok(account, network));
    }
    let locked: bool = sqlx::query_scalar(
        "UPDATE accounts
            SET failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
                locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END
          WHERE account_id = $1
      RETURNING locked_until IS NOT NULL AND locked_until > now()",
    )
    .bind(account)
    .bind(MAX_FAILURES)
    .bind(now + LOCK_FOR)
    .fetch_one(pool)
    .await?;
    Ok(if locked {
        SignIn::NowLocked(account, network)
    } else {
        SignIn::Wrong(Some((account, network)))
    })
}
