//! A property test of [`filter_card`]: for random cards (identity with any
//! subset of its fields and a key nobody knows, needs, referrals to the
//! partner and to others, redirection chains across organisations, visits,
//! notes, consents of any purpose, scope,
//! data kinds and state, legal bases for any organisation) and any
//! agreement (or none), the card as the partner receives it — its JSON —
//! holds exactly what the agreement and the person's consent or legal
//! basis both allow: every personal value carries a unique marker, the
//! markers allowed are computed here independently of the filter, and the
//! markers found in the JSON must be exactly those. Nothing outside the
//! allowed set ever shows (an unknown identity key never, a basis's reason
//! never, another organisation's referrals, consents not covering the
//! partner and legal bases of others never, a need not referred to it
//! never, whatever the consent's breadth, a visit never, the other end of
//! a redirection never); nothing allowed is lost.

use super::filter_card;
use proptest::prelude::*;
use serde_json::{Value, json};
use sportello_domain::case::consent::{
    Consent, ConsentPurpose, ConsentTerms, LegalBasis, LegalBasisKind, OrganizationScope,
};
use sportello_domain::organization::{Agreement, CardField};
use sportello_domain::referral::ReferralStatus;
use sportello_domain::{AccountId, ConsentId, LegalBasisId, OrganizationId};
use sportello_projections::card::{
    Card, CardLegalBasis, CardNeed, CardReferral, CardVisit, Sealed, TimelineEntry,
};
use sportello_projections::cases::{CaseRow, Visit};
use sportello_projections::referrals::{ReferralRow, StatusChange};
use std::collections::BTreeSet;
use time::OffsetDateTime;
use time::macros::{date, datetime};
use uuid::Uuid;

/// The identity keys a card may hold and the field each belongs to, as
/// the privacy rules state them (written out here, not taken from the
/// filter); `secret_extra` belongs to none and must never be shown.
const IDENTITY: [(&str, Option<CardField>); 10] = [
    ("names", Some(CardField::Names)),
    ("birth_date", Some(CardField::BirthDate)),
    ("sex", Some(CardField::BirthDate)),
    ("country_of_birth", Some(CardField::Citizenship)),
    ("citizenships", Some(CardField::Citizenship)),
    ("languages", Some(CardField::Languages)),
    ("contacts", Some(CardField::Contacts)),
    ("documents", Some(CardField::Documents)),
    ("vulnerabilities", Some(CardField::Vulnerabilities)),
    ("secret_extra", None),
];

/// The partner under test and two others.
const ORGS: usize = 3;
const ME: usize = 0;

fn org(i: usize) -> OrganizationId {
    OrganizationId(Uuid::from_u128(0x0A00 + i as u128))
}

fn fields(mask: &[bool]) -> BTreeSet<CardField> {
    CardField::ALL
        .into_iter()
        .zip(mask)
        .filter(|(_, on)| **on)
        .map(|(f, _)| f)
        .collect()
}

/// A marker: a personal value nothing else in a card can contain.
fn mark(kind: &str, i: usize) -> String {
    format!("<<{kind}#{i}>>")
}

#[derive(Clone, Debug)]
struct ConsentCase {
    referral_purpose: bool,
    /// `None`: the whole network; else which of the organisations.
    scope: Option<Vec<bool>>,
    data: Vec<bool>,
    withdrawn: bool,
}

#[derive(Clone, Debug)]
struct ReferralCase {
    need: usize,
    org: usize,
    notes: usize,
    /// A redirection of the referral before it (then of the same need).
    redirects_previous: bool,
}

#[derive(Clone, Debug)]
struct Scenario {
    /// The partner's agreement in force (visible fields), or none.
    agreement: Option<Vec<bool>>,
    /// Whether the identity was erased.
    erased: bool,
    /// Which identity keys the card holds.
    identity: Vec<bool>,
    /// Needs: whether each has a note.
    needs: Vec<bool>,
    referrals: Vec<ReferralCase>,
    /// Visits after the first: whether each has a note.
    visits: Vec<bool>,
    consents: Vec<ConsentCase>,
    /// Legal bases: the organisation each names.
    bases: Vec<usize>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let consent = (
        any::<bool>(),
        prop::option::of(prop::collection::vec(any::<bool>(), ORGS)),
        prop::collection::vec(any::<bool>(), CardField::ALL.len()),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(referral_purpose, scope, data, withdrawn)| ConsentCase {
            referral_purpose,
            scope,
            data,
            withdrawn,
        });
    let referral = (0..4usize, 0..ORGS, 0..3usize, any::<bool>()).prop_map(
        |(need, org, notes, redirects_previous)| ReferralCase {
            need,
            org,
            notes,
            redirects_previous,
        },
    );
    (
        prop::option::weighted(
            0.9,
            prop::collection::vec(any::<bool>(), CardField::ALL.len()),
        ),
        prop::bool::weighted(0.05),
        prop::collection::vec(any::<bool>(), IDENTITY.len()),
        prop::collection::vec(any::<bool>(), 0..4),
        prop::collection::vec(referral, 0..6),
        prop::collection::vec(any::<bool>(), 0..3),
        prop::collection::vec(consent, 0..4),
        prop::collection::vec(0..ORGS, 0..3),
    )
        .prop_map(
            |(agreement, erased, identity, needs, referrals, visits, consents, bases)| Scenario {
                agreement,
                erased,
                identity,
                needs,
                referrals,
                visits,
                consents,
                bases,
            },
        )
}

fn need_id(i: usize) -> Uuid {
    Uuid::from_u128(0x1000_0000 + i as u128)
}
fn referral_id(i: usize) -> Uuid {
    Uuid::from_u128(0x2000_0000 + i as u128)
}
fn consent_id(i: usize) -> Uuid {
    Uuid::from_u128(0x3000_0000 + i as u128)
}
fn basis_id(i: usize) -> Uuid {
    Uuid::from_u128(0x4000_0000 + i as u128)
}

fn identity_value(key: &str) -> Value {
    let m = mark(
        "identity",
        IDENTITY.iter().position(|(k, _)| *k == key).unwrap(),
    );
    match key {
        "names" => json!([{ "kind": "as_used", "text": m }]),
        "contacts" => json!({ "phone": m, "email": null, "address": null }),
        "documents" => json!([{ "kind": "passport", "number": m }]),
        "citizenships" | "languages" | "vulnerabilities" => json!([m]),
        _ => json!(m),
    }
}

const AT: OffsetDateTime = datetime!(2026-03-02 10:00 UTC);

/// The card of a scenario, as the desk would see it.
fn card(s: &Scenario) -> Card {
    let person = Uuid::from_u128(0xFE);
    let desk = Uuid::from_u128(0xDE5C);
    let identity = if s.erased {
        Sealed::Erased
    } else {
        Sealed::Open(Value::Object(
            IDENTITY
                .iter()
                .zip(&s.identity)
                .filter(|(_, on)| **on)
                .map(|((k, _), _)| ((*k).to_owned(), identity_value(k)))
                .collect(),
        ))
    };
    let referrals: Vec<(usize, &ReferralCase)> = if s.needs.is_empty() {
        Vec::new()
    } else {
        s.referrals.iter().enumerate().collect()
    };
    let need_of = |j: usize| need_index(s, j);
    let needs = s
        .needs
        .iter()
        .enumerate()
        .map(|(i, has_note)| CardNeed {
            need_id: need_id(i),
            code: mark("need-code", i),
            area: "health".into(),
            urgency: "normal".into(),
            label: "",
            label_it: "",
            state: "open",
            desk_outcome: None,
            recorded_at: AT,
            resolved_at: None,
            referrals: referrals
                .iter()
                .filter(|(j, _)| need_of(*j) == i)
                .map(|(j, _)| referral_id(*j))
                .collect(),
            note: has_note.then(|| Sealed::Open(json!(mark("need-note", i)))),
        })
        .collect();
    let card_referrals = referrals
        .iter()
        .map(|(j, r)| CardReferral {
            referral: ReferralRow {
                network_id: Uuid::nil(),
                referral_id: referral_id(*j),
                person_id: person,
                need_id: need_id(need_of(*j)),
                need_code: mark("need-code", need_of(*j)),
                need_area: "health".into(),
                organization_id: org(r.org).0,
                service_id: Uuid::from_u128(0x5000_0000 + *j as u128),
                redirected_from: (*j > 0 && r.redirects_previous).then(|| referral_id(j - 1)),
                redirected_to: s
                    .referrals
                    .get(j + 1)
                    .is_some_and(|next| next.redirects_previous)
                    .then(|| referral_id(j + 1)),
                status: ReferralStatus::Sent,
                sent_at: AT,
                acknowledged_at: None,
                accepted_at: None,
                declined_at: None,
                started_at: None,
                closed_at: None,
                redirected_at: None,
                decline_reason: None,
                fail_reason: None,
                outcome: None,
                acknowledge_by: None,
                first_contact_by: None,
                due_at: None,
                history: vec![StatusChange {
                    status: ReferralStatus::Sent,
                    at: AT,
                    by_organization: desk,
                }],
                version: 1,
                updated_at: AT,
            },
            overdue: false,
            notes: (0..r.notes)
                .map(|k| {
                    (
                        "ReferralSent".to_owned(),
                        Sealed::Open(json!(mark(&format!("referral-note-{j}"), k))),
                    )
                })
                .collect(),
        })
        .collect();
    let mut visits = vec![CardVisit {
        channel: "desk".into(),
        at: AT,
        note: None,
    }];
    visits.extend(s.visits.iter().enumerate().map(|(i, has_note)| CardVisit {
        channel: "phone".into(),
        at: AT,
        note: has_note.then(|| Sealed::Open(json!(mark("visit-note", i)))),
    }));
    let consents = s
        .consents
        .iter()
        .enumerate()
        .map(|(i, c)| Consent {
            terms: ConsentTerms {
                consent_id: ConsentId(consent_id(i)),
                purpose: if c.referral_purpose {
                    ConsentPurpose::Referral
                } else {
                    ConsentPurpose::Mediation
                },
                organizations: match &c.scope {
                    None => OrganizationScope::Network,
                    Some(mask) => {
                        OrganizationScope::Only((0..ORGS).filter(|o| mask[*o]).map(org).collect())
                    }
                },
                data: fields(&c.data),
                given_on: date!(2026 - 01 - 10),
                // The person's language: a marker of its own.
                notice_language: mark("notice", i),
                recorded_by: AccountId(Uuid::from_u128(0xACC)),
            },
            withdrawn_on: c.withdrawn.then_some(date!(2026 - 02 - 01)),
        })
        .collect();
    let legal_bases = s
        .bases
        .iter()
        .enumerate()
        .map(|(i, o)| CardLegalBasis {
            basis: LegalBasis {
                legal_basis_id: LegalBasisId(basis_id(i)),
                organization_id: org(*o),
                basis: LegalBasisKind::VitalInterests,
                recorded_by: AccountId(Uuid::from_u128(0xACC)),
            },
            recorded_at: AT,
            reason: Some(Sealed::Open(json!(mark("reason", i)))),
        })
        .collect();
    let mut timeline = vec![TimelineEntry {
        at: AT,
        event_type: "PersonTakenInCharge".into(),
        stream_kind: "case".into(),
        stream_id: person,
        by_organization: desk,
        position: 1,
    }];
    timeline.extend(referrals.iter().map(|(j, _)| TimelineEntry {
        at: AT,
        event_type: "ReferralSent".into(),
        stream_kind: "referral".into(),
        stream_id: referral_id(*j),
        by_organization: desk,
        position: 2 + *j as i64,
    }));
    Card {
        case: CaseRow {
            network_id: Uuid::nil(),
            person_id: person,
            desk_id: desk,
            operator_id: None,
            status: "open".into(),
            opened_at: AT,
            closed_at: None,
            visits: (0..=s.visits.len())
                .map(|_| Visit {
                    channel: "desk".into(),
                    at: AT,
                })
                .collect(),
            version: 1,
            updated_at: AT,
        },
        identity,
        needs,
        referrals: card_referrals,
        visits,
        consents,
        legal_bases,
        timeline,
        as_of: None,
    }
}

/// The need of referral `j`: its own, or for a redirection the need of the
/// referral it redirects.
fn need_index(s: &Scenario, j: usize) -> usize {
    let mut j = j;
    while j > 0 && s.referrals[j].redirects_previous {
        j -= 1;
    }
    s.referrals[j].need % s.needs.len().max(1)
}

/// What the partner may see, worked out from the rules in words: a legal
/// basis naming it allows every field; else the union of the data of the
/// consents in force, for referral, whose scope covers it; and only what
/// its agreement (if any) also allows.
fn allowed(s: &Scenario) -> BTreeSet<CardField> {
    let Some(agreement) = &s.agreement else {
        return BTreeSet::new();
    };
    let person: BTreeSet<CardField> = if s.bases.contains(&ME) {
        CardField::ALL.into_iter().collect()
    } else {
        s.consents
            .iter()
            .filter(|c| {
                c.referral_purpose && !c.withdrawn && c.scope.as_ref().is_none_or(|m| m[ME])
            })
            .flat_map(|c| fields(&c.data))
            .collect()
    };
    fields(agreement).intersection(&person).copied().collect()
}

/// Every marker of the scenario, and those the partner must receive.
fn markers(s: &Scenario) -> (BTreeSet<String>, BTreeSet<String>) {
    let allow = allowed(s);
    let mut all = BTreeSet::new();
    let mut shown = BTreeSet::new();
    let mut put = |m: String, visible: bool| {
        if visible {
            shown.insert(m.clone());
        }
        all.insert(m);
    };
    if !s.erased {
        for (i, ((_, field), on)) in IDENTITY.iter().zip(&s.identity).enumerate() {
            if *on {
                put(
                    mark("identity", i),
                    field.is_some_and(|f| allow.contains(&f)),
                );
            }
        }
    }
    let referrals: Vec<&ReferralCase> = if s.needs.is_empty() {
        Vec::new()
    } else {
        s.referrals.iter().collect()
    };
    let notes = allow.contains(&CardField::Notes);
    for (i, has_note) in s.needs.iter().enumerate() {
        // Only the needs of its own referrals, whatever the consent's
        // breadth or the agreement.
        let visible = referrals
            .iter()
            .enumerate()
            .any(|(j, r)| r.org == ME && need_index(s, j) == i);
        put(mark("need-code", i), visible);
        put(need_id(i).to_string(), visible);
        if *has_note {
            put(mark("need-note", i), visible && notes);
        }
    }
    for (j, r) in referrals.iter().enumerate() {
        put(referral_id(j).to_string(), r.org == ME);
        for k in 0..r.notes {
            put(mark(&format!("referral-note-{j}"), k), r.org == ME && notes);
        }
    }
    // No visit, nor whether it has a note.
    for (i, has_note) in s.visits.iter().enumerate() {
        if *has_note {
            put(mark("visit-note", i), false);
        }
    }
    for (i, c) in s.consents.iter().enumerate() {
        let covers_me = c.scope.as_ref().is_none_or(|m| m[ME]);
        put(consent_id(i).to_string(), covers_me);
        put(
            mark("notice", i),
            covers_me && allow.contains(&CardField::Languages),
        );
    }
    for (i, o) in s.bases.iter().enumerate() {
        put(basis_id(i).to_string(), *o == ME);
        put(mark("reason", i), false);
    }
    (all, shown)
}

fn agreement(visible: &[bool]) -> Agreement {
    Agreement {
        id: sportello_domain::ids::AgreementId(Uuid::from_u128(0xA6)),
        signed_on: date!(2026 - 01 - 10),
        valid_from: date!(2026 - 01 - 15),
        valid_to: date!(2027 - 12 - 31),
        acknowledge_within: 2,
        first_contact_within: 5,
        visible_fields: fields(visible),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_partner_receives_exactly_what_agreement_and_consent_both_allow(s in scenario()) {
        let c = card(&s);
        let a = s.agreement.as_deref().map(agreement);
        let partner = filter_card(c, org(ME), a.as_ref());
        let json = serde_json::to_value(&partner).unwrap();
        let text = json.to_string();

        // Every marker shows exactly when the rules allow it, both ways.
        let (all, shown) = markers(&s);
        let present: BTreeSet<String> =
            all.iter().filter(|m| text.contains(m.as_str())).cloned().collect();
        let leaked: Vec<&String> = present.difference(&shown).collect();
        let lost: Vec<&String> = shown.difference(&present).collect();
        prop_assert!(leaked.is_empty(), "shown though not allowed: {leaked:?}\nallowed fields: {:?}\n{text}", allowed(&s));
        prop_assert!(lost.is_empty(), "allowed but not shown: {lost:?}\nallowed fields: {:?}\n{text}", allowed(&s));

        // The identity holds only keys of allowed fields; never one unknown.
        let allow = allowed(&s);
        if let Some(identity) = json["identity"]["data"].as_object() {
            for key in identity.keys() {
                let field = IDENTITY.iter().find(|(k, _)| k == key).and_then(|(_, f)| *f);
                prop_assert!(
                    field.is_some_and(|f| allow.contains(&f)),
                    "identity key {key} shown; allowed {allow:?}"
                );
            }
        } else {
            prop_assert_eq!(&json["identity"]["state"], if s.erased { "erased" } else { "open" });
        }
        prop_assert!(!text.contains("secret_extra"));

        // Only its own referrals; only consents covering it; only legal
        // bases naming it, their reasons closed.
        let me = json!(org(ME));
        for r in json["referrals"].as_array().unwrap() {
            prop_assert_eq!(&r["organization_id"], &me);
        }
        for b in json["legal_bases"].as_array().unwrap() {
            prop_assert_eq!(&b["organization_id"], &me);
            prop_assert_eq!(&b["reason"], &json!({ "state": "hidden" }));
        }
        for t in json["timeline"].as_array().unwrap() {
            let mine = json["referrals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["referral_id"] == t["stream_id"]);
            prop_assert!(t["stream_kind"] == "case" || mine, "{t}");
        }
        // Of the case, nothing that tells what happened on it besides its
        // opening and closing: no visit, no version, no last change.
        for key in ["visits", "version", "updated_at", "operator_id"] {
            prop_assert!(json.get(key).is_none(), "{key} shown: {text}");
        }
        // A need stands as far as its own referrals go, and lists only
        // them.
        for n in json["needs"].as_array().unwrap() {
            for r in n["referrals"].as_array().unwrap() {
                prop_assert!(
                    json["referrals"].as_array().unwrap().iter().any(|own| own["referral_id"] == *r),
                    "{n}"
                );
            }
        }
        // A note not allowed is hidden, not dropped: the partner knows one exists.
        if !allow.contains(&CardField::Notes) {
            for n in json["needs"].as_array().unwrap() {
                let hidden = json!({ "state": "hidden" });
                prop_assert!(n["note"].is_null() || n["note"] == hidden, "{n}");
            }
        }
    }
}
