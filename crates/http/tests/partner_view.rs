//! What a partner receives, as a property over a real server (PostgreSQL,
//! NATS): for random networks — partner organisations whose agreements
//! show random card fields (some agreements ended after the referrals),
//! people with random identity fields, consents of random purpose, scope
//! and data kinds (some withdrawn after the referrals), legal bases,
//! needs, visits and referrals with notes, referrals declined with a
//! reason in words and redirected to another partner — every personal
//! value carries a unique marker, and for each partner and each person:
//! - the card of a person not referred to it is `404`;
//! - the card's body holds exactly the markers of what its agreement in
//!   force and the person's consent (or a legal basis naming it) both
//!   allow, its identity exactly the keys of those fields — nothing
//!   outside the allowed set, and nothing allowed missing (so the test
//!   fails both ways); never a need it did not receive (whatever the
//!   consent's breadth), a visit, a legal basis's reason, another
//!   organisation's referral (the other end of a redirection included), a
//!   consent not covering it or a legal basis naming another;
//! - its inbox holds its own referrals and no personal value at all.
//!
//! Scenarios come from proptest strategies driven by a seeded generator:
//! `PARTNER_VIEW_SEED=<n>` replays a run (the seed is printed), and
//! `PARTNER_VIEW_CASES=<n>` runs more scenarios than the default 6.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};
use sportello_domain::organization::CardField;
use sportello_domain::{NetworkId, OrganizationId};
use std::collections::BTreeSet;

mod common;
use common::*;

const ORGS: usize = 3;
const PERSONS: usize = 3;
/// Need categories every partner's service answers.
const CODES: [&str; 4] = [
    "health_stp_code",
    "tax_code",
    "identity_card",
    "registry_residence",
];

/// The optional identity keys (names are always given) and their fields.
const OPTIONAL: [(&str, CardField); 8] = [
    ("birth_date", CardField::BirthDate),
    ("sex", CardField::BirthDate),
    ("country_of_birth", CardField::Citizenship),
    ("citizenships", CardField::Citizenship),
    ("languages", CardField::Languages),
    ("contacts", CardField::Contacts),
    ("documents", CardField::Documents),
    ("vulnerabilities", CardField::Vulnerabilities),
];

fn key_field(key: &str) -> Option<CardField> {
    if key == "names" {
        return Some(CardField::Names);
    }
    OPTIONAL.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

fn fields(mask: &[bool]) -> BTreeSet<CardField> {
    CardField::ALL
        .into_iter()
        .zip(mask)
        .filter(|(_, on)| **on)
        .map(|(f, _)| f)
        .collect()
}

/// A value not given: null, `[]`, or an object of such values.
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(empty),
        _ => false,
    }
}

fn field_name(f: CardField) -> String {
    serde_json::to_value(f)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[derive(Clone, Debug)]
struct OrgPlan {
    visible: Vec<bool>,
    /// The agreement is ended after the referrals are sent.
    ended: bool,
}

#[derive(Clone, Debug)]
struct ConsentPlan {
    referral_purpose: bool,
    /// `None`: the network; else which partners (none chosen: the first).
    scope: Option<Vec<bool>>,
    data: Vec<bool>,
    /// Withdrawn after the referrals are sent.
    withdrawn: bool,
}

impl ConsentPlan {
    fn covers(&self, org: usize) -> bool {
        match &self.scope {
            None => true,
            Some(m) if m.iter().any(|b| *b) => m[org],
            Some(_) => org == 0,
        }
    }
    fn data(&self) -> BTreeSet<CardField> {
        let d = fields(&self.data);
        if d.is_empty() {
            BTreeSet::from([CardField::Names])
        } else {
            d
        }
    }
}

#[derive(Clone, Debug)]
struct PersonPlan {
    /// Which optional identity keys are filled.
    identity: Vec<bool>,
    /// The first consent is given at intake.
    consents: Vec<ConsentPlan>,
    /// Legal bases: the partner each names.
    bases: Vec<usize>,
    /// Per partner: refer a need to it (if covered), with a note, the need
    /// with a note, the partner declines with a reason in words, and the
    /// desk then redirects the need to the next partner (if covered).
    refer: Vec<(bool, bool, bool, bool, bool)>,
    /// A need never referred, with a note.
    lone_need: bool,
    /// A visit with a note.
    visit: bool,
}

#[derive(Clone, Debug)]
struct Scenario {
    orgs: Vec<OrgPlan>,
    persons: Vec<PersonPlan>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let org = (
        prop::collection::vec(any::<bool>(), CardField::ALL.len()),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(visible, ended)| OrgPlan { visible, ended });
    let consent = (
        prop::bool::weighted(0.8),
        prop::option::of(prop::collection::vec(any::<bool>(), ORGS)),
        prop::collection::vec(any::<bool>(), CardField::ALL.len()),
        prop::bool::weighted(0.25),
    )
        .prop_map(|(referral_purpose, scope, data, withdrawn)| ConsentPlan {
            referral_purpose,
            scope,
            data,
            withdrawn,
        });
    let person = (
        prop::collection::vec(any::<bool>(), OPTIONAL.len()),
        prop::collection::vec(consent, 0..3),
        prop::collection::vec(prop::bool::weighted(0.25), ORGS).prop_map(|m| {
            m.into_iter()
                .enumerate()
                .filter(|(_, on)| *on)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        }),
        prop::collection::vec(
            (
                prop::bool::weighted(0.7),
                any::<bool>(),
                any::<bool>(),
                prop::bool::weighted(0.3),
                any::<bool>(),
            ),
            ORGS,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(identity, consents, bases, refer, lone_need, visit)| PersonPlan {
                identity,
                consents,
                bases,
                refer,
                lone_need,
                visit,
            },
        );
    (
        prop::collection::vec(org, ORGS),
        prop::collection::vec(person, PERSONS),
    )
        .prop_map(|(orgs, persons)| Scenario { orgs, persons })
}

/// Unique markers: `QQMK<n>X` cannot be part of another marker, an id,
/// a timestamp or a code.
#[derive(Default)]
struct Marks(usize);

impl Marks {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("QQMK{}X", self.0)
    }
}

/// Whether partner `n`, allowed these fields, must receive a marker.
type ShownTo = Box<dyn Fn(usize, &BTreeSet<CardField>) -> bool>;

/// Something personal (or an id) the partner must receive exactly when
/// `shown_to` says so.
struct Marker {
    text: String,
    what: String,
    shown_to: ShownTo,
}

/// What was written about a person.
struct Person {
    id: String,
    /// The identity keys given.
    keys: BTreeSet<&'static str>,
    /// The partners a need was referred to.
    referred_to: BTreeSet<usize>,
    consents: Vec<ConsentPlan>,
    bases: Vec<usize>,
    markers: Vec<Marker>,
}

impl Person {
    /// What `org` may see of this person, from the rules in words.
    fn allowed(&self, org: usize, agreement: Option<&BTreeSet<CardField>>) -> BTreeSet<CardField> {
        let Some(agreement) = agreement else {
            return BTreeSet::new();
        };
        let person: BTreeSet<CardField> = if self.bases.contains(&org) {
            CardField::ALL.into_iter().collect()
        } else {
            self.consents
                .iter()
                .filter(|c| c.referral_purpose && !c.withdrawn && c.covers(org))
                .flat_map(|c| c.data())
                .collect()
        };
        agreement.intersection(&person).copied().collect()
    }
}

struct Net {
    operator: String,
    supervisor: String,
    /// Per partner: id, service id, a staff token.
    orgs: Vec<(String, String, String)>,
    last: i64,
}

impl Net {
    async fn post(
        &mut self,
        s: &Server,
        path: &str,
        token: &str,
        body: &Value,
        status: u16,
    ) -> Value {
        let w = s.post_ok(path, token, body, status).await;
        if let Some(p) = w["position"].as_i64() {
            self.last = self.last.max(p);
        }
        w
    }
}

fn consent_body(c: &ConsentPlan, net: &Net) -> Value {
    let organizations = match &c.scope {
        None => json!("network"),
        Some(_) => json!(
            (0..ORGS)
                .filter(|o| c.covers(*o))
                .map(|o| net.orgs[o].0.clone())
                .collect::<Vec<_>>()
        ),
    };
    json!({
        "purpose": if c.referral_purpose { "referral" } else { "mediation" },
        "organizations": organizations,
        "data": c.data().into_iter().map(field_name).collect::<Vec<_>>(),
        "given_on": "2026-01-10",
        // The person's language (Zulu: no other value here says "zu").
        "notice_language": "zu"
    })
}

/// What the checks covered, for the summary line.
#[derive(Debug, Default)]
struct Tally {
    cards: usize,
    refused: usize,
    shown: usize,
    withheld: usize,
}

async fn run(s: &Server, sc: &Scenario, ctx: &str, tally: &mut Tally) {
    let mut marks = Marks::default();
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let mut net = Net {
        operator: s.account(network, desk, "desk_operator").await,
        supervisor: s.account(network, desk, "desk_supervisor").await,
        orgs: Vec::new(),
        last: 0,
    };

    // The partners, each with one service and an agreement.
    for (i, o) in sc.orgs.iter().enumerate() {
        let body = json!({
            "name": format!("Partner {i}"),
            "kind": "non_profit",
            "ownership": "private",
            "contacts": { "address": "Potenza" },
            "status": "active",
            "services": [{
                "name": format!("Partner {i}: sportello"),
                "needs": CODES,
                "languages": ["it"],
                "interpretation": false,
                "eligibility": "Tutti",
                "location": "Potenza",
                "hours": {
                    "monday": [{"open": "09:00", "close": "12:00"}],
                    "tuesday": [], "wednesday": [], "thursday": [], "friday": [],
                    "saturday": [], "sunday": []
                },
                "closed_on": []
            }],
            "agreement": {
                "signed_on": s.day(-60),
                "valid_from": s.day(-55),
                "valid_to": s.day(730),
                "acknowledge_within": 2,
                "first_contact_within": 5,
                "visible_fields": fields(&o.visible).into_iter().map(field_name).collect::<Vec<_>>()
            }
        });
        let op = net.operator.clone();
        let w = net.post(s, "/api/v1/organizations", &op, &body, 201).await;
        let id = w["id"].as_str().unwrap().to_owned();
        let org = s
            .get_ok(
                &format!("/api/v1/organizations/{id}?min_position={}", w["position"]),
                &net.operator,
            )
            .await;
        let service = org["services"][0]["service_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let staff = s
            .account(network, OrganizationId(id.parse().unwrap()), "partner")
            .await;
        net.orgs.push((id, service, staff));
    }

    let mut persons = Vec::new();
    for (pi, p) in sc.persons.iter().enumerate() {
        let mut markers: Vec<Marker> = Vec::new();
        let identity_marker = |markers: &mut Vec<Marker>, text: String, key: &str| {
            let f = key_field(key).unwrap();
            markers.push(Marker {
                text,
                what: format!("identity.{key}"),
                shown_to: Box::new(move |_, allow| allow.contains(&f)),
            });
        };
        let name = marks.next();
        identity_marker(&mut markers, name.clone(), "names");
        let mut body = json!({
            "names": [{ "kind": "as_used", "text": format!("Demo {name}") }],
            "channel": "desk"
        });
        let mut keys = BTreeSet::from(["names"]);
        for ((key, _), on) in OPTIONAL.iter().zip(&p.identity) {
            if !on {
                continue;
            }
            keys.insert(*key);
            let v = match *key {
                "birth_date" => {
                    let d = format!("1931-02-1{pi}");
                    identity_marker(&mut markers, d.clone(), key);
                    json!(d)
                }
                "sex" => json!("female"),
                "country_of_birth" => json!("NG"),
                "citizenships" => json!(["NG", "GH"]),
                "languages" => json!([{ "code": "ha", "proficiency": "native" }]),
                "contacts" => {
                    let (phone, email, address) = (marks.next(), marks.next(), marks.next());
                    for m in [&phone, &email, &address] {
                        identity_marker(&mut markers, m.clone(), key);
                    }
                    json!({ "phone": phone, "email": format!("{email}@example.org"), "address": address })
                }
                "documents" => {
                    let n = marks.next();
                    identity_marker(&mut markers, n.clone(), key);
                    json!([{ "kind": "passport", "number": n, "issuing_country": "NG" }])
                }
                "vulnerabilities" => json!(["pregnancy"]),
                _ => unreachable!(),
            };
            body[*key] = v;
        }
        let consents = p.consents.clone();
        let mut consent_ids = Vec::new();
        if let Some(first) = consents.first() {
            body["consent"] = consent_body(first, &net);
        }
        let op = net.operator.clone();
        let taken = net.post(s, "/api/v1/persons", &op, &body, 201).await;
        let pid = taken["id"].as_str().unwrap().to_owned();
        if !consents.is_empty() {
            consent_ids.push(taken["consent_id"].as_str().unwrap().to_owned());
        }
        for c in consents.iter().skip(1) {
            let w = net
                .post(
                    s,
                    &format!("/api/v1/persons/{pid}/consents"),
                    &op,
                    &consent_body(c, &net),
                    201,
                )
                .await;
            consent_ids.push(w["consent_id"].as_str().unwrap().to_owned());
        }
        for (c, cid) in consents.iter().zip(&consent_ids) {
            let c = c.clone();
            markers.push(Marker {
                text: cid.clone(),
                what: "consent".into(),
                shown_to: Box::new(move |o, _| c.covers(o)),
            });
        }
        let sup = net.supervisor.clone();
        for &o in &p.bases {
            let reason = marks.next();
            let w = net
                .post(
                    s,
                    &format!("/api/v1/persons/{pid}/legal-bases"),
                    &sup,
                    &json!({ "organization_id": net.orgs[o].0, "basis": "public_task", "reason": format!("Demo {reason}") }),
                    201,
                )
                .await;
            markers.push(Marker {
                text: reason,
                what: "legal basis reason".into(),
                shown_to: Box::new(|_, _| false),
            });
            markers.push(Marker {
                text: w["legal_basis_id"].as_str().unwrap().to_owned(),
                what: "legal basis".into(),
                shown_to: Box::new(move |org, _| org == o),
            });
        }
        if p.visit {
            let note = marks.next();
            net.post(
                s,
                &format!("/api/v1/persons/{pid}/visits"),
                &op,
                &json!({ "channel": "phone", "note": format!("Demo {note}") }),
                201,
            )
            .await;
            markers.push(Marker {
                text: note,
                what: "visit note".into(),
                // No partner sees a visit, nor whether it has a note.
                shown_to: Box::new(|_, _| false),
            });
        }
        // A need of its own, never referred: shown to no partner, whatever
        // the consent and the agreement allow.
        let mut needs: Vec<(Option<usize>, bool)> = Vec::new();
        if p.lone_need {
            needs.push((None, true));
        }
        let covered = |o: usize| {
            p.bases.contains(&o) || p.consents.iter().any(|c| c.referral_purpose && c.covers(o))
        };
        for (o, (refer, _, need_note, _, _)) in p.refer.iter().enumerate() {
            if *refer && covered(o) {
                needs.push((Some(o), *need_note));
            }
        }
        let mut referred_to = BTreeSet::new();
        for (k, (to, with_note)) in needs.into_iter().enumerate() {
            let note = with_note.then(|| marks.next());
            let mut nb = json!({ "code": CODES[k % CODES.len()] });
            if let Some(n) = &note {
                nb["note"] = json!(format!("Demo {n}"));
            }
            let w = net
                .post(s, &format!("/api/v1/persons/{pid}/needs"), &op, &nb, 201)
                .await;
            let nid = w["need_id"].as_str().unwrap().to_owned();
            // The partners the need goes to: the one it is referred to, and
            // the next one if the desk redirects it there after a decline.
            let redirect_to = to.and_then(|o| {
                let (_, _, _, declined, redirect) = p.refer[o];
                let next = (o + 1) % ORGS;
                (declined && redirect && covered(next)).then_some(next)
            });
            let need_shown = move |org: usize, _: &BTreeSet<CardField>| {
                to == Some(org) || redirect_to == Some(org)
            };
            markers.push(Marker {
                text: nid.clone(),
                what: "need".into(),
                shown_to: Box::new(need_shown),
            });
            if let Some(n) = note {
                markers.push(Marker {
                    text: n,
                    what: "need note".into(),
                    shown_to: Box::new(move |org, allow| {
                        need_shown(org, allow) && allow.contains(&CardField::Notes)
                    }),
                });
            }
            let Some(o) = to else { continue };
            let (_, with_note, _, declined, _) = p.refer[o];
            referred_to.insert(o);
            let mut rb = json!({
                "person_id": pid, "need_id": nid,
                "organization_id": net.orgs[o].0, "service_id": net.orgs[o].1
            });
            let mut notes = Vec::new();
            if with_note {
                let n = marks.next();
                rb["note"] = json!(format!("Demo {n}"));
                notes.push(n);
            }
            let w = net.post(s, "/api/v1/referrals", &op, &rb, 201).await;
            let rid = w["referral_id"].as_str().unwrap().to_owned();
            if declined {
                let text = marks.next();
                let staff = net.orgs[o].2.clone();
                net.post(
                    s,
                    &format!("/api/v1/referrals/{rid}/decline"),
                    &staff,
                    &json!({ "reason": "other", "text": format!("Demo {text}") }),
                    200,
                )
                .await;
                notes.push(text);
            }
            if let Some(next) = redirect_to {
                let w = net
                    .post(
                        s,
                        &format!("/api/v1/referrals/{rid}/redirect"),
                        &op,
                        &json!({
                            "organization_id": net.orgs[next].0,
                            "service_id": net.orgs[next].1
                        }),
                        201,
                    )
                    .await;
                referred_to.insert(next);
                // The new referral is the next partner's; the chain's other
                // end is neither's business.
                markers.push(Marker {
                    text: w["referral_id"].as_str().unwrap().to_owned(),
                    what: "redirected referral".into(),
                    shown_to: Box::new(move |org, _| org == next),
                });
            }
            markers.push(Marker {
                text: rid,
                what: "referral".into(),
                shown_to: Box::new(move |org, _| org == o),
            });
            for n in notes {
                markers.push(Marker {
                    text: n,
                    what: "referral note".into(),
                    shown_to: Box::new(move |org, allow| {
                        org == o && allow.contains(&CardField::Notes)
                    }),
                });
            }
        }
        // Consents withdrawn after the referrals.
        for (c, cid) in consents.iter().zip(&consent_ids) {
            if c.withdrawn {
                net.post(
                    s,
                    &format!("/api/v1/persons/{pid}/consents/{cid}/withdraw"),
                    &op,
                    &json!({ "withdrawn_on": "2026-02-01" }),
                    200,
                )
                .await;
            }
        }
        persons.push(Person {
            id: pid,
            keys,
            referred_to,
            consents,
            bases: p.bases.clone(),
            markers,
        });
    }

    // Agreements ended after the referrals: the partner sees nothing more.
    let today = s.day(0);
    for (o, plan) in sc.orgs.iter().enumerate() {
        if !plan.ended {
            continue;
        }
        let id = net.orgs[o].0.clone();
        let res = s
            .http
            .patch(s.url(&format!("/api/v1/organizations/{id}")))
            .bearer_auth(&net.operator)
            .json(&json!({ "end_agreement_on": today }))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let w: Value = res.json().await.unwrap();
        assert_eq!(status, 200, "{ctx}: ending an agreement: {w}");
        net.last = net.last.max(w["position"].as_i64().unwrap());
        s.get_ok(
            &format!("/api/v1/organizations/{id}?min_position={}", net.last),
            &net.operator,
        )
        .await;
    }

    // What each partner receives.
    for (o, plan) in sc.orgs.iter().enumerate() {
        let (org_id, _, staff) = &net.orgs[o];
        let agreement = (!plan.ended).then(|| fields(&plan.visible));
        let mut own_referrals = BTreeSet::new();
        for p in &persons {
            let path = format!("/api/v1/persons/{}/card?min_position={}", p.id, net.last);
            if !p.referred_to.contains(&o) {
                let res = s.get(&path, staff).await;
                assert_eq!(
                    res.status().as_u16(),
                    404,
                    "{ctx}: partner {o} reads the card of person {} not referred to it",
                    p.id
                );
                tally.refused += 1;
                continue;
            }
            let res = s.get(&path, staff).await;
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            assert_eq!(status, 200, "{ctx}: {text}");
            tally.cards += 1;
            let allow = p.allowed(o, agreement.as_ref());
            let why = format!(
                "{ctx}: partner {o} (agreement {agreement:?}), person {}: allowed {allow:?}\n{text}",
                p.id
            );
            for m in &p.markers {
                let expected = (m.shown_to)(o, &allow);
                let found = text.contains(&m.text);
                assert!(
                    !found || expected,
                    "LEAK: {} {} shown though not allowed; {why}",
                    m.what,
                    m.text
                );
                assert!(
                    found || !expected,
                    "{} {} allowed but not shown; {why}",
                    m.what,
                    m.text
                );
                if expected {
                    tally.shown += 1;
                } else {
                    tally.withheld += 1;
                }
            }
            let card: Value = serde_json::from_str(&text).unwrap();
            let shown: BTreeSet<&str> = card["identity"]["data"]
                .as_object()
                .unwrap_or_else(|| panic!("an open identity; {why}"))
                .keys()
                .map(String::as_str)
                .collect();
            // The stored identity holds every key (empty when not given):
            // exactly those of allowed fields show.
            let expected: BTreeSet<&str> = std::iter::once("names")
                .chain(OPTIONAL.iter().map(|(k, _)| *k))
                .filter(|k| key_field(k).is_some_and(|f| allow.contains(&f)))
                .collect();
            assert_eq!(shown, expected, "identity keys; {why}");
            // A shown key holds the value given (coded values have no marker).
            for k in &expected {
                let v = &card["identity"]["data"][*k];
                assert_eq!(empty(v), !p.keys.contains(k), "identity.{k}; {why}");
            }
            for r in card["referrals"].as_array().unwrap() {
                assert_eq!(r["organization_id"], org_id.as_str(), "{why}");
                own_referrals.insert(r["referral_id"].as_str().unwrap().to_owned());
            }
            for b in card["legal_bases"].as_array().unwrap() {
                assert_eq!(b["organization_id"], org_id.as_str(), "{why}");
                assert_eq!(b["reason"], json!({ "state": "hidden" }), "{why}");
            }
            // The notice's language is the person's: shown with their
            // languages only.
            for c in card["consents"].as_array().unwrap() {
                let expected = if allow.contains(&CardField::Languages) {
                    json!("zu")
                } else {
                    Value::Null
                };
                assert_eq!(c["notice_language"], expected, "{why}");
                assert!(c.get("recorded_by").is_none(), "{why}");
            }
            // Of the case, no visit and nothing that tells something else
            // happened on it.
            for key in ["visits", "version", "updated_at", "operator_id"] {
                assert!(card.get(key).is_none(), "{key} shown; {why}");
            }
            for t in card["timeline"].as_array().unwrap() {
                let kind = t["event_type"].as_str().unwrap();
                assert!(
                    t["stream_kind"] == "referral"
                        || [
                            "PersonTakenInCharge",
                            "CaseClosed",
                            "CaseReopened",
                            "PersonErased"
                        ]
                        .contains(&kind),
                    "{kind} on the timeline; {why}"
                );
            }
        }

        // The inbox: its own referrals, ids and codes, nothing personal.
        let inbox = s
            .get(
                &format!(
                    "/api/v1/organizations/{org_id}/inbox?status=all&min_position={}",
                    net.last
                ),
                staff,
            )
            .await;
        assert_eq!(inbox.status().as_u16(), 200, "{ctx}");
        let text = inbox.text().await.unwrap();
        assert!(
            !text.contains("QQMK"),
            "{ctx}: LEAK in the inbox of {o}: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        let listed: BTreeSet<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["referral_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed, own_referrals, "{ctx}: inbox of {o}: {text}");
        for p in &persons {
            for m in p
                .markers
                .iter()
                .filter(|m| m.what == "referral" || m.what == "redirected referral")
            {
                assert_eq!(
                    text.contains(&m.text),
                    (m.shown_to)(o, &BTreeSet::new()),
                    "{ctx}: inbox of {o}: {text}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_never_receives_a_field_outside_what_agreement_and_consent_allow() {
    let seed: u64 = std::env::var("PARTNER_VIEW_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let cases: usize = std::env::var("PARTNER_VIEW_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    eprintln!("partner_view: PARTNER_VIEW_SEED={seed}");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    let s = Server::start().await;
    let mut tally = Tally::default();
    for case in 0..cases {
        let sc = scenario().new_tree(&mut runner).unwrap().current();
        let ctx = format!("PARTNER_VIEW_SEED={seed} case {case}: {sc:?}");
        run(&s, &sc, &ctx, &mut tally).await;
    }
    eprintln!("partner_view: {cases} scenarios, {tally:?}");
    s.stop().await;
}
