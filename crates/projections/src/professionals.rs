//! `professionals`: one row per entry of the registry of mediators,
//! interpreters and lawyers — roles, sectors, languages, modes, areas,
//! admission, weekly availability, absences and status — as the desk's
//! registry page, the ranking of activations and the activations report
//! read it. Names and contacts are sealed in the professional's stream and
//! never reach this table.

use crate::rows::{RowModel, check_follows};
use serde::{Deserialize, Serialize};
use sportello_domain::activation::ranking::{Registered, RegistryStatus};
use sportello_domain::ids::ProfessionalId;
use sportello_domain::organization::WeeklyHoursPayload;
use sportello_domain::registry::stored::{AbsencePayload, LanguagePayload, ProfilePayload};
use sportello_domain::registry::{self, ProfessionalEvent};
use sportello_domain::{Aggregate, aggregate::ProfessionalAggregate};
use sportello_store::RecordedEvent;
use sportello_store::projection::ApplyError;
use time::OffsetDateTime;
use uuid::Uuid;

/// A row of `professionals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfessionalRow {
    /// The tenant.
    pub network_id: Uuid,
    /// The entry (its stream id).
    pub professional_id: Uuid,
    /// `active`, `suspended`, `left`.
    pub status: RegistryStatus,
    /// Roles, sectors, languages, modes, areas, admission, bar registration.
    pub profile: ProfilePayload,
    /// Weekly hours, Potenza's local time.
    pub availability: WeeklyHoursPayload,
    /// Days away.
    pub absences: Vec<AbsencePayload>,
    /// The stream's version.
    pub version: i64,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl ProfessionalRow {
    /// What the ranking needs of this entry (`None`: a stored hour that no
    /// longer reads, which the fold refuses, so never in practice).
    pub fn registered(&self) -> Option<Registered> {
        Some(Registered {
            id: ProfessionalId(self.professional_id),
            status: self.status,
            roles: self.profile.roles.clone(),
            sectors: self.profile.sectors.clone(),
            languages: self
                .profile
                .languages
                .iter()
                .map(|l: &LanguagePayload| (l.code.clone(), l.proficiency))
                .collect(),
            modes: self.profile.modes.clone(),
            availability: self.availability.to_hours("professionals").ok()?,
            absences: self.absences.iter().map(|a| (a.from, a.to)).collect(),
        })
    }
}

impl RowModel for ProfessionalRow {
    const NAME: &'static str = "professionals";
    const KEY: &'static str = "professional_id";

    fn create_table(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                network_id      uuid NOT NULL,
                professional_id uuid PRIMARY KEY,
                status          text NOT NULL,
                profile         jsonb NOT NULL,
                availability    jsonb NOT NULL,
                absences        jsonb NOT NULL,
                version         bigint NOT NULL,
                updated_at      timestamptz NOT NULL
            );
            CREATE INDEX {table}_network ON {table} (network_id, status);"
        )
    }

    fn key(e: &RecordedEvent) -> Option<Uuid> {
        (e.stream_kind == registry::STREAM_KIND).then_some(e.stream_id.0)
    }

    fn fold(row: Option<Self>, e: &RecordedEvent) -> Result<Option<Self>, ApplyError> {
        let invalid = |why: String| {
            ApplyError::Invalid(format!(
                "professional {} at position {}: {why}",
                e.stream_id, e.cursor.position
            ))
        };
        let event = ProfessionalAggregate::decode(&e.event_type, &e.payload)
            .map_err(|err| invalid(err.to_string()))?;
        let profile = || -> Result<ProfilePayload, ApplyError> {
            serde_json::from_value(e.payload.clone()).map_err(|err| invalid(err.to_string()))
        };
        let at = e.metadata.occurred_at;
        let Some(mut p) = row else {
            check_follows(0, e)?;
            let ProfessionalEvent::Registered { .. } = event else {
                return Err(invalid(format!("an entry starts with {}", e.event_type)));
            };
            return Ok(Some(ProfessionalRow {
                network_id: e.network_id.0,
                professional_id: e.stream_id.0,
                status: RegistryStatus::Active,
                profile: profile()?,
                availability: WeeklyHoursPayload::from(
                    &sportello_domain::organization::WeeklyHours::new(),
                ),
                absences: Vec::new(),
                version: e.version,
                updated_at: at,
            }));
        };
        check_follows(p.version, e)?;
        if p.status == RegistryStatus::Left {
            return Err(invalid("a change after the professional left".into()));
        }
        match event {
            ProfessionalEvent::Registered { .. } => {
                return Err(invalid("registered twice".into()));
            }
            ProfessionalEvent::ProfileUpdated { .. } => p.profile = profile()?,
            ProfessionalEvent::AvailabilitySet(h) => p.availability = WeeklyHoursPayload::from(&h),
            ProfessionalEvent::AbsenceAdded { from, to } => {
                p.absences.push(AbsencePayload { from, to });
            }
            ProfessionalEvent::StatusChanged(s) => p.status = s,
        }
        p.version = e.version;
        p.updated_at = at;
        Ok(Some(p))
    }
}

/// The active professionals of `network`'s registry.
pub async fn active(
    pool: &sqlx::PgPool,
    network: Uuid,
) -> Result<Vec<ProfessionalRow>, sqlx::Error> {
    let rows: Vec<sqlx::types::Json<ProfessionalRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(p) FROM professionals p WHERE network_id = $1 AND status = 'active'",
    )
    .bind(network)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
