//! What of a card a partner may see: its own referrals, the needs they
//! answer, and the fields both its agreement in force and the person's
//! consent (or a legal basis) allow — the intersection of two allow-lists:
//! a field not named in both is never shown to a partner. Of consents and
//! legal bases it sees only those that name it, never a basis's reason.

use crate::error::ApiError;
use sportello_domain::OrganizationId;
use sportello_domain::case::consent::{ConsentPurpose, Sharing};

#[cfg(test)]
mod tests;

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
/// needs they answer, unless agreement and consent show every need), the
/// identity fields its agreement in force and the person's consent allow,
/// notes only if both allow them, the consents and legal bases that name
/// it, and the timeline of the case and its own referrals.
pub fn filter_card(
    card: &mut sportello_projections::card::Card,
    org: OrganizationId,
    agreement: Option<&sportello_domain::organization::Agreement>,
) {
    let sharing = card.sharing(org, ConsentPurpose::Referral);
    filter_card_with(card, org, agreement, &sharing);
}

/// [`filter_card`] with what the person's consent allows given apart: the
/// card as it was (`?as_of=`) is filtered by today's consent, so a
/// withdrawn consent never opens a past card.
pub fn filter_card_with(
    card: &mut sportello_projections::card::Card,
    org: OrganizationId,
    agreement: Option<&sportello_domain::organization::Agreement>,
    sharing: &Sharing,
) {
    use sportello_domain::case::consent::OrganizationScope;
    use sportello_domain::organization::CardField as F;
    use sportello_projections::card::Sealed;
    let may = |f: F| agreement.is_some_and(|a| a.may_see(f)) && sharing.allows(f);
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
    // Of the case's own events, only its opening, closing and erasure: the
    // others (needs, consents, bases) would tell what the lists hide.
    card.timeline.retain(|t| {
        if t.stream_kind == "referral" {
            mine.contains(&t.stream_id)
        } else {
            CASE_EVENTS_SHOWN.contains(&t.event_type.as_str())
        }
    });
    card.consents.retain(|c| c.terms.organizations.covers(org));
    // Which other organisations a consent names is not this one's business.
    for c in &mut card.consents {
        if let OrganizationScope::Only(_) = c.terms.organizations {
            c.terms.organizations = OrganizationScope::Only([org].into());
        }
    }
    card.legal_bases.retain(|b| b.basis.organization_id == org);
    for b in &mut card.legal_bases {
        b.reason = b.reason.as_ref().map(|_| Sealed::Hidden);
    }
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
        let allowed: Vec<&str> = fields
            .iter()
            .filter(|(_, f)| may(*f))
            .flat_map(|(keys, _)| keys.iter().copied())
            .collect();
        identity.retain(|k, _| allowed.contains(&k.as_str()));
    } else if let Sealed::Open(_) = card.identity {
        // Not the shape the allow-list knows: shown to nobody outside.
        card.identity = Sealed::Hidden;
    }
}

/// The case's own events a partner's timeline shows.
const CASE_EVENTS_SHOWN: [&str; 4] = [
    sportello_domain::case::PersonTakenInCharge::TYPE,
    "CaseClosed",
    "CaseReopened",
    "PersonErased",
];
