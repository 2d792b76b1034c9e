//! The card (scheda di presa in carico unica): the one shared view of a
//! person's case — identity, needs and where each stands, referrals with
//! their status history and redirection chain, visits, consents and legal
//! bases, and a timeline. [`Card::sharing`] applies the domain's one
//! sharing rule to the card's consents and legal bases.
//!
//! It is built from the events of the person's case and referral streams
//! with the very folds of the `cases`, `needs` and `referrals` projections,
//! so it always agrees with them, and the card as it was at any moment
//! (`as_of`) is the same fold over the events up to then. Personal parts
//! (identity, notes, reasons in words) are opened by the caller with the
//! person's key; an erased person's card keeps its facts and shows the
//! personal parts as erased. Filtering for a partner is the HTTP layer's
//! access policy, not this module's.

use crate::cases::{CaseRow, NeedRow};
use crate::referrals::ReferralRow;
use crate::rows::{RowModel, payload};
use serde::Serialize;
use serde_json::Value;
use sportello_domain::OrganizationId;
use sportello_domain::case;
use sportello_domain::case::consent::{
    self, Consent, ConsentPurpose, ConsentTerms, LegalBasis, Sharing, Withdrawal,
};
use sportello_domain::taxonomy;
use sportello_store::projection::ApplyError;
use sportello_store::{Personal, ReadEvent};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A personal part as the card shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", content = "data", rename_all = "snake_case")]
pub enum Sealed {
    /// Opened.
    Open(Value),
    /// The person's data was erased.
    Erased,
    /// Not shown to this caller.
    Hidden,
}

/// A need on the card. `state` alone tells where it stands; the desk's
/// own answer and its time are there only when the desk answered it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardNeed {
    /// The need.
    pub need_id: Uuid,
    /// Its category code.
    pub code: String,
    /// The category's area.
    pub area: String,
    /// How urgent.
    pub urgency: String,
    /// The category's English label.
    pub label: &'static str,
    /// The category's Italian label.
    pub label_it: &'static str,
    /// Where the need stands, all referrals considered (see
    /// [`need_state`]): `open` (neither answered nor referred),
    /// `resolved_at_desk`, `referred`, `in_progress`, `met`, `not_met`.
    pub state: &'static str,
    /// How the desk answered it (`state` is `resolved_at_desk`), else
    /// `null`.
    pub desk_outcome: Option<String>,
    /// Screened.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// When the desk answered it (`state` is `resolved_at_desk`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Its referrals, oldest first (a redirection chain reads in order).
    pub referrals: Vec<Uuid>,
    /// The screening note.
    pub note: Option<Sealed>,
}

impl CardNeed {
    /// The card's need from its row and its referrals (oldest first).
    pub fn new(need: &NeedRow, referrals: &[&ReferralRow], note: Option<Sealed>) -> Self {
        let category = taxonomy::lookup(&need.code);
        CardNeed {
            need_id: need.need_id,
            code: need.code.clone(),
            area: need.area.clone(),
            urgency: need.urgency.clone(),
            label: category.map_or("", |c| c.label_en),
            label_it: category.map_or("", |c| c.label_it),
            state: need_state(need, referrals),
            desk_outcome: need.outcome.clone(),
            recorded_at: need.recorded_at,
            resolved_at: need.resolved_at,
            referrals: referrals.iter().map(|r| r.referral_id).collect(),
            note,
        }
    }
}

/// A referral on the card.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardReferral {
    /// The referral's row (status, times, history, chain links).
    #[serde(flatten)]
    pub referral: ReferralRow,
    /// Past a deadline of its agreement and not yet past that stage.
    pub overdue: bool,
    /// Notes and reasons in words, by event type.
    pub notes: Vec<(String, Sealed)>,
}

/// A contact on the card.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardVisit {
    /// `desk`, `phone` or `outreach`.
    pub channel: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The note.
    pub note: Option<Sealed>,
}

/// A legal basis on the card.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardLegalBasis {
    /// The basis: id, organisation, ground, who recorded it.
    #[serde(flatten)]
    pub basis: LegalBasis,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// The reason in words (personal).
    pub reason: Option<Sealed>,
}

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEntry {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened (the event type).
    pub event_type: String,
    /// `case` or `referral`.
    pub stream_kind: String,
    /// The case or referral.
    pub stream_id: Uuid,
    /// The organisation whose account acted.
    pub by_organization: Uuid,
    /// Global log position.
    pub position: i64,
}

/// The card.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Card {
    /// The case's row (status, desk, operator, times, version); its
    /// visits are the card's `visits`, with their notes.
    #[serde(flatten, serialize_with = "case_header")]
    pub case: CaseRow,
    /// Who the person is.
    pub identity: Sealed,
    /// Screened needs, in the order they were recorded.
    pub needs: Vec<CardNeed>,
    /// Referrals, oldest first.
    pub referrals: Vec<CardReferral>,
    /// Contacts, oldest first.
    pub visits: Vec<CardVisit>,
    /// Consents, withdrawn ones included (with `withdrawn_on`), oldest first.
    pub consents: Vec<Consent>,
    /// Legal bases, oldest first.
    pub legal_bases: Vec<CardLegalBasis>,
    /// Everything that happened, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The moment the card shows (`None`: now).
    #[serde(with = "time::serde::rfc3339::option")]
    pub as_of: Option<OffsetDateTime>,
}

/// The case's row without its visits: the card lists them once, with
/// their notes (one key per name in the card's JSON).
fn case_header<S: serde::Serializer>(case: &CaseRow, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Header<'a> {
        network_id: Uuid,
        person_id: Uuid,
        desk_id: Uuid,
        operator_id: Option<Uuid>,
        status: &'a str,
        #[serde(with = "time::serde::rfc3339")]
        opened_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339::option")]
        closed_at: Option<OffsetDateTime>,
        version: i64,
        #[serde(with = "time::serde::rfc3339")]
        updated_at: OffsetDateTime,
    }
    Header {
        network_id: case.network_id,
        person_id: case.person_id,
        desk_id: case.desk_id,
        operator_id: case.operator_id,
        status: &case.status,
        opened_at: case.opened_at,
        closed_at: case.closed_at,
        version: case.version,
        updated_at: case.updated_at,
    }
    .serialize(s)
}

impl Card {
    /// What `org` may receive of this card for `purpose`: the domain's
    /// [`consent::sharing`] over the card's consents and legal bases (the
    /// organisation's agreement limits it further).
    pub fn sharing(&self, org: OrganizationId, purpose: ConsentPurpose) -> Sharing {
        let bases: Vec<LegalBasis> = self.legal_bases.iter().map(|b| b.basis.clone()).collect();
        consent::sharing(&self.consents, &bases, org, purpose)
    }
}

fn sealed(p: &Personal) -> Option<Sealed> {
    match p {
        Personal::None => None,
        Personal::Open(v) => Some(Sealed::Open(v.clone())),
        Personal::Erased => Some(Sealed::Erased),
    }
}

fn note_of(p: &Personal) -> Option<Sealed> {
    match sealed(p)? {
        Sealed::Open(v) => v
            .get("note")
            .or_else(|| v.get("text"))
            .cloned()
            .map(Sealed::Open),
        other => Some(other),
    }
}

/// Where a need stands, given its row and its referrals (oldest first):
/// answered at the desk, else as its referrals stand
/// ([`state_of_referrals`]).
pub fn need_state(need: &NeedRow, referrals: &[&ReferralRow]) -> &'static str {
    if need.status == "resolved" {
        return "resolved_at_desk";
    }
    state_of_referrals(referrals)
}

/// Where a need not answered at the desk stands, given its referrals
/// (oldest first): as its last referral stands, `open` without one.
pub fn state_of_referrals(referrals: &[&ReferralRow]) -> &'static str {
    use sportello_domain::referral::ReferralStatus as S;
    let Some(last) = referrals.last() else {
        return "open";
    };
    match last.status {
        S::Sent | S::Acknowledged => "referred",
        S::Accepted | S::InProgress => "in_progress",
        S::Completed if last.outcome.as_deref() == Some("not_met") => "not_met",
        S::Completed => "met",
        S::Declined | S::Failed | S::Cancelled | S::Redirected => "not_met",
    }
}

/// Build the card from the events of a person's case stream and referral
/// streams (any order; personal parts opened or not), as of `as_of` (all
/// events when `None`); `now` decides what is overdue. `None` when the
/// case did not exist then.
pub fn build(
    events: &[ReadEvent],
    as_of: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Option<Card>, ApplyError> {
    let mut events: Vec<&ReadEvent> = events
        .iter()
        .filter(|e| as_of.is_none_or(|t| e.event.metadata.occurred_at <= t))
        .collect();
    events.sort_by_key(|e| (e.event.metadata.occurred_at, e.event.cursor));
    let mut case: Option<CaseRow> = None;
    let mut identity = Sealed::Hidden;
    let mut needs: BTreeMap<Uuid, (NeedRow, Option<Sealed>)> = BTreeMap::new();
    let mut referrals: BTreeMap<Uuid, (ReferralRow, Vec<(String, Sealed)>)> = BTreeMap::new();
    let mut visit_notes: Vec<Option<Sealed>> = Vec::new();
    let mut consents: Vec<Consent> = Vec::new();
    let mut legal_bases: Vec<CardLegalBasis> = Vec::new();
    let mut timeline = Vec::with_capacity(events.len());
    for re in &events {
        let e = &re.event;
        if e.stream_kind == case::STREAM_KIND {
            case = CaseRow::fold(case.take(), e)?;
            match e.event_type.as_str() {
                case::PersonTakenInCharge::TYPE => {
                    identity = sealed(&re.personal).unwrap_or(Sealed::Hidden);
                    visit_notes.push(None);
                }
                "VisitRecorded" => visit_notes.push(note_of(&re.personal)),
                "ConsentRecorded" => consents.push(Consent {
                    terms: payload::<ConsentTerms>(e)?,
                    withdrawn_on: None,
                }),
                "ConsentWithdrawn" => {
                    let w: Withdrawal = payload(e)?;
                    if let Some(c) = consents
                        .iter_mut()
                        .find(|c| c.terms.consent_id == w.consent_id)
                    {
                        c.withdrawn_on = Some(w.withdrawn_on);
                    }
                }
                "LegalBasisRecorded" => legal_bases.push(CardLegalBasis {
                    basis: payload(e)?,
                    recorded_at: e.metadata.occurred_at,
                    reason: match sealed(&re.personal) {
                        Some(Sealed::Open(v)) => v.get("reason").cloned().map(Sealed::Open),
                        other => other,
                    },
                }),
                _ => {}
            }
            if let Some(key) = NeedRow::key(e) {
                let (row, note) = match needs.remove(&key) {
                    Some((row, note)) => (Some(row), note),
                    None => (None, None),
                };
                let note = if e.event_type == "NeedRecorded" {
                    note_of(&re.personal)
                } else {
                    note
                };
                if let Some(row) = NeedRow::fold(row, e)? {
                    needs.insert(key, (row, note));
                }
            }
        } else if let Some(key) = ReferralRow::key(e) {
            let (row, mut notes) = match referrals.remove(&key) {
                Some((row, notes)) => (Some(row), notes),
                None => (None, Vec::new()),
            };
            if let Some(n) = note_of(&re.personal) {
                notes.push((e.event_type.clone(), n));
            }
            if let Some(row) = ReferralRow::fold(row, e)? {
                referrals.insert(key, (row, notes));
            }
        } else {
            continue;
        }
        timeline.push(TimelineEntry {
            at: e.metadata.occurred_at,
            event_type: e.event_type.clone(),
            stream_kind: e.stream_kind.clone(),
            stream_id: e.stream_id.0,
            by_organization: e.metadata.organization_id.0,
            position: e.cursor.position,
        });
    }
    let Some(case) = case else {
        return Ok(None);
    };
    let mut referral_list: Vec<CardReferral> = referrals
        .into_values()
        .map(|(r, notes)| CardReferral {
            overdue: overdue(&r, now),
            referral: r,
            notes,
        })
        .collect();
    referral_list.sort_by_key(|r| (r.referral.sent_at, r.referral.referral_id));
    let mut need_list: Vec<CardNeed> = needs
        .into_values()
        .map(|(need, note)| {
            let mine: Vec<&ReferralRow> = referral_list
                .iter()
                .map(|r| &r.referral)
                .filter(|r| r.need_id == need.need_id)
                .collect();
            CardNeed::new(&need, &mine, note)
        })
        .collect();
    need_list.sort_by_key(|n| (n.recorded_at, n.need_id));
    let visits = case
        .visits
        .iter()
        .zip(visit_notes.into_iter().chain(std::iter::repeat(None)))
        .map(|(v, note)| CardVisit {
            channel: v.channel.clone(),
            at: v.at,
            note,
        })
        .collect();
    Ok(Some(Card {
        case,
        identity,
        needs: need_list,
        referrals: referral_list,
        visits,
        consents,
        legal_bases,
        timeline,
        as_of,
    }))
}

/// Past a deadline and not past its stage: not acknowledged (or answered)
/// by `acknowledge_by`, or not started (or closed) by `first_contact_by`.
pub fn overdue(r: &ReferralRow, now: OffsetDateTime) -> bool {
    use sportello_domain::referral::ReferralStatus as S;
    match r.status {
        S::Sent => r.acknowledge_by.is_some_and(|d| now > d),
        S::Acknowledged | S::Accepted => r.first_contact_by.is_some_and(|d| now > d),
        _ => false,
    }
}
