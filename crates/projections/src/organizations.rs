//! `organizations`: one row per organisation of the network — name, kind,
//! ownership, onboarding status, office contacts, its services (with need
//! categories, languages, hours) and its current agreement — as the
//! directory, matching and the inbox read them. Organisation data is not
//! personal.

use crate::rows::{RowModel, check_follows, payload};
use serde::{Deserialize, Serialize};
use sportello_domain::organization::{
    self, AgreementEndedPayload, AgreementSignedPayload, DetailsPayload, OnboardingChangedPayload,
    ServicePayload, ServiceRemovedPayload,
};
use sportello_store::RecordedEvent;
use sportello_store::projection::ApplyError;
use time::OffsetDateTime;
use uuid::Uuid;

/// A row of `organizations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationRow {
    /// The tenant.
    pub network_id: Uuid,
    /// The organisation (its stream id).
    pub organization_id: Uuid,
    /// Its details.
    pub details: DetailsPayload,
    /// Its name (also in `details`, as a column to sort and search by).
    pub name: String,
    /// `invited`, `onboarding`, `active` or `suspended`.
    pub status: String,
    /// Its services.
    pub services: Vec<ServicePayload>,
    /// Its current agreement.
    pub agreement: Option<AgreementSignedPayload>,
    /// The stream's version.
    pub version: i64,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

fn invalid(e: &RecordedEvent, why: &str) -> ApplyError {
    ApplyError::Invalid(format!(
        "organisation {} at position {}: {why}",
        e.stream_id, e.cursor.position
    ))
}

impl RowModel for OrganizationRow {
    const NAME: &'static str = "organizations";
    const KEY: &'static str = "organization_id";

    fn create_table(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                network_id      uuid NOT NULL,
                organization_id uuid PRIMARY KEY,
                details         jsonb NOT NULL,
                name            text NOT NULL,
                status          text NOT NULL,
                services        jsonb NOT NULL,
                agreement       jsonb,
                version         bigint NOT NULL,
                updated_at      timestamptz NOT NULL
            );
            CREATE INDEX {table}_network ON {table} (network_id, name);"
        )
    }

    fn key(e: &RecordedEvent) -> Option<Uuid> {
        (e.stream_kind == organization::STREAM_KIND).then_some(e.stream_id.0)
    }

    fn fold(row: Option<Self>, e: &RecordedEvent) -> Result<Option<Self>, ApplyError> {
        let at = e.metadata.occurred_at;
        let Some(mut o) = row else {
            check_follows(0, e)?;
            if e.event_type != "OrganizationRegistered" {
                return Err(ApplyError::Invalid(format!(
                    "organisation {} starts with {}",
                    e.stream_id, e.event_type
                )));
            }
            let details: DetailsPayload = payload(e)?;
            return Ok(Some(OrganizationRow {
                network_id: e.network_id.0,
                organization_id: e.stream_id.0,
                name: details.name.clone(),
                details,
                status: "invited".into(),
                services: Vec::new(),
                agreement: None,
                version: e.version,
                updated_at: at,
            }));
        };
        check_follows(o.version, e)?;
        match e.event_type.as_str() {
            "OrganizationDetailsUpdated" => {
                let d: DetailsPayload = payload(e)?;
                o.name.clone_from(&d.name);
                o.details = d;
            }
            "OrganizationOnboardingChanged" => {
                let p: OnboardingChangedPayload = payload(e)?;
                if p.from.as_str() != o.status || !organization::transition(p.from, p.to) {
                    return Err(invalid(e, "an onboarding change from another status"));
                }
                o.status = p.to.as_str().to_owned();
            }
            "OrganizationServiceAdded" | "OrganizationServiceUpdated" => {
                let s: ServicePayload = payload(e)?;
                s.to_service().map_err(|err| invalid(e, &err.to_string()))?;
                let existing = o.services.iter_mut().find(|x| x.service_id == s.service_id);
                match (existing, e.event_type.as_str()) {
                    (None, "OrganizationServiceAdded") => o.services.push(s),
                    (Some(x), "OrganizationServiceUpdated") => *x = s,
                    _ => return Err(invalid(e, "a service added twice or updated unknown")),
                }
            }
            "OrganizationServiceRemoved" => {
                let p: ServiceRemovedPayload = payload(e)?;
                o.services.retain(|x| x.service_id != p.service_id);
            }
            "OrganizationAgreementSigned" => {
                let signed: AgreementSignedPayload = payload(e)?;
                signed
                    .to_agreement()
                    .map_err(|err| invalid(e, &err.to_string()))?;
                o.agreement = Some(signed);
            }
            "OrganizationAgreementEnded" => {
                let p: AgreementEndedPayload = payload(e)?;
                if time::Date::parse(
                    &p.on,
                    &time::macros::format_description!("[year]-[month]-[day]"),
                )
                .is_err()
                {
                    return Err(invalid(e, "an unreadable end date"));
                }
                // As the domain: an ended agreement is no agreement.
                if o.agreement.as_ref().map(|a| a.agreement_id) == Some(p.agreement_id) {
                    o.agreement = None;
                }
            }
            other => {
                return Err(ApplyError::Invalid(format!(
                    "organisation {} cannot apply {other}",
                    e.stream_id
                )));
            }
        }
        o.version = e.version;
        o.updated_at = at;
        Ok(Some(o))
    }
}

/// The current agreement of an organisation of `network` as the directory
/// holds it (`None`: no such organisation, or none signed or in place).
pub async fn agreement(
    pool: &sqlx::PgPool,
    network: uuid::Uuid,
    organization: uuid::Uuid,
) -> Result<Option<AgreementSignedPayload>, sqlx::Error> {
    let doc: Option<Option<sqlx::types::Json<AgreementSignedPayload>>> = sqlx::query_scalar(
        "SELECT agreement FROM organizations WHERE network_id = $1 AND organization_id = $2",
    )
    .bind(network)
    .bind(organization)
    .fetch_optional(pool)
    .await?;
    Ok(doc.flatten().map(|d| d.0))
}
