//! What of a card a partner may see ([`PartnerCard`]): its own referrals,
//! the needs they answer (never another need, whatever the consent's
//! breadth), and the identity fields and notes both its agreement in force
//! and the person's consent (or a legal basis) allow — the intersection of
//! two allow-lists: a field not named in both is never shown to a partner.
//! Of consents and legal bases it sees only those that name it, never a
//! basis's reason; of the case, no visit.

use crate::AppError;
use sportello_domain::OrganizationId;
use sportello_domain::case::consent::{ConsentPurpose, OrganizationScope, Sharing};
use sportello_projections::card::{
    Card, CardLegalBasis, CardNeed, CardReferral, Sealed, TimelineEntry,
};
use sportello_projections::referrals::ReferralRow;
use std::collections::BTreeSet;
use time::OffsetDateTime;
use uuid::Uuid;

#[cfg(test)]
mod tests;

/// The agreement of an organisation in force today (Potenza's day), from
/// the directory.
pub async fn agreement_of(
    pool: &sqlx::PgPool,
    clock: &crate::Clock,
    network: sportello_domain::NetworkId,
    org: OrganizationId,
) -> Result<Option<sportello_domain::organization::Agreement>, AppError> {
    let Some(payload) =
        sportello_projections::organizations::agreement(pool, network.0, org.0).await?
    else {
        return Ok(None);
    };
    let agreement = payload
        .to_agreement()
        .map_err(|e| AppError::Internal(e.into()))?;
    let today = clock.today();
    Ok(agreement.in_force(today).then_some(agreement))
}

/// The card as a partner receives it. It is built field by field from the
/// desk's card, so a field not named here never reaches a partner: of the
/// case only its desk, status and opening and closing times (no visit, no
/// operator, no version or time of the last change, which would tell that
/// something happened); the identity fields both allow-lists name; the
/// referrals it received, with links of a redirection chain only to
/// referrals it also received; the needs of those referrals, each standing
/// as far as its referrals go, whatever the consent's breadth (a need
/// never referred to it — answered at the desk, or sent to another
/// organisation — is special-category data it has no part in); notes
/// only if both allow them; the consents that name it; the legal bases
/// naming it, without their reasons; and of the timeline the case's
/// opening, closing and erasure and its own referrals' events.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PartnerCard {
    /// The tenant.
    pub network_id: Uuid,
    /// The person (the case's id).
    pub person_id: Uuid,
    /// The desk in charge.
    pub desk_id: Uuid,
    /// `open` or `closed`.
    pub status: String,
    /// Opened.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// Last closed, while closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// The identity fields both allow-lists name.
    pub identity: Sealed,
    /// The needs of its referrals.
    pub needs: Vec<CardNeed>,
    /// Its referrals, oldest first.
    pub referrals: Vec<CardReferral>,
    /// The consents that name it (or the whole network).
    pub consents: Vec<PartnerConsent>,
    /// The legal bases naming it, reasons hidden.
    pub legal_bases: Vec<CardLegalBasis>,
    /// The case's opening, closing and erasure; its referrals' events.
    pub timeline: Vec<TimelineEntry>,
    /// The moment the card shows (`None`: now).
    #[serde(with = "time::serde::rfc3339::option")]
    pub as_of: Option<OffsetDateTime>,
}

/// A consent as a partner sees it: what it allows, to whom (itself, or the
/// whole network), from when and until when. The language the information
/// notice was given in is the person's language, shown only where the
/// partner may see their languages; who recorded it is the desk's.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PartnerConsent {
    /// The consent.
    pub consent_id: sportello_domain::ConsentId,
    /// What for.
    pub purpose: ConsentPurpose,
    /// To whom: the network, or this organisation (never which others).
    pub organizations: OrganizationScope,
    /// Which kinds of data.
    pub data: BTreeSet<sportello_domain::organization::CardField>,
    /// The day it was given.
    #[serde(with = "sportello_domain::case::consent::iso_day")]
    pub given_on: time::Date,
    /// The language of the information notice, if the partner may see the
    /// person's languages.
    pub notice_language: Option<String>,
    /// The day it was withdrawn (`None`: in force).
    #[serde(with = "sportello_domain::case::consent::iso_day::option")]
    pub withdrawn_on: Option<time::Date>,
}

/// What of a card a partner may see: its own referrals, the needs they
/// answer, the identity fields its agreement in force and the person's
/// consent allow, notes only if both allow them, the consents and legal
/// bases that name it, and the timeline of the case and its own referrals
/// ([`PartnerCard`]).
pub fn filter_card(
    card: Card,
    org: OrganizationId,
    agreement: Option<&sportello_domain::organization::Agreement>,
) -> PartnerCard {
    let sharing = card.sharing(org, ConsentPurpose::Referral);
    filter_card_with(card, org, agreement, &sharing)
}

/// [`filter_card`] with what the person's consent allows given apart: the
/// card as it was (`?as_of=`) is filtered by today's consent, so a
/// withdrawn consent never opens a past card.
pub fn filter_card_with(
    card: Card,
    org: OrganizationId,
    agreement: Option<&sportello_domain::organization::Agreement>,
    sharing: &Sharing,
) -> PartnerCard {
    use sportello_domain::organization::CardField as F;
    let may = |f: F| agreement.is_some_and(|a| a.may_see(f)) && sharing.allows(f);
    let notes = may(F::Notes);
    let hide = |s: &mut Option<Sealed>| {
        if !notes {
            *s = s.as_ref().map(|_| Sealed::Hidden);
        }
    };
    let Card {
        case,
        identity,
        needs,
        referrals,
        visits: _,
        consents,
        legal_bases,
        timeline,
        as_of,
    } = card;
    let mut referrals: Vec<CardReferral> = referrals
        .into_iter()
        .filter(|r| r.referral.organization_id == org.0)
        .collect();
    let mine: BTreeSet<Uuid> = referrals.iter().map(|r| r.referral.referral_id).collect();
    for r in &mut referrals {
        // A redirection's other end is another organisation's referral:
        // not this one's business (nor its id).
        for link in [
            &mut r.referral.redirected_from,
            &mut r.referral.redirected_to,
        ] {
            if link.is_some_and(|id| !mine.contains(&id)) {
                *link = None;
            }
        }
        if !notes {
            for (_, note) in &mut r.notes {
                *note = Sealed::Hidden;
            }
        }
    }
    let needs = needs
        .into_iter()
        .filter_map(|mut n| {
            let own: Vec<&ReferralRow> = referrals
                .iter()
                .map(|r| &r.referral)
                .filter(|r| r.need_id == n.need_id)
                .collect();
            if own.is_empty() {
                return None;
            }
            // Where the need stands as far as this organisation's
            // referrals go, not what others did with it.
            n.state = if n.resolved_at.is_some() {
                n.state
            } else {
                sportello_projections::card::state_of_referrals(&own)
            };
            n.referrals = own.iter().map(|r| r.referral_id).collect();
            hide(&mut n.note);
            Some(n)
        })
        .collect();
    // Of the case's own events, only its opening, closing and erasure: the
    // others (visits, needs, consents, bases) would tell what the lists
    // hide.
    let timeline = timeline
        .into_iter()
        .filter(|t| {
            if t.stream_kind == "referral" {
                mine.contains(&t.stream_id)
            } else {
                CASE_EVENTS_SHOWN.contains(&t.event_type.as_str())
            }
        })
        .collect();
    let consents = consents
        .into_iter()
        .filter(|c| c.terms.organizations.covers(org))
        .map(|c| PartnerConsent {
            consent_id: c.terms.consent_id,
            purpose: c.terms.purpose,
            // Which other organisations a consent names is not this one's
            // business.
            organizations: match c.terms.organizations {
                OrganizationScope::Network => OrganizationScope::Network,
                OrganizationScope::Only(_) => OrganizationScope::Only([org].into()),
            },
            data: c.terms.data,
            given_on: c.terms.given_on,
            notice_language: may(F::Languages).then_some(c.terms.notice_language),
            withdrawn_on: c.withdrawn_on,
        })
        .collect();
    let legal_bases = legal_bases
        .into_iter()
        .filter(|b| b.basis.organization_id == org)
        .map(|mut b| {
            b.reason = b.reason.map(|_| Sealed::Hidden);
            b
        })
        .collect();
    let identity = match identity {
        Sealed::Open(serde_json::Value::Object(mut identity)) => {
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
            Sealed::Open(serde_json::Value::Object(identity))
        }
        // Not the shape the allow-list knows: shown to nobody outside.
        Sealed::Open(_) => Sealed::Hidden,
        other => other,
    };
    PartnerCard {
        network_id: case.network_id,
        person_id: case.person_id,
        desk_id: case.desk_id,
        status: case.status,
        opened_at: case.opened_at,
        closed_at: case.closed_at,
        identity,
        needs,
        referrals,
        consents,
        legal_bases,
        timeline,
        as_of,
    }
}

/// The case's own events a partner's timeline shows.
const CASE_EVENTS_SHOWN: [&str; 4] = [
    sportello_domain::case::PersonTakenInCharge::TYPE,
    "CaseClosed",
    "CaseReopened",
    "PersonErased",
];
