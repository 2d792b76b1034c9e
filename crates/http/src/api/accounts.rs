//! Accounts and credentials: `GET /api/v1/me` (who am I, and for a
//! partner's system which NATS subjects it may subscribe to), and the
//! administrator's `POST /api/v1/accounts`, `POST
//! /api/v1/accounts/{id}/tokens` and `POST /api/v1/tokens/{id}/revoke`.
//! A token's secret is shown once, when issued; only its hash is kept.

use super::{ApiJson, path_id};
use crate::access::{Act, Role, allow, nats_subjects};
use crate::auth::record::{AuthEvent, record};
use crate::auth::{Caller, accounts, password, token};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_domain::AccountId;
use uuid::Uuid;

/// The caller's account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The account.
    pub account_id: Uuid,
    /// Its network.
    pub network_id: Uuid,
    /// Its organisation.
    pub organization_id: Uuid,
    /// Its role: `desk_operator`, `desk_supervisor`, `partner`,
    /// `professional`, `coordinator` or `admin`.
    #[schema(value_type = String, example = "desk_operator")]
    pub role: Role,
    /// For a professional: their entry of the registry.
    pub professional_id: Option<Uuid>,
    /// For a partner: the NATS subjects its system may subscribe to (the
    /// events of referrals addressed to it).
    pub nats_subjects: Vec<String>,
    /// With a session: the token to send as `X-CSRF-Token` on writes.
    pub csrf_token: Option<String>,
}

/// Who am I.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses(
        (status = 200, description = "The caller's account", body = Me),
        (status = 401, description = "No valid credential", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn me(
    State(state): State<AppState>,
    crate::auth::WithSession(caller, session): crate::auth::WithSession,
) -> Result<Json<Me>, ApiError> {
    Ok(Json(Me {
        account_id: caller.account_id.0,
        network_id: caller.network_id.0,
        organization_id: caller.organization_id.0,
        role: caller.role,
        professional_id: caller.professional_id,
        nats_subjects: match caller.role {
            Role::Partner => nats_subjects(
                &state.settings.subject_prefix,
                caller.network_id,
                caller.organization_id,
            ),
            _ => Vec::new(),
        },
        csrf_token: session.map(|s| s.csrf),
    }))
}

/// Body of `POST /api/v1/accounts`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    /// Who or what the account is for (a name, a system), shown to
    /// administrators.
    pub label: String,
    /// `desk_operator`, `desk_supervisor`, `partner`, `professional`,
    /// `coordinator` or `admin`.
    pub role: String,
    /// The organisation of the directory it belongs to.
    pub organization_id: Uuid,
    /// For a professional: their entry of the registry.
    pub professional_id: Option<Uuid>,
    /// A login to sign in with a password (with `password`).
    pub login: Option<String>,
    /// The first password (at least 12 characters, 5 different, not
    /// containing the login, not a common one).
    pub password: Option<String>,
    /// An OpenID Connect identity to sign in with: the provider's issuer
    /// URL (with `oidc_subject`).
    pub oidc_issuer: Option<String>,
    /// The subject (`sub`) the provider gives this person.
    pub oidc_subject: Option<String>,
}

impl std::fmt::Debug for AccountIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountIn")
            .field("role", &self.role)
            .field("organization_id", &self.organization_id)
            .field("professional_id", &self.professional_id)
            .finish_non_exhaustive()
    }
}

/// The account created.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountCreated {
    /// Its id.
    pub account_id: Uuid,
}

fn field(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Create an account in the administrator's network.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts",
    request_body = AccountIn,
    responses(
        (status = 201, description = "Created", body = AccountCreated),
        (status = 403, description = "Not an administrator", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The login is taken", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (unknown role or organisation, weak password)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body, _): ApiJson<AccountIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ManageAccounts)?;
    let mut errors = Vec::new();
    let label = body.label.trim();
    if label.is_empty() || label.chars().count() > 200 {
        errors.push(field("label", "must be 1 to 200 characters"));
    }
    let role = Role::parse(&body.role);
    match role {
        None => {
            let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            errors.push(FieldError {
                field: "role".into(),
                message: format!("must be one of {}", names.join(", ")),
            })
        }
        Some(Role::Professional) if body.professional_id.is_none() => errors.push(field(
            "professional_id",
            "a professional's account needs their registry entry",
        )),
        Some(r) if r != Role::Professional && body.professional_id.is_some() => errors.push(field(
            "professional_id",
            "only a professional's account has one",
        )),
        Some(_) => {}
    }
    let known_org: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM organizations WHERE network_id = $1 AND organization_id = $2)",
    )
    .bind(caller.network_id.0)
    .bind(body.organization_id)
    .fetch_one(state.pool())
    .await?;
    if !known_org && body.organization_id != caller.organization_id.0 {
        errors.push(field(
            "organization_id",
            "no such organisation in the network's directory",
        ));
    }
    let login = body.login.as_deref().map(str::trim);
    match (login, body.password.as_deref()) {
        (None, None) => {}
        (Some(l), Some(p)) => {
            if l.is_empty() || l.chars().count() > 200 || l.chars().any(char::is_whitespace) {
                errors.push(field("login", "must be 1 to 200 characters, no spaces"));
            }
            if let Err(m) = password::policy(p, l) {
                errors.push(field("password", m));
            }
        }
        (Some(_), None) => errors.push(field("password", "a login needs a password")),
        (None, Some(_)) => errors.push(field("login", "a password needs a login")),
    }
    let oidc = match (body.oidc_issuer.as_deref(), body.oidc_subject.as_deref()) {
        (None, None) => None,
        (Some(i), Some(s)) if i.starts_with("https://") || i.starts_with("http://") => {
            if s.is_empty() || s.len() > 255 {
                errors.push(field("oidc_subject", "must be 1 to 255 characters"));
            }
            Some((i, s))
        }
        (Some(_), Some(_)) => {
            errors.push(field("oidc_issuer", "must be the provider's issuer URL"));
            None
        }
        (Some(_), None) => {
            errors.push(field("oidc_subject", "an issuer needs a subject"));
            None
        }
        (None, Some(_)) => {
            errors.push(field("oidc_issuer", "a subject needs an issuer"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let role = role.expect("validated");
    let account = AccountId::new();
    let mut tx = state.pool().begin().await?;
    accounts::insert_account(
        &mut *tx,
        account,
        caller.network_id,
        sportello_domain::OrganizationId(body.organization_id),
        role.as_str(),
        label,
        body.professional_id,
    )
    .await?;
    if let (Some(l), Some(p)) = (login, body.password.clone()) {
        let hashed = password::hash_blocking(p).await?;
        let taken = accounts::set_login_hash(&mut *tx, account, l, &hashed).await;
        if let Err(sqlx::Error::Database(e)) = &taken
            && e.constraint() == Some("accounts_login_key")
        {
            return Err(ApiError::Conflict("this login is taken".into()));
        }
        taken?;
    }
    if let Some((issuer, subject)) = oidc {
        let taken = accounts::set_oidc_identity(&mut *tx, account, issuer, subject).await;
        if let Err(sqlx::Error::Database(e)) = &taken
            && e.constraint() == Some("accounts_oidc_key")
        {
            return Err(ApiError::Conflict(
                "this identity is bound to another account".into(),
            ));
        }
        taken?;
    }
    tx.commit().await?;
    record(
        state.pool(),
        AuthEvent::AccountCreated,
        Some(account.0),
        Some(caller.network_id.0),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(AccountCreated {
            account_id: account.0,
        }),
    )
        .into_response())
}

/// Body of `POST /api/v1/accounts/{id}/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// What the token is for (the partner's system), shown to administrators.
    pub label: String,
    /// Days it stays valid, 1 to 365.
    pub valid_days: i64,
}

/// Issue an API token for an account of the network; the secret is in
/// this answer only.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/tokens", tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "The account")),
    request_body = TokenIn,
    responses(
        (status = 201, description = "Issued", body = token::Issued),
        (status = 403, description = "Not an administrator", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such account in the network", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body, _): ApiJson<TokenIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ManageAccounts)?;
    let account = path_id(&id)?;
    let mut errors = Vec::new();
    if body.label.trim().is_empty() || body.label.chars().count() > 200 {
        errors.push(field("label", "must be 1 to 200 characters"));
    }
    if !(1..=365).contains(&body.valid_days) {
        errors.push(field("valid_days", "must be 1 to 365"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM accounts WHERE account_id = $1 AND network_id = $2 AND disabled_at IS NULL",
    )
    .bind(account)
    .bind(caller.network_id.0)
    .fetch_optional(state.pool())
    .await?;
    let role = role.ok_or(ApiError::NotFound)?;
    // Tokens are for partner systems: a token for a desk account would let
    // an administrator read people as someone else.
    if role != Role::Partner.as_str() {
        return Err(ApiError::Validation(vec![field(
            "account",
            "API tokens are issued to partner accounts only",
        )]));
    }
    let issued = token::issue_by(
        state.pool(),
        AccountId(account),
        body.label.trim(),
        time::Duration::days(body.valid_days),
        Some(caller.account_id),
    )
    .await?;
    record(
        state.pool(),
        AuthEvent::TokenIssued,
        Some(account),
        Some(caller.network_id.0),
    )
    .await;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// Revoke an API token: it stops working at once on this server, within
/// seconds on the others.
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "The token's id (not its secret)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an administrator", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such token in the network, or already revoked", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    allow(&caller, Act::ManageAccounts)?;
    let token_id = path_id(&id)?;
    if !token::revoke(state.pool(), caller.network_id, token_id).await? {
        return Err(ApiError::NotFound);
    }
    state.tokens.clear();
    record(
        state.pool(),
        AuthEvent::TokenRevoked,
        None,
        Some(caller.network_id.0),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable an account (someone left): it can no longer sign in, its
/// sessions end and its tokens are revoked, at once.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/disable", tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "The account")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 403, description = "Not an administrator", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such live account in the network", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "An administrator cannot disable their own account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    allow(&caller, Act::ManageAccounts)?;
    let account = path_id(&id)?;
    if account == caller.account_id.0 {
        return Err(ApiError::Conflict(
            "an administrator cannot disable their own account".into(),
        ));
    }
    if !accounts::disable(state.pool(), caller.network_id, AccountId(account)).await? {
        return Err(ApiError::NotFound);
    }
    state.tokens.clear();
    record(
        state.pool(),
        AuthEvent::AccountDisabled,
        Some(account),
        Some(caller.network_id.0),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
