//! Erasure against a running server (real PostgreSQL and NATS).
//!
//! A person who went through the whole network — intake with every kind
//! of personal value, visits, a legal basis, needs, a referral declined
//! with a text and one completed with a note, reads of their card,
//! history and export — is erased on their request: afterwards none of
//! their values is found in the raw text of any table, any JetStream
//! message (subject, headers, payload) or any answer the desk, a partner,
//! the coordinator or the administrator can get, while another person's
//! values still are; the bottleneck report is unchanged and the card keeps
//! its facts with the personal parts marked erased.
//!
//! The retention rule ([`sportello_http::erasure::retain`]), with the time
//! as an input: only the cases closed longer than the period are erased,
//! the report names exactly them, each case records `PersonErased` with
//! the reason `retention` and has its key shredded, a person whose key was
//! shredded but whose erasure was never recorded is finished, and a second
//! run erases nothing.

use serde_json::{Value, json};
use sportello_domain::{NetworkId, OrganizationId, PersonId};
use sportello_store::{EventStore, Keyring};
use time::OffsetDateTime;

mod common;
use common::*;

/// Act on a referral as `token`, expecting 200; the answer.
async fn act(s: &Server, token: &str, referral: &str, action: &str, body: Option<Value>) -> Value {
    let res = s
        .post_with(
            &format!("/api/v1/referrals/{referral}/{action}"),
            token,
            body.as_ref(),
            &[],
        )
        .await;
    let got = res.status().as_u16();
    let text = res.text().await.unwrap();
    assert_eq!(got, 200, "{action}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// GET as `token`, expecting `status`; the answer's text.
async fn text(s: &Server, path: &str, token: &str, status: u16) -> String {
    let res = s.get(path, token).await;
    let got = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "GET {path}: {body}");
    body
}

/// A search (the query in the body), expecting 200; the answer's text.
async fn search_text(s: &Server, q: &str, token: &str) -> String {
    let res = s
        .post_with(
            "/api/v1/persons/search",
            token,
            Some(&json!({ "q": q })),
            &[],
        )
        .await;
    let got = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(got, 200, "search {q}: {body}");
    body
}

/// A search; the answer's JSON.
async fn search(s: &Server, q: &str, token: &str) -> Value {
    serde_json::from_str(&search_text(s, q, token).await).unwrap()
}

/// The values to look for: each as given, and hex-encoded (a `bytea`'s
/// rendering).
fn needles(values: &[&str]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| [(*v).to_owned(), hex(v)])
        .collect()
}

fn found_in<'a>(haystack: &str, needles: &'a [String]) -> Vec<&'a str> {
    needles
        .iter()
        .filter(|n| haystack.contains(n.as_str()))
        .map(String::as_str)
        .collect()
}

// X's personal values, all distinctive. (Consent terms — whom, which
// data, the day given — are facts of the case in the public part, like a
// referral's times, not personal values: they are not looked for.)
const X_NAME: &str = "Demo Quorvan Thelbrisk";
const X_ALIAS: &str = "Demo Zenthuo Kaplimar";
const X_BIRTH: &str = "1983-07-19";
const X_PHONE: &str = "+39 333 918 2746";
const X_EMAIL: &str = "quorvan.thelbrisk@example.org";
const X_ADDRESS: &str = "Via dei Glicini Xelvat 47, Potenza";
const X_DOCUMENT: &str = "XQ7719353";
const X_VISIT_NOTE: &str = "Visita: Quorvan parla del fratello a Keren";
const X_NEED_NOTE: &str = "Nota bisogno: dialisi ogni martedi Vrelmot";
const X_DESK_NOTE: &str = "Risolto: informato Quorvan sul permesso Skalvor";
const X_REFERRAL_NOTE: &str = "Nota invio: chiamare dopo le 17 Brastov";
const X_DECLINE_TEXT: &str = "Rifiuto: Thelbrisk seguito da noi nel 2019 Ormelk";
const X_COMPLETE_NOTE: &str = "Esito: tessera consegnata a Quorvan Wintrel";
const X_LEGAL_REASON: &str = "Base giuridica: ricovero urgente di Quorvan Ptalmix";

/// X's personal values, as written.
const X_VALUES: [&str; 14] = [
    X_NAME,
    X_ALIAS,
    X_BIRTH,
    X_PHONE,
    X_EMAIL,
    X_ADDRESS,
    X_DOCUMENT,
    X_VISIT_NOTE,
    X_NEED_NOTE,
    X_DESK_NOTE,
    X_REFERRAL_NOTE,
    X_DECLINE_TEXT,
    X_COMPLETE_NOTE,
    X_LEGAL_REASON,
];

const Y_NAME: &str = "Demo Yelena Prykladova";
const Y_PHONE: &str = "+39 347 550 1189";
const Y_VISIT_NOTE: &str = "Visita: Yelena chiede del corso Hrovatin";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_erasure_no_personal_value_is_found_anywhere_and_the_report_is_unchanged() {
    let started = std::time::Instant::now();
    let s = Server::start().await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    let supervisor = s.account(network, desk, "desk_supervisor").await;
    let coordinator = s.account(network, desk, "coordinator").await;
    let admin = s.account(network, desk, "admin").await;
    let (asl, asl_service) = provider(
        &s,
        &coordinator,
        "Demo ASL di Potenza",
        "health_authority",
        &["health_ssn_registration", "health_stp_code"],
    )
    .await;
    let partner = s
        .account(network, OrganizationId(asl.parse().unwrap()), "partner")
        .await;
    let refer = |pid: &str, nid: &str, note: Option<&str>| {
        json!({ "person_id": pid, "need_id": nid, "organization_id": asl,
                "service_id": asl_service, "note": note })
    };

    // Y, who stays: taken in charge, one visit, one need referred and accepted.
    let y = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &consented(json!({
                "names": [{"kind": "as_in_document", "text": Y_NAME}],
                "birth_date": "1961-02",
                "contacts": {"phone": Y_PHONE},
                "vulnerabilities": ["elderly"],
                "channel": "desk"
            })),
            201,
        )
        .await;
    let y = y["id"].as_str().unwrap().to_owned();
    s.post_ok(
        &format!("/api/v1/persons/{y}/visits"),
        &operator,
        &json!({ "channel": "phone", "note": Y_VISIT_NOTE }),
        201,
    )
    .await;
    let yn = s
        .post_ok(
            &format!("/api/v1/persons/{y}/needs"),
            &operator,
            &json!({ "code": "health_ssn_registration" }),
            201,
        )
        .await;
    let yr = s
        .post_ok(
            "/api/v1/referrals",
            &operator,
            &refer(&y, yn["need_id"].as_str().unwrap(), None),
            201,
        )
        .await;
    act(
        &s,
        &partner,
        yr["referral_id"].as_str().unwrap(),
        "accept",
        None,
    )
    .await;

    // X: every kind of personal value, taken in charge with an
    // Idempotency-Key (its first answer, likely duplicates and all, is
    // kept sealed under X's key).
    let x_body = consented(json!({
        "names": [
            {"kind": "as_in_document", "text": X_NAME},
            {"kind": "alias", "text": X_ALIAS}
        ],
        "birth_date": X_BIRTH,
        "sex": "male",
        "country_of_birth": "ER",
        "citizenships": ["ER"],
        "languages": [{"code": "ti", "proficiency": "native"}],
        "contacts": {"phone": X_PHONE, "email": X_EMAIL, "address": X_ADDRESS},
        "documents": [{"kind": "passport", "number": X_DOCUMENT,
                       "issuing_country": "ER", "expires_on": "2031-04-30"}],
        "vulnerabilities": ["trafficking_victim", "serious_illness"],
        "channel": "outreach"
    }));
    let x_key = uuid::Uuid::new_v4().to_string();
    let x = s
        .post_with(
            "/api/v1/persons",
            &operator,
            Some(&x_body),
            &[("idempotency-key", &x_key)],
        )
        .await;
    assert_eq!(x.status(), 201);
    let x: Value = x.json().await.unwrap();
    let x = x["id"].as_str().unwrap().to_owned();
    s.post_ok(
        &format!("/api/v1/persons/{x}/visits"),
        &operator,
        &json!({ "channel": "desk", "note": X_VISIT_NOTE }),
        201,
    )
    .await;
    s.post_ok(
        &format!("/api/v1/persons/{x}/legal-bases"),
        &supervisor,
        &json!({ "organization_id": asl, "basis": "vital_interests", "reason": X_LEGAL_REASON }),
        201,
    )
    .await;
    let need = |code: &str| json!({ "code": code, "urgency": "high", "note": X_NEED_NOTE });
    let mut needs = Vec::new();
    for code in [
        "health_ssn_registration",
        "health_stp_code",
        "registry_residence",
    ] {
        let n = s
            .post_ok(
                &format!("/api/v1/persons/{x}/needs"),
                &operator,
                &need(code),
                201,
            )
            .await;
        needs.push(n["need_id"].as_str().unwrap().to_owned());
    }
    s.post_ok(
        &format!("/api/v1/persons/{x}/needs/{}/resolve", needs[2]),
        &operator,
        &json!({ "outcome": "information_given", "note": X_DESK_NOTE }),
        200,
    )
    .await;
    // One referral declined with a text, one completed with a note.
    let declined = s
        .post_ok(
            "/api/v1/referrals",
            &operator,
            &refer(&x, &needs[0], Some(X_REFERRAL_NOTE)),
            201,
        )
        .await;
    let declined = declined["referral_id"].as_str().unwrap().to_owned();
    act(&s, &partner, &declined, "acknowledge", None).await;
    act(
        &s,
        &partner,
        &declined,
        "decline",
        Some(json!({ "reason": "other", "text": X_DECLINE_TEXT })),
    )
    .await;
    let completed = s
        .post_ok(
            "/api/v1/referrals",
            &operator,
            &refer(&x, &needs[1], Some(X_REFERRAL_NOTE)),
            201,
        )
        .await;
    let completed = completed["referral_id"].as_str().unwrap().to_owned();
    act(&s, &partner, &completed, "accept", None).await;
    act(&s, &partner, &completed, "start", None).await;
    let last = act(
        &s,
        &partner,
        &completed,
        "complete",
        Some(json!({ "outcome": "need_met", "note": X_COMPLETE_NOTE })),
    )
    .await;
    let pos = last["position"].as_i64().unwrap();

    // Every answer anyone can get about X (reads are themselves audited).
    let answers = |pos: i64| {
        let (s, x, y) = (&s, x.clone(), y.clone());
        let (operator, supervisor, partner, coordinator, admin) = (
            operator.clone(),
            supervisor.clone(),
            partner.clone(),
            coordinator.clone(),
            admin.clone(),
        );
        let asl = asl.clone();
        async move {
            let mut all = vec![
                text(
                    s,
                    &format!("/api/v1/persons/{x}/card?min_position={pos}"),
                    &operator,
                    200,
                )
                .await,
                text(
                    s,
                    &format!("/api/v1/persons/{x}/card?min_position={pos}"),
                    &partner,
                    200,
                )
                .await,
                text(s, &format!("/api/v1/persons/{x}/history"), &operator, 200).await,
                text(s, &format!("/api/v1/persons/{x}/export"), &supervisor, 200).await,
                text(
                    s,
                    &format!("/api/v1/persons/{x}/export?format=html"),
                    &supervisor,
                    200,
                )
                .await,
                text(
                    s,
                    &format!("/api/v1/organizations/{asl}/inbox?status=all&min_position={pos}"),
                    &partner,
                    200,
                )
                .await,
                text(
                    s,
                    &format!("/api/v1/organizations/{asl}/inbox?status=all&min_position={pos}"),
                    &operator,
                    200,
                )
                .await,
                text(
                    s,
                    &format!("/api/v1/activity?min_position={pos}&limit=500"),
                    &operator,
                    200,
                )
                .await,
                text(s, "/api/v1/audit/reads?limit=500", &admin, 200).await,
                text(
                    s,
                    &format!("/api/v1/audit/reads?person_id={x}&limit=500"),
                    &admin,
                    200,
                )
                .await,
                text(s, "/api/v1/audit/sign-ins?limit=500", &admin, 200).await,
                text(s, "/api/v1/organizations", &coordinator, 200).await,
            ];
            for q in ["Quorvan", "thelbrisk", "zenthuo kaplimar", "XQ7719353"] {
                all.push(search_text(s, q, &operator).await);
            }
            // Y's card, as the partner (the referral is its own) and the
            // desk see it.
            for token in [&partner, &operator] {
                all.push(
                    text(
                        s,
                        &format!("/api/v1/persons/{y}/card?min_position={pos}"),
                        token,
                        200,
                    )
                    .await,
                );
            }
            all
        }
    };

    let before = answers(pos).await;
    let before = before.join("\n");
    for v in X_VALUES.into_iter().chain(["trafficking_victim"]) {
        assert!(before.contains(v), "the answers show {v:?} before erasure");
    }
    let found = search(&s, "Quorvan", &operator).await;
    assert_eq!(found["items"][0]["person_id"], x.as_str(), "{found}");

    // The bottleneck report over a fixed period covering now.
    let today = s.now().date();
    let period = format!(
        "from={}&to={}",
        today.previous_day().unwrap(),
        today.next_day().unwrap()
    );
    let report_before = s
        .get_ok(
            &format!("/api/v1/reports/bottlenecks?{period}&min_position={pos}"),
            &coordinator,
        )
        .await;
    assert!(
        !report_before["rows"].as_array().unwrap().is_empty(),
        "{report_before}"
    );

    // Erase X: only a supervisor may; a second erasure is 410.
    problem(
        s.post_with(
            &format!("/api/v1/persons/{x}/erase"),
            &operator,
            Some(&json!({ "reason": "request" })),
            &[],
        )
        .await,
        403,
    )
    .await;
    let erased = s
        .post_with(
            &format!("/api/v1/persons/{x}/erase"),
            &supervisor,
            Some(&json!({ "reason": "request" })),
            &[],
        )
        .await;
    assert_eq!(erased.status(), 200);
    let etag = erased.headers()["etag"].to_str().unwrap().to_owned();
    let erased: Value = erased.json().await.unwrap();
    let erased_at = erased["position"].as_i64().unwrap();
    assert!(erased_at > pos, "{erased}");
    assert!(etag.starts_with('"'), "the case's version: {etag}");
    let again = problem(
        s.post_with(
            &format!("/api/v1/persons/{x}/erase"),
            &supervisor,
            Some(&json!({ "reason": "request" })),
            &[],
        )
        .await,
        410,
    )
    .await;
    assert!(
        again["type"].as_str().unwrap().ends_with("/erased"),
        "{again}"
    );
    let (erasures,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM events WHERE event_type = 'PersonErased'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(erasures, 1, "a second erasure appends nothing");
    // The intake's kept answer went with X's key: a retry is 410, and no
    // answer about X is kept in clear.
    problem(
        s.post_with(
            "/api/v1/persons",
            &operator,
            Some(&x_body),
            &[("idempotency-key", &x_key)],
        )
        .await,
        410,
    )
    .await;
    let (clear,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM idempotency WHERE stream_id = $1 AND answer IS NOT NULL",
    )
    .bind(uuid::Uuid::parse_str(&x).unwrap())
    .fetch_one(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(clear, 0, "an answer about X kept in clear");

    // Relayed and projected.
    let events = s.event_count().await;
    let mut stream = relayed(&s, events as u64).await;
    let after = answers(erased_at).await;

    let x_values = needles(
        &[
            &X_VALUES[..],
            // Name words, as given and as a search index would fold them.
            &[
                "Quorvan",
                "quorvan",
                "Thelbrisk",
                "thelbrisk",
                "Zenthuo",
                "zenthuo",
                "Kaplimar",
                "kaplimar",
                "xq7719353",
                "3339182746",
            ],
        ]
        .concat(),
    );
    // Short codes, as JSON strings (their hex is too short to mean anything).
    let mut x_values = x_values;
    x_values.extend(
        [
            "\"ER\"",
            "\"ti\"",
            "trafficking_victim",
            "serious_illness",
            "2031-04-30",
        ]
        .map(str::to_owned),
    );

    let tables = all_table_text(&s.db.pool).await;
    assert!(tables.contains(&x), "the scan sees the tables");
    assert_eq!(
        found_in(&tables, &x_values),
        Vec::<&str>::new(),
        "in a table"
    );

    let bus = raw_messages(&mut stream).await;
    assert_eq!(bus.len() as i64, events, "every event is on the bus");
    assert!(
        bus.iter().any(|m| m.contains("PersonErased")),
        "the erasure is relayed"
    );
    for m in &bus {
        assert_eq!(
            found_in(m, &x_values),
            Vec::<&str>::new(),
            "on the bus: {m}"
        );
    }

    for a in &after {
        assert_eq!(
            found_in(a, &x_values),
            Vec::<&str>::new(),
            "in an answer: {a}"
        );
    }
    let after = after.join("\n");
    // The search could fail: Y's values are still there to read.
    for v in [Y_NAME, Y_PHONE, Y_VISIT_NOTE, "elderly"] {
        assert!(after.contains(v), "{v:?} of Y is still readable");
    }
    let found = search(&s, "Quorvan", &operator).await;
    assert_eq!(found["items"], json!([]), "X is not found by name");
    let found = search(&s, "Prykladova", &operator).await;
    assert_eq!(found["items"][0]["person_id"], y.as_str(), "Y still is");

    // The report is the same; only `generated_at` (the time of the
    // request) differs.
    let mut report_after = s
        .get_ok(
            &format!("/api/v1/reports/bottlenecks?{period}&min_position={erased_at}"),
            &coordinator,
        )
        .await;
    let mut report_before = report_before;
    report_before
        .as_object_mut()
        .unwrap()
        .remove("generated_at");
    report_after.as_object_mut().unwrap().remove("generated_at");
    assert_eq!(report_after, report_before);

    // The card keeps its facts; the personal parts say erased.
    let card = s
        .get_ok(&format!("/api/v1/persons/{x}/card"), &operator)
        .await;
    assert_eq!(card["identity"]["state"], "erased", "{card}");
    let card_needs = card["needs"].as_array().unwrap();
    assert_eq!(card_needs.len(), 3, "{card}");
    assert!(
        card_needs.iter().all(|n| n["note"]["state"] == "erased"),
        "{card}"
    );
    let state_of =
        |id: &str| card_needs.iter().find(|n| n["need_id"] == id).unwrap()["state"].clone();
    assert_eq!(state_of(&needs[1]), "met");
    assert_eq!(state_of(&needs[2]), "resolved_at_desk");
    let referrals = card["referrals"].as_array().unwrap();
    assert_eq!(referrals.len(), 2, "{card}");
    let status_of =
        |id: &str| referrals.iter().find(|r| r["referral_id"] == id).unwrap()["status"].clone();
    assert_eq!(status_of(&declined), "declined");
    assert_eq!(status_of(&completed), "completed");
    assert_eq!(card["visits"].as_array().unwrap().len(), 2, "{card}");
    // Every personal part on the card (identity, notes, reasons in words)
    // says erased, none is open or merely hidden.
    let parts = sealed_parts(&card);
    assert!(parts.len() >= 1 + 3 + 1 + 1 + 3, "{card}");
    assert!(
        parts.iter().all(|p| **p == json!({ "state": "erased" })),
        "{parts:?}"
    );
    assert!(
        card["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["event_type"] == "PersonErased"),
        "{card}"
    );
    s.stop().await;
    eprintln!("full-life erasure: {:?}", started.elapsed());
}

/// The personal parts of a card: objects with a `state` and nothing but a
/// `data` besides.
fn sealed_parts(v: &Value) -> Vec<&Value> {
    match v {
        Value::Object(o)
            if o.contains_key("state") && o.keys().all(|k| k == "state" || k == "data") =>
        {
            vec![v]
        }
        Value::Object(o) => o.values().flat_map(sealed_parts).collect(),
        Value::Array(a) => a.iter().flat_map(sealed_parts).collect(),
        _ => Vec::new(),
    }
}

/// Take a person in charge and close their case; their id.
async fn closed_case(s: &Server, operator: &str, name: &str) -> String {
    let taken = s
        .post_ok("/api/v1/persons", operator, &person(name), 201)
        .await;
    let pid = taken["id"].as_str().unwrap().to_owned();
    let closed = s
        .post_with(&format!("/api/v1/persons/{pid}/close"), operator, None, &[])
        .await;
    assert_eq!(closed.status(), 200);
    pid
}

/// When the cases projection says `pid` was closed.
async fn closed_at(s: &Server, pid: &str) -> OffsetDateTime {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let at: Option<OffsetDateTime> =
            sqlx::query_scalar("SELECT closed_at FROM cases WHERE person_id = $1::uuid")
                .bind(pid)
                .fetch_optional(&s.db.pool)
                .await
                .unwrap()
                .flatten();
        if let Some(at) = at {
            return at;
        }
        assert!(std::time::Instant::now() < deadline, "{pid} not projected");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_retention_rule_erases_only_cases_closed_past_the_period_and_says_so() {
    let started = std::time::Instant::now();
    let s = Server::start().await;
    let network = NetworkId::new();
    let operator = s
        .account(network, OrganizationId::new(), "desk_operator")
        .await;
    // Closed first: past the period at the chosen `now`.
    let old_a = closed_case(&s, &operator, "Demo Ritenuto Primo").await;
    let old_b = closed_case(&s, &operator, "Demo Ritenuto Secondo").await;
    // Closed, but its PersonErased was never recorded after the key was
    // shredded (a run that failed half-way): the next run finishes it.
    let half = closed_case(&s, &operator, "Demo Ritenuto Interrotto").await;
    let open = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &person("Demo Ancora Aperto"),
            201,
        )
        .await;
    let open = open["id"].as_str().unwrap().to_owned();
    // Closed later: within the period at the chosen `now`.
    let recent = closed_case(&s, &operator, "Demo Chiuso Adesso").await;

    let (a_at, half_at, recent_at) = (
        closed_at(&s, &old_a).await,
        closed_at(&s, &half).await,
        closed_at(&s, &recent).await,
    );
    assert!(half_at < recent_at);
    let years = 10;
    // `now` is `years` after a moment between the last old closing and
    // the recent one: the cutoff falls between them.
    let between: OffsetDateTime = half_at + (recent_at - half_at) / 2;
    let now = between.replace_year(between.year() + years as i32).unwrap();

    let keyring = Keyring::new(s.settings.master_key.clone().unwrap());
    let store = EventStore::new(s.db.pool.clone(), keyring.clone());
    assert!(
        keyring
            .shred(&s.db.pool, network, PersonId(half.parse().unwrap()))
            .await
            .unwrap()
    );

    let report = sportello_http::erasure::retain(&store, years, now)
        .await
        .unwrap();
    let mut expected: Vec<(NetworkId, PersonId)> = [&old_a, &old_b, &half]
        .iter()
        .map(|p| (network, PersonId(p.parse().unwrap())))
        .collect();
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.erased, expected, "oldest closing first: {report:?}");
    assert!(a_at < half_at);

    let erasures: Vec<(uuid::Uuid, Value)> = sqlx::query_as(
        "SELECT stream_id, payload FROM events WHERE event_type = 'PersonErased' ORDER BY position",
    )
    .fetch_all(&s.db.pool)
    .await
    .unwrap();
    let erased_ids: Vec<String> = erasures.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(erased_ids, [old_a.clone(), old_b.clone(), half.clone()]);
    for (_, payload) in &erasures {
        assert_eq!(payload, &json!({ "reason": "retention" }));
    }
    let keys: Vec<(uuid::Uuid, bool)> = sqlx::query_as(
        "SELECT person_id, wrapped_key IS NULL AND shredded_at IS NOT NULL FROM person_keys",
    )
    .fetch_all(&s.db.pool)
    .await
    .unwrap();
    for (person, shredded) in keys {
        let p = person.to_string();
        let should = [&old_a, &old_b, &half].contains(&&p);
        assert_eq!(shredded, should, "{p}: shredded {shredded}");
        assert!(should || p == open || p == recent);
    }
    // Their cards say erased; the others' do not.
    for p in [&old_a, &old_b, &half] {
        let card = s
            .get_ok(&format!("/api/v1/persons/{p}/card"), &operator)
            .await;
        assert_eq!(card["identity"]["state"], "erased", "{card}");
    }
    for p in [&open, &recent] {
        let card = s
            .get_ok(&format!("/api/v1/persons/{p}/card"), &operator)
            .await;
        assert_eq!(card["identity"]["state"], "open", "{card}");
    }

    // Again: nothing more to do.
    let events = s.event_count().await;
    let again = sportello_http::erasure::retain(&store, years, now)
        .await
        .unwrap();
    assert_eq!(again, sportello_http::erasure::RetentionReport::default());
    assert_eq!(
        s.event_count().await,
        events,
        "a second run appends nothing"
    );

    // Later still, the recent one is due too (the open one never is).
    let later = now + time::Duration::days(1);
    let report = sportello_http::erasure::retain(&store, years, later)
        .await
        .unwrap();
    expected = vec![(network, PersonId(recent.parse().unwrap()))];
    assert_eq!(report.erased, expected);
    s.stop().await;
    eprintln!("retention: {:?}", started.elapsed());
}

/// The rule checks the case itself, not the read model that found it: a
/// case the `cases` rows still show as closed long ago (they may lag) but
/// that was reopened, or closed again since the cutoff, is not erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_retention_rule_never_erases_a_case_reopened_or_closed_again_since() {
    use sportello_http::erasure::{Why, erase};
    let s = Server::start().await;
    let network = NetworkId::new();
    let operator = s
        .account(network, OrganizationId::new(), "desk_operator")
        .await;
    let reopened = closed_case(&s, &operator, "Demo Riaperto").await;
    let w = s
        .post_with(
            &format!("/api/v1/persons/{reopened}/reopen"),
            &operator,
            None,
            &[],
        )
        .await;
    assert_eq!(w.status(), 200);
    let reclosed = closed_case(&s, &operator, "Demo Richiuso").await;
    let first_close = closed_at(&s, &reclosed).await;
    for path in ["reopen", "close"] {
        let w = s
            .post_with(
                &format!("/api/v1/persons/{reclosed}/{path}"),
                &operator,
                None,
                &[],
            )
            .await;
        assert_eq!(w.status(), 200);
    }
    let keyring = Keyring::new(s.settings.master_key.clone().unwrap());
    let store = EventStore::new(s.db.pool.clone(), keyring);
    let now = s.now();
    for (pid, cutoff) in [
        (&reopened, now + time::Duration::days(1)),
        // Its first closing is before the cutoff, its last one after.
        (&reclosed, first_close + time::Duration::milliseconds(1)),
    ] {
        let person = PersonId(pid.parse().unwrap());
        let done = erase(&store, network, person, Why::Retention { cutoff }, now)
            .await
            .unwrap();
        assert!(done.is_none(), "{pid} was erased");
        let card = s
            .get_ok(&format!("/api/v1/persons/{pid}/card"), &operator)
            .await;
        assert_eq!(card["identity"]["state"], "open", "{pid}: {card}");
    }
    s.stop().await;
}
