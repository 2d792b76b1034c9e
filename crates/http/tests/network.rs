//! The case and referral network through the HTTP API against a running
//! server (real PostgreSQL and NATS): the scenario of a person with three
//! needs — one answered at the desk, one referred to the health authority
//! and completed, one referred to the job centre, declined, redirected to
//! a patronato and completed — and what the card, the inboxes and the
//! bottleneck report show of it; the lifecycle's refusals over HTTP; and
//! bad input on every new route.

use serde_json::{Value, json};
use sportello_domain::{NetworkId, OrganizationId};

mod common;
use common::*;

/// Act on a referral as `token`, expecting `status`.
async fn act(
    s: &Server,
    token: &str,
    referral: &str,
    action: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
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
    assert_eq!(got, status, "{action}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A new network with the tokens of its desk's operator and coordinator.
async fn desk_team(s: &Server) -> (NetworkId, String, String) {
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    let coordinator = s.account(network, desk, "coordinator").await;
    (network, operator, coordinator)
}

fn row<'a>(report: &'a Value, org: &str, stage: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["organization_id"] == org && r["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} row for {org} in {report}"))
}

/// The health authority (health registration), the job centre and a
/// patronato (both answering `job`), each with a staff account:
/// `(id, service, staff token)` each.
async fn partners(
    s: &Server,
    network: NetworkId,
    coordinator: &str,
    job: &str,
) -> [(String, String, String); 3] {
    let mut partners = Vec::new();
    for (name, kind, need) in [
        (
            "ASL di Potenza",
            "health_authority",
            "health_ssn_registration",
        ),
        ("Centro per l'Impiego di Potenza", "job_centre", job),
        ("Patronato INCA CGIL Potenza", "patronato", job),
    ] {
        let (id, service) = provider(s, coordinator, name, kind, &[need]).await;
        let staff = s
            .account(network, OrganizationId(id.parse().unwrap()), "partner")
            .await;
        partners.push((id, service, staff));
    }
    partners.try_into().expect("three partners")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_needs_through_the_network() {
    let s = Server::start().await;
    let (network, operator, coordinator) = desk_team(&s).await;

    let [
        (asl, asl_service, asl_staff),
        (cpi, cpi_service, cpi_staff),
        (pat, pat_service, pat_staff),
    ] = partners(&s, network, &coordinator, "job_centre_registration").await;

    // Taken in charge, three needs screened.
    let person = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &consented(json!({
                "names": [{"kind": "as_in_document", "text": "Demo Amina Esempio"}],
                "birth_date": "1994-03",
                "sex": "female",
                "country_of_birth": "NG",
                "citizenships": ["NG"],
                "languages": [{"code": "en", "proficiency": "fluent"}],
                "vulnerabilities": ["single_parent"],
                "channel": "desk"
            })),
            201,
        )
        .await;
    let pid = person["id"].as_str().unwrap().to_owned();
    let need = |code: &str| json!({ "code": code, "urgency": "normal", "note": "Demo note" });
    let n_desk = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &operator,
            &need("registry_residence"),
            201,
        )
        .await;
    let n_health = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &operator,
            &need("health_ssn_registration"),
            201,
        )
        .await;
    let n_job = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &operator,
            &need("job_centre_registration"),
            201,
        )
        .await;
    let (n_desk, n_health, n_job) = (
        n_desk["need_id"].as_str().unwrap().to_owned(),
        n_health["need_id"].as_str().unwrap().to_owned(),
        n_job["need_id"].as_str().unwrap().to_owned(),
    );

    // One answered at the desk.
    s.post_ok(
        &format!("/api/v1/persons/{pid}/needs/{n_desk}/resolve"),
        &operator,
        &json!({ "outcome": "information_given" }),
        200,
    )
    .await;

    // Matching for the job need: both providers that answer it.
    let m = s
        .get_ok(
            &format!("/api/v1/persons/{pid}/needs/{n_job}/matches"),
            &operator,
        )
        .await;
    let matched: Vec<&str> = m["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["organization_id"].as_str().unwrap())
        .collect();
    assert_eq!(matched.len(), 2, "{m}");
    assert!(matched.contains(&cpi.as_str()) && matched.contains(&pat.as_str()));
    assert!(
        m["matches"][0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("language"))
    );

    // Health need: ASL acknowledges, accepts, completes.
    let r_health = s
        .post_ok("/api/v1/referrals", &operator, &json!({ "person_id": pid, "need_id": n_health, "organization_id": asl, "service_id": asl_service }), 201)
        .await;
    assert!(
        r_health["acknowledge_by"].is_string(),
        "deadlines from the agreement: {r_health}"
    );
    let rh = r_health["referral_id"].as_str().unwrap().to_owned();
    act(&s, &asl_staff, &rh, "acknowledge", None, 200).await;
    act(&s, &asl_staff, &rh, "accept", None, 200).await;
    act(
        &s,
        &asl_staff,
        &rh,
        "complete",
        Some(json!({ "outcome": "need_met" })),
        200,
    )
    .await;
    // The lifecycle refuses what it does not allow.
    act(&s, &asl_staff, &rh, "accept", None, 409).await;
    act(&s, &operator, &rh, "cancel", None, 409).await;

    // Job need: the job centre declines for no capacity; the desk
    // redirects to the patronato, which completes it.
    let r_job = s
        .post_ok("/api/v1/referrals", &operator, &json!({ "person_id": pid, "need_id": n_job, "organization_id": cpi, "service_id": cpi_service }), 201)
        .await;
    let rj = r_job["referral_id"].as_str().unwrap().to_owned();
    // To another provider it does not exist; the desk may not decline it.
    act(
        &s,
        &asl_staff,
        &rj,
        "decline",
        Some(json!({ "reason": "no_capacity" })),
        404,
    )
    .await;
    act(
        &s,
        &operator,
        &rj,
        "decline",
        Some(json!({ "reason": "no_capacity" })),
        403,
    )
    .await;
    // A stale If-Match is refused.
    let stale = s
        .post_with(
            &format!("/api/v1/referrals/{rj}/acknowledge"),
            &cpi_staff,
            None,
            &[("if-match", "\"7\"")],
        )
        .await;
    problem(stale, 412).await;
    let declined = s
        .post_with(
            &format!("/api/v1/referrals/{rj}/decline"),
            &cpi_staff,
            Some(&json!({ "reason": "no_capacity", "text": "Agenda piena fino a gennaio" })),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(declined.status(), 200);
    assert_eq!(declined.headers()["etag"], "\"2\"");
    let redirected = act(
        &s,
        &operator,
        &rj,
        "redirect",
        Some(json!({ "organization_id": pat, "service_id": pat_service })),
        201,
    )
    .await;
    let rp = redirected["referral_id"].as_str().unwrap().to_owned();
    assert_eq!(redirected["redirected_from"], rj.as_str());
    act(
        &s,
        &operator,
        &rj,
        "redirect",
        Some(json!({ "organization_id": pat, "service_id": pat_service })),
        409,
    )
    .await;
    act(&s, &pat_staff, &rp, "accept", None, 200).await;
    act(&s, &pat_staff, &rp, "start", None, 200).await;
    let last = act(
        &s,
        &pat_staff,
        &rp,
        "complete",
        Some(json!({ "outcome": "need_met" })),
        200,
    )
    .await;
    let pos = last["position"].as_i64().unwrap();

    // The card shows exactly that.
    let card = s
        .get_ok(
            &format!("/api/v1/persons/{pid}/card?min_position={pos}"),
            &operator,
        )
        .await;
    assert_eq!(
        card["identity"]["data"]["names"][0]["text"],
        "Demo Amina Esempio"
    );
    let needs = card["needs"].as_array().unwrap();
    assert_eq!(needs.len(), 3);
    let state_of = |id: &str| needs.iter().find(|n| n["need_id"] == id).unwrap()["state"].clone();
    assert_eq!(state_of(&n_desk), "resolved_at_desk");
    assert_eq!(state_of(&n_health), "met");
    assert_eq!(state_of(&n_job), "met");
    // One field tells where a need stands (a met need once also said
    // `status: open`); the desk's own answer is named as such.
    for n in needs {
        assert!(n.get("status").is_none(), "{n}");
        let by_desk = n["need_id"] == n_desk.as_str();
        assert_eq!(n["desk_outcome"].is_string(), by_desk, "{n}");
        assert_eq!(n["resolved_at"].is_string(), by_desk, "{n}");
    }
    // Every key of the card once (the case's visits were written twice).
    let raw = s
        .get(&format!("/api/v1/persons/{pid}/card"), &operator)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(raw.matches("\"visits\"").count(), 1, "{raw}");
    let job_need = needs
        .iter()
        .find(|n| n["need_id"] == n_job.as_str())
        .unwrap();
    assert_eq!(
        job_need["referrals"],
        json!([rj, rp]),
        "the chain, in order"
    );
    let referrals = card["referrals"].as_array().unwrap();
    assert_eq!(referrals.len(), 3);
    let by_id = |id: &str| referrals.iter().find(|r| r["referral_id"] == id).unwrap();
    assert_eq!(by_id(&rh)["status"], "completed");
    let statuses = |id: &str| -> Vec<String> {
        by_id(id)["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        statuses(&rh),
        ["sent", "acknowledged", "accepted", "completed"]
    );
    assert_eq!(statuses(&rj), ["sent", "declined", "redirected"]);
    assert_eq!(
        statuses(&rp),
        ["sent", "accepted", "in_progress", "completed"]
    );
    assert_eq!(by_id(&rj)["decline_reason"], "no_capacity");
    assert_eq!(by_id(&rj)["redirected_to"], rp.as_str());
    assert_eq!(by_id(&rp)["redirected_from"], rj.as_str());
    assert_eq!(card["visits"].as_array().unwrap().len(), 1);
    let timeline = card["timeline"].as_array().unwrap();
    assert_eq!(
        timeline.len(),
        // opening, consent, three needs, one resolved; then the referrals
        5 + 1 + 4 + 3 + 4,
        "every event once: {timeline:?}"
    );
    // The card as it was before the first referral.
    let before = timeline
        .iter()
        .find(|t| t["event_type"] == "ReferralSent")
        .unwrap()["at"]
        .as_str()
        .unwrap()
        .to_owned();
    let then = time::OffsetDateTime::parse(&before, &time::format_description::well_known::Rfc3339)
        .unwrap()
        - time::Duration::milliseconds(1);
    let then = then
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let old = s
        .get_ok(
            &format!(
                "/api/v1/persons/{pid}/card?as_of={}",
                then.replace('+', "%2B")
            ),
            &operator,
        )
        .await;
    assert_eq!(old["referrals"].as_array().unwrap().len(), 0);

    // A partner sees its own referral and what its agreement allows.
    let seen = s
        .get_ok(&format!("/api/v1/persons/{pid}/card"), &cpi_staff)
        .await;
    assert_eq!(seen["referrals"].as_array().unwrap().len(), 1);
    assert!(seen["identity"]["data"].get("vulnerabilities").is_none());
    assert!(seen["identity"]["data"].get("names").is_some());

    // Both inboxes show exactly their referral.
    let inbox = |token: &str, org: &str, q: &str| {
        let path = format!("/api/v1/organizations/{org}/inbox?min_position={pos}{q}");
        let token = token.to_owned();
        let s = &s;
        async move { s.get_ok(&path, &token).await }
    };
    let asl_open = inbox(&asl_staff, &asl, "").await;
    assert_eq!(
        asl_open["items"].as_array().unwrap().len(),
        0,
        "nothing open at the ASL"
    );
    let asl_all = inbox(&asl_staff, &asl, "&status=all").await;
    assert_eq!(asl_all["items"].as_array().unwrap().len(), 1);
    assert_eq!(asl_all["items"][0]["status"], "completed");
    let cpi_all = inbox(&cpi_staff, &cpi, "&status=all").await;
    assert_eq!(cpi_all["items"].as_array().unwrap().len(), 1);
    assert_eq!(cpi_all["items"][0]["status"], "redirected");
    let pat_done = inbox(
        &pat_staff,
        &pat,
        "&status=completed&need=job_centre_registration",
    )
    .await;
    assert_eq!(pat_done["items"][0]["referral_id"], rp.as_str());
    let other = s
        .get(&format!("/api/v1/organizations/{asl}/inbox"), &cpi_staff)
        .await;
    problem(other, 403).await;

    // The bottleneck report.
    let report = s
        .get_ok(
            &format!("/api/v1/reports/bottlenecks?min_position={pos}"),
            &coordinator,
        )
        .await;
    let cpi_sent = row(&report, &cpi, "sent");
    assert_eq!(cpi_sent["need_code"], "job_centre_registration");
    assert_eq!(cpi_sent["entered"], 1);
    assert_eq!(cpi_sent["left"], 1);
    assert_eq!(cpi_sent["declined"], 1);
    assert_eq!(cpi_sent["declines_by_reason"]["no_capacity"], 1);
    assert!(
        cpi_sent["waiting_hours_median"].as_f64().unwrap() >= 0.0,
        "the declined referral's wait counts: {cpi_sent}"
    );
    let asl_sent = row(&report, &asl, "sent");
    assert_eq!(asl_sent["entered"], 1);
    assert_eq!(asl_sent["declined"], 0);
    let asl_ack = row(&report, &asl, "acknowledged");
    assert_eq!(asl_ack["left"], 1);
    let pat_progress = row(&report, &pat, "in_progress");
    assert_eq!(pat_progress["left"], 1);
    // Every need found its answer: the declined one was redirected and
    // completed, the desk's own one is not a provider's to answer.
    assert_eq!(report["unmet_needs"], json!([]), "{report}");
    assert!(
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["open_now"] == 0)
    );
    let csv = s
        .http
        .get(s.url("/api/v1/reports/bottlenecks"))
        .bearer_auth(&coordinator)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert!(csv.lines().count() > 1);
    assert!(csv.contains("job_centre_registration"));
    s.stop().await;
}

/// Unmet needs in the bottleneck report: a category no active provider
/// answers, and a need whose only referral was declined (never
/// redirected); a need declined and then answered elsewhere is not unmet,
/// nor is a category nobody answers once the desk resolved it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_report_names_the_needs_nobody_could_take() {
    let s = Server::start().await;
    let (network, operator, coordinator) = desk_team(&s).await;
    let (cpi, cpi_service) = provider(
        &s,
        &coordinator,
        "Centro per l'Impiego di Potenza",
        "job_centre",
        &["job_centre_registration", "job_search"],
    )
    .await;
    let cpi_staff = s
        .account(network, OrganizationId(cpi.parse().unwrap()), "partner")
        .await;
    let person = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &consented(json!({
                "names": [{"kind": "as_used", "text": "Demo Karim Esempio"}],
                "channel": "desk"
            })),
            201,
        )
        .await;
    let pid = person["id"].as_str().unwrap().to_owned();
    let need = |code: &'static str| {
        let s = &s;
        let (pid, operator) = (pid.clone(), operator.clone());
        async move {
            let n = s
                .post_ok(
                    &format!("/api/v1/persons/{pid}/needs"),
                    &operator,
                    &json!({ "code": code, "urgency": "normal" }),
                    201,
                )
                .await;
            n["need_id"].as_str().unwrap().to_owned()
        }
    };
    // Nobody in the network answers housing; the desk resolves the one
    // civil-registration need itself.
    need("housing_search").await;
    let resolved = need("registry_residence").await;
    s.post_ok(
        &format!("/api/v1/persons/{pid}/needs/{resolved}/resolve"),
        &operator,
        &json!({ "outcome": "information_given" }),
        200,
    )
    .await;
    // Two job needs declined by the job centre; one is then sent again
    // and accepted.
    let mut referrals = Vec::new();
    for code in ["job_centre_registration", "job_search"] {
        let n = need(code).await;
        let r = s
            .post_ok("/api/v1/referrals", &operator, &json!({ "person_id": pid, "need_id": n, "organization_id": cpi, "service_id": cpi_service }), 201)
            .await;
        let r = r["referral_id"].as_str().unwrap().to_owned();
        act(
            &s,
            &cpi_staff,
            &r,
            "decline",
            Some(json!({ "reason": "no_capacity" })),
            200,
        )
        .await;
        referrals.push(r);
    }
    let again = act(
        &s,
        &operator,
        &referrals[1],
        "redirect",
        Some(json!({ "organization_id": cpi, "service_id": cpi_service })),
        201,
    )
    .await;
    let last = act(
        &s,
        &cpi_staff,
        again["referral_id"].as_str().unwrap(),
        "accept",
        None,
        200,
    )
    .await;
    let pos = last["position"].as_i64().unwrap();
    let report = s
        .get_ok(
            &format!("/api/v1/reports/bottlenecks?min_position={pos}"),
            &coordinator,
        )
        .await;
    assert_eq!(
        report["unmet_needs"],
        json!([
            {"need_code": "housing_search", "need_area": "housing", "no_provider": 1, "all_declined": 0},
            {"need_code": "job_centre_registration", "need_area": "employment", "no_provider": 0, "all_declined": 1},
        ]),
        "{report}"
    );
    s.stop().await;
}

/// Every new route, tried as a new user would: each mistake gets a
/// problem naming the field (or a 404 for an unknown path id), never a
/// 500, and nothing is appended.
/// A stage is judged only by its own deadline: a referral acknowledged in
/// time and left waiting past its first-contact deadline is not a breach
/// of the `acknowledged` row (which has no deadline) — the report once
/// counted it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stage_without_a_deadline_is_never_breached() {
    // A Monday morning, so the working days are plain; the clock is set.
    let t0 = time::macros::datetime!(2026-03-02 09:00 UTC);
    let (clock, hand) = sportello_http::clock::Clock::manual(t0);
    let s = Server::start_with(|settings, _| settings.clock = clock).await;
    let (network, operator, coordinator) = desk_team(&s).await;
    let [(asl, asl_service, asl_staff), ..] =
        partners(&s, network, &coordinator, "job_search").await;
    let (pid, _, _) = s.person_with_need(&operator, "Demo Attesa Lunga").await;
    let need = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &operator,
            &json!({ "code": "health_ssn_registration" }),
            201,
        )
        .await;
    let sent = s
        .post_ok(
            "/api/v1/referrals",
            &operator,
            &json!({ "person_id": pid, "need_id": need["need_id"],
                     "organization_id": asl, "service_id": asl_service }),
            201,
        )
        .await;
    let rid = sent["referral_id"].as_str().unwrap();
    let acked = act(&s, &asl_staff, rid, "acknowledge", None, 200).await;
    // A month on: long past the first-contact deadline, still acknowledged.
    hand.advance(time::Duration::days(30));
    let report = s
        .get_ok(
            &format!(
                "/api/v1/reports/bottlenecks?from=2026-03-01&to=2026-03-31&min_position={}",
                acked["position"]
            ),
            &coordinator,
        )
        .await;
    let sent_row = row(&report, &asl, "sent");
    assert_eq!(
        (&sent_row["breach_base"], &sent_row["breached"]),
        (&json!(1), &json!(0)),
        "acknowledged in time: {report}"
    );
    let ack_row = row(&report, &asl, "acknowledged");
    assert_eq!(ack_row["deadline"], Value::Null, "{report}");
    assert_eq!(
        (&ack_row["breach_base"], &ack_row["breached"]),
        (&json!(0), &json!(0)),
        "no deadline, no breach: {report}"
    );
    assert_eq!(ack_row["open_now"], 1, "{report}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_on_every_route_is_a_problem_and_appends_nothing() {
    let s = Server::start().await;
    let (network, operator, coordinator) = desk_team(&s).await;
    let (org, service) = provider(
        &s,
        &coordinator,
        "ASL di Potenza",
        "health_authority",
        &["health_stp_code"],
    )
    .await;
    let taken = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &consented(person("Demo Bad Input")),
            201,
        )
        .await;
    let pid = taken["id"].as_str().unwrap().to_owned();
    let need = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &operator,
            &json!({ "code": "health_stp_code" }),
            201,
        )
        .await;
    let nid = need["need_id"].as_str().unwrap().to_owned();
    let referral = s
        .post_ok("/api/v1/referrals", &operator, &json!({ "person_id": pid, "need_id": nid, "organization_id": org, "service_id": service }), 201)
        .await;
    let rid = referral["referral_id"].as_str().unwrap().to_owned();
    let before = s.event_count().await;

    let raw = |path: String, body: &'static str| {
        let s = &s;
        let operator = operator.clone();
        async move {
            s.http
                .post(s.url(&path))
                .bearer_auth(&operator)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let field = |p: &Value| {
        p["errors"][0]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let needs = format!("/api/v1/persons/{pid}/needs");

    // Malformed JSON, wrong types, missing fields, unknown fields.
    problem(raw(needs.clone(), "{\"code\": ").await, 400).await;
    let p = problem(raw(needs.clone(), r#"{"code": 12}"#).await, 422).await;
    assert_eq!(field(&p), "code");
    let p = problem(raw(needs.clone(), r#"{"urgency": "normal"}"#).await, 422).await;
    assert!(
        p["errors"][0]["message"].as_str().unwrap().contains("code"),
        "{p}"
    );
    let p = problem(
        raw(
            needs.clone(),
            r#"{"code": "health_stp_code", "colour": "red"}"#,
        )
        .await,
        422,
    )
    .await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{p}"
    );
    // Unknown taxonomy codes and enum values.
    let p = problem(
        raw(needs.clone(), r#"{"code": "health_teleportation"}"#).await,
        422,
    )
    .await;
    assert_eq!(field(&p), "code");
    let p = problem(
        raw(
            needs.clone(),
            r#"{"code": "health_stp_code", "urgency": "yesterday"}"#,
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field(&p), "urgency");
    // Unknown ids: in the path, 404; in the body, a field error.
    problem(
        raw(
            format!("/api/v1/persons/{}/needs", uuid::Uuid::now_v7()),
            r#"{"code": "health_stp_code"}"#,
        )
        .await,
        404,
    )
    .await;
    problem(
        raw(
            "/api/v1/persons/nope/needs".into(),
            r#"{"code": "health_stp_code"}"#,
        )
        .await,
        404,
    )
    .await;
    problem(
        raw(
            format!(
                "/api/v1/persons/{pid}/needs/{}/resolve",
                uuid::Uuid::now_v7()
            ),
            r#"{"outcome": "orientation"}"#,
        )
        .await,
        404,
    )
    .await;
    let p = problem(
        s.post_with("/api/v1/referrals", &operator, Some(&json!({ "person_id": uuid::Uuid::now_v7(), "need_id": nid, "organization_id": org, "service_id": service })), &[]).await,
        422,
    )
    .await;
    assert_eq!(field(&p), "person_id");
    let p = problem(
        s.post_with("/api/v1/referrals", &operator, Some(&json!({ "person_id": pid, "need_id": uuid::Uuid::now_v7(), "organization_id": org, "service_id": service })), &[]).await,
        422,
    )
    .await;
    assert_eq!(field(&p), "need_id");
    let p = problem(
        s.post_with("/api/v1/referrals", &operator, Some(&json!({ "person_id": pid, "need_id": nid, "organization_id": org, "service_id": uuid::Uuid::now_v7() })), &[]).await,
        422,
    )
    .await;
    assert_eq!(field(&p), "service_id");
    let p = problem(
        s.post_with("/api/v1/referrals", &operator, Some(&json!({ "person_id": pid, "need_id": nid, "organization_id": "not-a-uuid", "service_id": service })), &[]).await,
        422,
    )
    .await;
    assert_eq!(field(&p), "organization_id");
    problem(
        s.post_with(
            &format!("/api/v1/referrals/{}/accept", uuid::Uuid::now_v7()),
            &operator,
            None,
            &[],
        )
        .await,
        404,
    )
    .await;
    problem(
        s.post_with(
            &format!("/api/v1/referrals/{rid}/teleport"),
            &operator,
            None,
            &[],
        )
        .await,
        404,
    )
    .await;
    // Actions: required and misplaced fields.
    let staff = s
        .account(network, OrganizationId(org.parse().unwrap()), "partner")
        .await;
    let p = problem(
        s.post_with(
            &format!("/api/v1/referrals/{rid}/decline"),
            &staff,
            Some(&json!({})),
            &[],
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field(&p), "reason");
    let p = problem(
        s.post_with(
            &format!("/api/v1/referrals/{rid}/decline"),
            &staff,
            Some(&json!({ "reason": "bored" })),
            &[],
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field(&p), "reason");
    let p = problem(
        s.post_with(
            &format!("/api/v1/referrals/{rid}/decline"),
            &staff,
            Some(&json!({ "reason": "other" })),
            &[],
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field(&p), "text");
    let p = problem(
        s.post_with(
            &format!("/api/v1/referrals/{rid}/accept"),
            &staff,
            Some(&json!({ "outcome": "need_met" })),
            &[],
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field(&p), "outcome");
    let p = problem(
        s.post_with(
            &format!("/api/v1/referrals/{rid}/accept"),
            &staff,
            None,
            &[("if-match", "yesterday")],
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field(&p), "If-Match");
    // Oversize bodies.
    let huge = json!({ "code": "health_stp_code", "note": "x".repeat(300_000) });
    problem(s.post_with(&needs, &operator, Some(&huge), &[]).await, 413).await;
    let long = json!({ "code": "health_stp_code", "note": "x".repeat(5_000) });
    assert_eq!(
        field(&problem(s.post_with(&needs, &operator, Some(&long), &[]).await, 422).await),
        "note"
    );
    // Impossible dates and times in the directory.
    let p = problem(
        s.post_with("/api/v1/organizations", &coordinator, Some(&json!({
            "name": "Demo Ente", "kind": "non_profit", "ownership": "private",
            "agreement": { "signed_on": "2026-02-30", "valid_from": "2026-03-01", "valid_to": "2026-12-31",
                           "acknowledge_within": 2, "first_contact_within": 5, "visible_fields": [] }
        })), &[]).await,
        422,
    )
    .await;
    assert_eq!(field(&p), "agreement");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("signed_on"),
        "{p}"
    );
    let hours = json!({ "monday": [{"open": "25:00", "close": "26:00"}], "tuesday": [], "wednesday": [], "thursday": [], "friday": [], "saturday": [], "sunday": [] });
    let p = problem(
        s.post_with(
            "/api/v1/organizations",
            &coordinator,
            Some(&json!({
                "name": "Demo Ente", "kind": "non_profit", "ownership": "private",
                "services": [{ "name": "S", "needs": ["legal_advice"], "hours": hours }]
            })),
            &[],
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field(&p), "services[0]");
    let p = problem(
        s.post_with(
            "/api/v1/organizations",
            &coordinator,
            Some(&json!({
                "name": "Demo Ente", "kind": "non_profit", "ownership": "private",
                "services": [{ "name": "S", "needs": ["legal_telepathy"], "hours": {} }]
            })),
            &[],
        )
        .await,
        422,
    )
    .await;
    assert!(field(&p).starts_with("services[0]"), "{p}");
    let p = problem(
        s.post_with(
            "/api/v1/organizations",
            &coordinator,
            Some(&json!({ "name": "Demo Ente", "kind": "spaceship", "ownership": "private" })),
            &[],
        )
        .await,
        422,
    )
    .await;
    assert_eq!(field(&p), "kind");
    let card = s
        .get(
            &format!("/api/v1/persons/{pid}/card?as_of=yesterday"),
            &operator,
        )
        .await;
    assert_eq!(field(&problem(card, 422).await), "as_of");
    let inbox = s
        .get(
            &format!("/api/v1/organizations/{org}/inbox?status=lost"),
            &operator,
        )
        .await;
    assert_eq!(field(&problem(inbox, 422).await), "status");
    let inbox = s
        .get(
            &format!("/api/v1/organizations/{org}/inbox?need=unknown_need"),
            &operator,
        )
        .await;
    assert_eq!(field(&problem(inbox, 422).await), "need");
    let report = s
        .get("/api/v1/reports/bottlenecks?from=2026-13-01", &coordinator)
        .await;
    assert_eq!(field(&problem(report, 422).await), "from");
    // Roles: a partner cannot take people in charge or change the directory.
    problem(
        s.post_with("/api/v1/persons", &staff, Some(&person("Demo X")), &[])
            .await,
        403,
    )
    .await;
    problem(
        s.post_with(
            "/api/v1/organizations",
            &staff,
            Some(&json!({ "name": "X", "kind": "other", "ownership": "private" })),
            &[],
        )
        .await,
        403,
    )
    .await;

    assert_eq!(
        s.event_count().await,
        before,
        "nothing appended by bad requests"
    );
    s.stop().await;
}

/// Likely duplicates are returned to the operator, never merged; the
/// desk's search finds people by name words, birth year or document.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn likely_duplicates_are_shown_not_merged() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let operator = s
        .account(network, OrganizationId::new(), "desk_operator")
        .await;
    let first = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &json!({
                "names": [{"kind": "as_in_document", "text": "Demo Amina Diallo"}],
                "birth_date": "1994-03-12",
                "documents": [{"kind": "passport", "number": "DM 1234567"}],
                "channel": "desk"
            }),
            201,
        )
        .await;
    assert_eq!(first["duplicates"], json!([]));
    let a = first["person_id"].as_str().unwrap().to_owned();
    // Same names in another order and spelling, same birth year.
    let second = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &json!({
                "names": [{"kind": "as_used", "text": "DIALLO Amína"}],
                "birth_date": "1994",
                "channel": "phone"
            }),
            201,
        )
        .await;
    assert_eq!(second["duplicates"][0]["person_id"], a.as_str(), "{second}");
    assert_ne!(second["person_id"], a.as_str(), "a new case all the same");
    // Another name but the same document.
    let third = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &json!({
                "names": [{"kind": "alias", "text": "Demo Mina"}],
                "documents": [{"kind": "passport", "number": "dm1234567"}],
                "channel": "desk"
            }),
            201,
        )
        .await;
    assert_eq!(third["duplicates"][0]["person_id"], a.as_str());
    assert_eq!(third["duplicates"][0]["same_document"], true);
    // Someone else entirely.
    let other = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &json!({
                "names": [{"kind": "as_used", "text": "Demo Karim Esempio"}],
                "birth_date": "1994",
                "channel": "desk"
            }),
            201,
        )
        .await;
    assert_eq!(other["duplicates"], json!([]));
    // Birth date not known: the same two name words are enough.
    let unknown_year = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &json!({
                "names": [{"kind": "as_used", "text": "Amina Diallo"}],
                "channel": "outreach"
            }),
            201,
        )
        .await;
    let dups: Vec<&str> = unknown_year["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["person_id"].as_str().unwrap())
        .collect();
    assert!(dups.contains(&a.as_str()), "{unknown_year}");
    assert!(dups.contains(&second["person_id"].as_str().unwrap()));
    // The search.
    // In the body: names never go in a URL.
    let found = s
        .post_ok(
            "/api/v1/persons/search",
            &operator,
            &json!({ "q": "diallo 1994" }),
            200,
        )
        .await;
    let ids: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["person_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{found}");
    assert!(ids.contains(&a.as_str()));
    assert_eq!(found["items"][0]["identity"]["state"], "open");
    let by_doc = s
        .post_ok(
            "/api/v1/persons/search",
            &operator,
            &json!({ "q": "DM1234567" }),
            200,
        )
        .await;
    assert_eq!(by_doc["items"].as_array().unwrap().len(), 2);
    let empty = json!({ "q": "" });
    problem(
        s.post_with("/api/v1/persons/search", &operator, Some(&empty), &[])
            .await,
        422,
    )
    .await;
    // The search of old, with the name in the URL, is gone.
    assert_eq!(
        s.get("/api/v1/persons?q=diallo", &operator).await.status(),
        405
    );
    // No name in clear in the index.
    let raw: Vec<Vec<u8>> = sqlx::query_scalar("SELECT term FROM person_index")
        .fetch_all(&s.db.pool)
        .await
        .unwrap();
    assert!(!raw.is_empty());
    assert!(raw.iter().all(|t| !t.windows(6).any(|w| w == b"diallo")));
    s.stop().await;
}

/// Visits, closing and reopening over HTTP: a closed case still records
/// visits but takes no new need and no referral; the lifecycle's refusals
/// are 409 and append nothing; a stale `If-Match` is 412.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_case_closes_and_reopens() {
    let s = Server::start().await;
    let (_, operator, coordinator) = desk_team(&s).await;
    let (org, service) = provider(
        &s,
        &coordinator,
        "CPIA di Potenza",
        "school_office",
        &["italian_course_adults"],
    )
    .await;
    let taken = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &consented(person("Demo Oksana Pryklad")),
            201,
        )
        .await;
    let pid = taken["id"].as_str().unwrap().to_owned();
    let need = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &operator,
            &json!({ "code": "italian_course_adults", "urgency": "low" }),
            201,
        )
        .await;
    let nid = need["need_id"].as_str().unwrap().to_owned();
    s.post_ok(
        &format!("/api/v1/persons/{pid}/visits"),
        &operator,
        &json!({ "channel": "phone", "note": "Demo: called back" }),
        201,
    )
    .await;
    // Close with a stale version: refused.
    problem(
        s.post_with(
            &format!("/api/v1/persons/{pid}/close"),
            &operator,
            None,
            &[("if-match", "\"1\"")],
        )
        .await,
        412,
    )
    .await;
    let closed = s
        .post_with(
            &format!("/api/v1/persons/{pid}/close"),
            &operator,
            None,
            &[("if-match", "\"4\"")],
        )
        .await;
    assert_eq!(closed.status(), 200);
    assert_eq!(closed.headers()["etag"], "\"5\"");
    let before = s.event_count().await;
    problem(
        s.post_with(
            &format!("/api/v1/persons/{pid}/close"),
            &operator,
            None,
            &[],
        )
        .await,
        409,
    )
    .await;
    problem(
        s.post_with(
            &format!("/api/v1/persons/{pid}/needs"),
            &operator,
            Some(&json!({ "code": "job_search" })),
            &[],
        )
        .await,
        409,
    )
    .await;
    problem(
        s.post_with("/api/v1/referrals", &operator, Some(&json!({ "person_id": pid, "need_id": nid, "organization_id": org, "service_id": service })), &[]).await,
        409,
    )
    .await;
    assert_eq!(s.event_count().await, before, "refusals append nothing");
    // The desk takes in charge whoever comes: a visit to a closed case is recorded.
    s.post_ok(
        &format!("/api/v1/persons/{pid}/visits"),
        &operator,
        &json!({ "channel": "desk" }),
        201,
    )
    .await;
    s.post_ok(
        &format!("/api/v1/persons/{pid}/reopen"),
        &operator,
        &json!({}),
        200,
    )
    .await;
    problem(
        s.post_with(
            &format!("/api/v1/persons/{pid}/reopen"),
            &operator,
            None,
            &[],
        )
        .await,
        409,
    )
    .await;
    let sent = s
        .post_ok("/api/v1/referrals", &operator, &json!({ "person_id": pid, "need_id": nid, "organization_id": org, "service_id": service }), 201)
        .await;
    let card = s
        .get_ok(
            &format!(
                "/api/v1/persons/{pid}/card?min_position={}",
                sent["position"]
            ),
            &operator,
        )
        .await;
    assert_eq!(card["status"], "open");
    assert_eq!(card["visits"].as_array().unwrap().len(), 3);
    assert_eq!(card["visits"][1]["note"]["data"], "Demo: called back");
    assert_eq!(card["needs"][0]["state"], "referred");
    s.stop().await;
}

/// A retried write with the same `Idempotency-Key` answers what the first
/// answer said and appends nothing — for a need, a referral, an action and
/// a redirection alike (where a plain retry would be refused as a
/// transition no longer allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retried_writes_answer_the_first_answer() {
    let s = Server::start().await;
    let (network, operator, coordinator) = desk_team(&s).await;
    let (a, a_service) = provider(
        &s,
        &coordinator,
        "Centro per l'Impiego di Potenza",
        "job_centre",
        &["job_search"],
    )
    .await;
    let (b, b_service) = provider(
        &s,
        &coordinator,
        "CGIL Potenza",
        "trade_union",
        &["job_search"],
    )
    .await;
    let staff = s
        .account(network, OrganizationId(a.parse().unwrap()), "partner")
        .await;
    let taken = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &consented(person("Demo Retry")),
            201,
        )
        .await;
    let pid = taken["id"].as_str().unwrap().to_owned();
    let twice = async |path: &str, token: &str, body: Option<Value>, status: u16| {
        let key = uuid::Uuid::new_v4().to_string();
        let mut answers = Vec::new();
        for _ in 0..2 {
            let res = s
                .post_with(
                    path,
                    token,
                    body.as_ref(),
                    &[("idempotency-key", key.as_str())],
                )
                .await;
            assert_eq!(res.status().as_u16(), status, "{path}");
            answers.push(res.json::<Value>().await.unwrap());
        }
        let n = s.event_count().await;
        assert_eq!(
            answers[0], answers[1],
            "{path}: the retry answers the first answer"
        );
        (answers.remove(0), n)
    };
    let (need, n0) = twice(
        &format!("/api/v1/persons/{pid}/needs"),
        &operator,
        Some(json!({ "code": "job_search" })),
        201,
    )
    .await;
    let nid = need["need_id"].as_str().unwrap().to_owned();
    let (sent, n1) = twice("/api/v1/referrals", &operator, Some(json!({ "person_id": pid, "need_id": nid, "organization_id": a, "service_id": a_service })), 201).await;
    assert_eq!(n1, n0 + 1, "one referral sent");
    let rid = sent["referral_id"].as_str().unwrap().to_owned();
    let (_, n2) = twice(
        &format!("/api/v1/referrals/{rid}/decline"),
        &staff,
        Some(json!({ "reason": "no_capacity" })),
        200,
    )
    .await;
    assert_eq!(n2, n1 + 1, "one decline");
    let (moved, n3) = twice(
        &format!("/api/v1/referrals/{rid}/redirect"),
        &operator,
        Some(json!({ "organization_id": b, "service_id": b_service })),
        201,
    )
    .await;
    assert_eq!(n3, n2 + 2, "one redirection: two events, two streams");
    assert_eq!(moved["redirected_from"], rid.as_str());
    s.stop().await;
}

/// The defect found trying the network (issue 12): with a consent to the
/// whole network that includes needs, and agreements that show needs, a
/// job centre's card listed every need of the person — a gender-violence
/// need never referred, a mental-health need answered at the desk, a
/// health need sent to the health authority — and every visit. A
/// partner's card holds the needs of its own referrals only, and no
/// visit; after a redirection the patronato sees the need standing as far
/// as its own referral goes, and neither end sees the other's referral.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_sees_only_the_needs_it_was_sent_and_no_visit() {
    let s = Server::start().await;
    let (network, operator, coordinator) = desk_team(&s).await;
    let [
        (asl, asl_service, asl_staff),
        (cpi, cpi_service, cpi_staff),
        (pat, pat_service, pat_staff),
    ] = partners(&s, network, &coordinator, "job_search").await;

    // Consent to the whole network, needs and notes included.
    let created = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &consented(person("Demo Lina Esempio")),
            201,
        )
        .await;
    let pid = created["person_id"].as_str().unwrap().to_owned();
    let need = |code: &'static str| {
        let (s, operator, pid) = (&s, &operator, &pid);
        async move {
            s.post_ok(
                &format!("/api/v1/persons/{pid}/needs"),
                operator,
                &json!({ "code": code, "note": format!("Demo note on {code}") }),
                201,
            )
            .await["need_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let n_job = need("job_search").await;
    let n_violence = need("gender_violence").await;
    let n_mental = need("health_mental").await;
    let n_health = need("health_ssn_registration").await;
    s.post_ok(
        &format!("/api/v1/persons/{pid}/needs/{n_mental}/resolve"),
        &operator,
        &json!({ "outcome": "orientation" }),
        200,
    )
    .await;
    s.post_ok(
        &format!("/api/v1/persons/{pid}/visits"),
        &operator,
        &json!({ "channel": "phone", "note": "Demo: called back" }),
        201,
    )
    .await;
    let send = |n: &str, to: &str, service: &str| json!({ "person_id": pid, "need_id": n, "organization_id": to, "service_id": service });
    let rj = s
        .post_ok(
            "/api/v1/referrals",
            &operator,
            &send(&n_job, &cpi, &cpi_service),
            201,
        )
        .await["referral_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rh = s
        .post_ok(
            "/api/v1/referrals",
            &operator,
            &send(&n_health, &asl, &asl_service),
            201,
        )
        .await["referral_id"]
        .as_str()
        .unwrap()
        .to_owned();
    act(
        &s,
        &cpi_staff,
        &rj,
        "decline",
        Some(json!({ "reason": "no_capacity" })),
        200,
    )
    .await;
    let redirected = act(
        &s,
        &operator,
        &rj,
        "redirect",
        Some(json!({ "organization_id": pat, "service_id": pat_service })),
        201,
    )
    .await;
    let rp = redirected["referral_id"].as_str().unwrap().to_owned();
    let pos = redirected["position"].as_i64().unwrap();

    let card = |token: &str| {
        let path = format!("/api/v1/persons/{pid}/card?min_position={pos}");
        let (s, token) = (&s, token.to_owned());
        async move { s.get_ok(&path, &token).await }
    };
    let ids = |v: &Value, list: &str, key: &str| -> Vec<String> {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_str().unwrap().to_owned())
            .collect()
    };
    // The desk sees everything.
    let desk = card(&operator).await;
    assert_eq!(ids(&desk, "needs", "need_id").len(), 4);
    assert_eq!(desk["visits"].as_array().unwrap().len(), 2);

    for (who, token, needs, referrals, state) in [
        (
            "job centre",
            &cpi_staff,
            [n_job.as_str()],
            [rj.as_str()],
            "not_met",
        ),
        (
            "patronato",
            &pat_staff,
            [n_job.as_str()],
            [rp.as_str()],
            "referred",
        ),
        (
            "health authority",
            &asl_staff,
            [n_health.as_str()],
            [rh.as_str()],
            "referred",
        ),
    ] {
        let c = card(token).await;
        let text = c.to_string();
        assert_eq!(ids(&c, "needs", "need_id"), needs, "{who}: {text}");
        assert_eq!(
            ids(&c, "referrals", "referral_id"),
            referrals,
            "{who}: {text}"
        );
        assert_eq!(c["needs"][0]["state"], state, "{who}: {text}");
        assert_eq!(
            c["needs"][0]["referrals"],
            json!(referrals),
            "{who}: {text}"
        );
        for other in [&n_violence, &n_mental] {
            assert!(!text.contains(other.as_str()), "{who} sees {other}: {text}");
        }
        for note in ["gender_violence", "health_mental", "called back"] {
            assert!(!text.contains(note), "{who} sees {note}: {text}");
        }
        for key in ["visits", "version", "updated_at", "operator_id"] {
            assert!(c.get(key).is_none(), "{who} sees {key}: {text}");
        }
        // The other end of the redirection is neither's business.
        let foreign = [&rj, &rp, &rh]
            .into_iter()
            .filter(|r| !referrals.contains(&r.as_str()));
        for r in foreign {
            assert!(
                !text.contains(r.as_str()),
                "{who} sees referral {r}: {text}"
            );
        }
        let timeline: Vec<&str> = c["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["stream_kind"] == "case")
            .map(|t| t["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(timeline, ["PersonTakenInCharge"], "{who}: {text}");
    }
    s.stop().await;
}
