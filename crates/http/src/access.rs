//! Who may do what: the one place every handler asks. This is the minimal
//! policy of the case and referral work — roles by organisation — and the
//! seat of the full access model (field-level scoping, consent, audit):
//! handlers name the [`Act`] they are about to do and never decide access
//! themselves.

use crate::auth::Caller;
use crate::error::ApiError;
use sportello_domain::OrganizationId;

/// The roles of an account.
pub mod role {
    /// Desk staff: takes people in charge, screens, refers.
    pub const DESK_OPERATOR: &str = "desk_operator";
    /// A provider's staff: works its organisation's inbox.
    pub const PARTNER: &str = "partner";
    /// The coordination team: watches and runs the network.
    pub const COORDINATOR: &str = "coordinator";
    /// Administrator of the network.
    pub const ADMIN: &str = "admin";
    /// Every role.
    pub const ALL: [&str; 4] = [DESK_OPERATOR, PARTNER, COORDINATOR, ADMIN];
}

/// Something a caller is about to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Take in charge, record visits and needs, answer at the desk,
    /// close, reopen, send, cancel and redirect referrals.
    DeskWork,
    /// Read a person's card and history.
    ReadCard,
    /// Act on a referral addressed to this organisation.
    WorkReferral(OrganizationId),
    /// Read this organisation's inbox.
    ReadInbox(OrganizationId),
    /// List, register and change organisations, services and agreements.
    ManageNetwork,
    /// Read the network's reports.
    ReadReports,
    /// Record a legal basis for sharing without consent.
    RecordLegalBasis,
}

/// Whether `caller` may do `act`; `403` if not.
pub fn allow(caller: &Caller, act: Act) -> Result<(), ApiError> {
    let r = caller.role.as_str();
    let desk = r == role::DESK_OPERATOR;
    let coordination = r == role::COORDINATOR || r == role::ADMIN;
    let ok = match act {
        Act::DeskWork => desk,
        Act::ReadCard => desk || coordination || r == role::PARTNER,
        Act::WorkReferral(org) => r == role::PARTNER && caller.organization_id == org,
        Act::ReadInbox(org) => desk || coordination || caller.organization_id == org,
        Act::ManageNetwork => desk || coordination,
        Act::ReadReports => desk || coordination,
        Act::RecordLegalBasis => r == "desk_supervisor",
    };
    if ok { Ok(()) } else { Err(ApiError::Forbidden) }
}

/// The organisation a partner account is limited to (`None`: the desk and
/// the coordination team see the whole card).
pub fn partner_scope(caller: &Caller) -> Option<OrganizationId> {
    (caller.role == role::PARTNER).then_some(caller.organization_id)
}

/// The agreement in force of an organisation, from the directory.
pub async fn agreement_of(
    state: &crate::state::AppState,
    network: sportello_domain::NetworkId,
    org: OrganizationId,
) -> Result<Option<sportello_domain::organization::Agreement>, ApiError> {
    let doc: Option<Option<serde_json::Value>> = sqlx::query_scalar(
        "SELECT agreement FROM organizations WHERE network_id = $1 AND organization_id = $2",
    )
    .bind(network.0)
    .bind(org.0)
    .fetch_optional(state.pool())
    .await?;
    let Some(Some(doc)) = doc else {
        return Ok(None);
    };
    let payload: sportello_domain::organization::AgreementSignedPayload =
        serde_json::from_value(doc).map_err(|e| ApiError::Internal(e.into()))?;
    let agreement = payload
        .to_agreement()
        .map_err(|e| ApiError::Internal(e.into()))?;
    let today = time::OffsetDateTime::now_utc().date();
    Ok(agreement.in_force(today).then_some(agreement))
}

/// Limit a card to what a partner may see: its own referrals (and the
/// needs they answer, unless its agreement shows every need), the
/// identity fields its agreement in force allows, notes only if allowed,
/// and the timeline of the case and its own referrals.
pub fn filter_card(
    card: &mut sportello_projections::card::Card,
    org: OrganizationId,
    agreement: Option<&sportello_domain::organization::Agreement>,
) {
    use sportello_domain::organization::CardField as F;
    use sportello_projections::card::Sealed;
    let may = |f: F| agreement.is_some_and(|a| a.may_see(f));
    let mine: Vec<uuid::Uuid> = card
        .referrals
        .iter()
        .filter(|r| r.referral.organization_id == org.0)
        .map(|r| r.referral.referral_id)
        .collect();
    card.referrals
        .retain(|r| mine.contains(&r.referral.referral_id));
    let referred_needs: Vec<uuid::Uuid> =
        card.referrals.iter().map(|r| r.referral.need_id).collect();
    if !may(F::Needs) {
        card.needs
            .retain(|n| referred_needs.contains(&n.need.need_id));
    }
    for n in &mut card.needs {
        n.referrals.retain(|r| mine.contains(r));
    }
    if !may(F::Notes) {
        for n in &mut card.needs {
            n.note = n.note.as_ref().map(|_| Sealed::Hidden);
        }
        for r in &mut card.referrals {
            for (_, note) in &mut r.notes {
                *note = Sealed::Hidden;
            }
        }
        for v in &mut card.visits {
            v.note = v.note.as_ref().map(|_| Sealed::Hidden);
        }
    }
    card.timeline
        .retain(|t| t.stream_kind != "referral" || mine.contains(&t.stream_id));
    if let Sealed::Open(serde_json::Value::Object(identity)) = &mut card.identity {
        let fields: [(&[&str], F); 7] = [
            (&["names"], F::Names),
            (&["birth_date", "sex"], F::BirthDate),
            (&["country_of_birth", "citizenships"], F::Citizenship),
            (&["languages"], F::Languages),
            (&["contacts"], F::Contacts),
            (&["documents"], F::Documents),
            (&["vulnerabilities"], F::Vulnerabilities),
        ];
        // Allow-list: a field not named here is never shown to a partner.
        let allowed: Vec<&str> = fields
            .iter()
            .filter(|(_, f)| may(*f))
            .flat_map(|(keys, _)| keys.iter().copied())
            .collect();
        identity.retain(|k, _| allowed.contains(&k.as_str()));
    }
}
