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

/// A provider with one service answering `needs`, active, with an
/// agreement; returns its id and the service's id.
async fn provider(s: &Server, token: &str, name: &str, kind: &str, needs: &[&str]) -> (String, String) {
    let body = json!({
        "name": name,
        "kind": kind,
        "ownership": if kind == "patronato" { "private" } else { "public" },
        "contacts": { "address": "Potenza" },
        "status": "active",
        "services": [{
            "name": format!("{name}: sportello"),
            "needs": needs,
            "languages": ["it", "en"],
            "interpretation": false,
            "eligibility": "Residenti nella provincia",
            "location": "Potenza",
            "hours": {
                "monday": [{"open": "09:00", "close": "12:00"}],
                "tuesday": [], "wednesday": [{"open": "09:00", "close": "12:00"}],
                "thursday": [], "friday": [], "saturday": [], "sunday": []
            },
            "closed_on": []
        }],
        "agreement": {
            "signed_on": "2026-01-10",
            "valid_from": "2026-01-15",
            "valid_to": "2027-12-31",
            "acknowledge_within": 2,
            "first_contact_within": 5,
            "visible_fields": ["names", "birth_date", "languages", "needs"]
        }
    });
    let w = s.post_ok("/api/v1/organizations", token, &body, 201).await;
    let id = w["id"].as_str().unwrap().to_owned();
    let org = s
        .get_ok(
            &format!("/api/v1/organizations/{id}?min_position={}", w["position"]),
            token,
        )
        .await;
    assert_eq!(org["status"], "active");
    let service = org["services"][0]["service_id"].as_str().unwrap().to_owned();
    (id, service)
}

/// Act on a referral as `token`, expecting `status`.
async fn act(s: &Server, token: &str, referral: &str, action: &str, body: Option<Value>, status: u16) -> Value {
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

fn row<'a>(report: &'a Value, org: &str, stage: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["organization_id"] == org && r["stage"] == stage)
        .unwrap_or_else(|| panic!("no {stage} row for {org} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_needs_through_the_network() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    let coordinator = s.account(network, desk, "coordinator").await;

    let (asl, asl_service) = provider(&s, &coordinator, "ASL di Potenza", "health_authority", &["health_ssn_registration"]).await;
    let (cpi, cpi_service) = provider(&s, &coordinator, "Centro per l'Impiego di Potenza", "job_centre", &["job_centre_registration"]).await;
    let (pat, pat_service) = provider(&s, &coordinator, "Patronato INCA CGIL Potenza", "patronato", &["job_centre_registration"]).await;
    let org = |id: &str| OrganizationId(id.parse().unwrap());
    let asl_staff = s.account(network, org(&asl), "partner").await;
    let cpi_staff = s.account(network, org(&cpi), "partner").await;
    let pat_staff = s.account(network, org(&pat), "partner").await;

    // Taken in charge, three needs screened.
    let person = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &json!({
                "names": [{"kind": "as_in_document", "text": "Demo Amina Esempio"}],
                "birth_date": "1994-03",
                "sex": "female",
                "country_of_birth": "NG",
                "citizenships": ["NG"],
                "languages": [{"code": "en", "proficiency": "fluent"}],
                "vulnerabilities": ["single_parent"],
                "channel": "desk"
            }),
            201,
        )
        .await;
    let pid = person["id"].as_str().unwrap().to_owned();
    let need = |code: &str| json!({ "code": code, "urgency": "normal", "note": "Demo note" });
    let n_desk = s.post_ok(&format!("/api/v1/persons/{pid}/needs"), &operator, &need("registry_residence"), 201).await;
    let n_health = s.post_ok(&format!("/api/v1/persons/{pid}/needs"), &operator, &need("health_ssn_registration"), 201).await;
    let n_job = s.post_ok(&format!("/api/v1/persons/{pid}/needs"), &operator, &need("job_centre_registration"), 201).await;
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
    let m = s.get_ok(&format!("/api/v1/persons/{pid}/needs/{n_job}/matches"), &operator).await;
    let matched: Vec<&str> = m["matches"].as_array().unwrap().iter().map(|x| x["organization_id"].as_str().unwrap()).collect();
    assert_eq!(matched.len(), 2, "{m}");
    assert!(matched.contains(&cpi.as_str()) && matched.contains(&pat.as_str()));
    assert!(m["matches"][0]["reasons"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("language")));

    // Health need: ASL acknowledges, accepts, completes.
    let r_health = s
        .post_ok("/api/v1/referrals", &operator, &json!({ "person_id": pid, "need_id": n_health, "organization_id": asl, "service_id": asl_service }), 201)
        .await;
    assert!(r_health["acknowledge_by"].is_string(), "deadlines from the agreement: {r_health}");
    let rh = r_health["referral_id"].as_str().unwrap().to_owned();
    act(&s, &asl_staff, &rh, "acknowledge", None, 200).await;
    act(&s, &asl_staff, &rh, "accept", None, 200).await;
    act(&s, &asl_staff, &rh, "complete", Some(json!({ "outcome": "need_met" })), 200).await;
    // The lifecycle refuses what it does not allow.
    act(&s, &asl_staff, &rh, "accept", None, 409).await;
    act(&s, &operator, &rh, "cancel", None, 409).await;

    // Job need: the job centre declines for no capacity; the desk
    // redirects to the patronato, which completes it.
    let r_job = s
        .post_ok("/api/v1/referrals", &operator, &json!({ "person_id": pid, "need_id": n_job, "organization_id": cpi, "service_id": cpi_service }), 201)
        .await;
    let rj = r_job["referral_id"].as_str().unwrap().to_owned();
    // Another provider may not act on it; the desk may not decline it.
    act(&s, &asl_staff, &rj, "decline", Some(json!({ "reason": "no_capacity" })), 403).await;
    act(&s, &operator, &rj, "decline", Some(json!({ "reason": "no_capacity" })), 403).await;
    // A stale If-Match is refused.
    let stale = s
        .post_with(&format!("/api/v1/referrals/{rj}/acknowledge"), &cpi_staff, None, &[("if-match", "\"7\"")])
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
    let redirected = act(&s, &operator, &rj, "redirect", Some(json!({ "organization_id": pat, "service_id": pat_service })), 201).await;
    let rp = redirected["referral_id"].as_str().unwrap().to_owned();
    assert_eq!(redirected["redirected_from"], rj.as_str());
    act(&s, &operator, &rj, "redirect", Some(json!({ "organization_id": pat, "service_id": pat_service })), 409).await;
    act(&s, &pat_staff, &rp, "accept", None, 200).await;
    act(&s, &pat_staff, &rp, "start", None, 200).await;
    let last = act(&s, &pat_staff, &rp, "complete", Some(json!({ "outcome": "need_met" })), 200).await;
    let pos = last["position"].as_i64().unwrap();

    // The card shows exactly that.
    let card = s.get_ok(&format!("/api/v1/persons/{pid}/card?min_position={pos}"), &operator).await;
    assert_eq!(card["identity"]["data"]["names"][0]["text"], "Demo Amina Esempio");
    let needs = card["needs"].as_array().unwrap();
    assert_eq!(needs.len(), 3);
    let state_of = |id: &str| needs.iter().find(|n| n["need_id"] == id).unwrap()["state"].clone();
    assert_eq!(state_of(&n_desk), "resolved_at_desk");
    assert_eq!(state_of(&n_health), "met");
    assert_eq!(state_of(&n_job), "met");
    let job_need = needs.iter().find(|n| n["need_id"] == n_job.as_str()).unwrap();
    assert_eq!(job_need["referrals"], json!([rj, rp]), "the chain, in order");
    let referrals = card["referrals"].as_array().unwrap();
    assert_eq!(referrals.len(), 3);
    let by_id = |id: &str| referrals.iter().find(|r| r["referral_id"] == id).unwrap();
    assert_eq!(by_id(&rh)["status"], "completed");
    let statuses = |id: &str| -> Vec<String> {
        by_id(id)["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(statuses(&rh), ["sent", "acknowledged", "accepted", "completed"]);
    assert_eq!(statuses(&rj), ["sent", "declined", "redirected"]);
    assert_eq!(statuses(&rp), ["sent", "accepted", "in_progress", "completed"]);
    assert_eq!(by_id(&rj)["decline_reason"], "no_capacity");
    assert_eq!(by_id(&rj)["redirected_to"], rp.as_str());
    assert_eq!(by_id(&rp)["redirected_from"], rj.as_str());
    assert_eq!(card["visits"].as_array().unwrap().len(), 1);
    let timeline = card["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 4 + 1 + 4 + 3 + 4, "every event once: {timeline:?}");
    // The card as it was before the first referral.
    let before = timeline.iter().find(|t| t["event_type"] == "ReferralSent").unwrap()["at"].as_str().unwrap().to_owned();
    let then = time::OffsetDateTime::parse(&before, &time::format_description::well_known::Rfc3339).unwrap() - time::Duration::milliseconds(1);
    let then = then.format(&time::format_description::well_known::Rfc3339).unwrap();
    let old = s.get_ok(&format!("/api/v1/persons/{pid}/card?as_of={}", then.replace('+', "%2B")), &operator).await;
    assert_eq!(old["referrals"].as_array().unwrap().len(), 0);

    // A partner sees its own referral and what its agreement allows.
    let seen = s.get_ok(&format!("/api/v1/persons/{pid}/card"), &cpi_staff).await;
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
    assert_eq!(asl_open["items"].as_array().unwrap().len(), 0, "nothing open at the ASL");
    let asl_all = inbox(&asl_staff, &asl, "&status=all").await;
    assert_eq!(asl_all["items"].as_array().unwrap().len(), 1);
    assert_eq!(asl_all["items"][0]["status"], "completed");
    let cpi_all = inbox(&cpi_staff, &cpi, "&status=all").await;
    assert_eq!(cpi_all["items"].as_array().unwrap().len(), 1);
    assert_eq!(cpi_all["items"][0]["status"], "redirected");
    let pat_done = inbox(&pat_staff, &pat, "&status=completed&need=job_centre_registration").await;
    assert_eq!(pat_done["items"][0]["referral_id"], rp.as_str());
    let other = s.get(&format!("/api/v1/organizations/{asl}/inbox"), &cpi_staff).await;
    problem(other, 403).await;

    // The bottleneck report.
    let report = s.get_ok(&format!("/api/v1/reports/bottlenecks?min_position={pos}"), &coordinator).await;
    let cpi_sent = row(&report, &cpi, "sent");
    assert_eq!(cpi_sent["need_code"], "job_centre_registration");
    assert_eq!(cpi_sent["entered"], 1);
    assert_eq!(cpi_sent["left"], 1);
    assert_eq!(cpi_sent["declined"], 1);
    assert_eq!(cpi_sent["declines_by_reason"]["no_capacity"], 1);
    assert!(cpi_sent["waiting_hours_median"].as_f64().unwrap() >= 0.0, "the declined referral's wait counts: {cpi_sent}");
    let asl_sent = row(&report, &asl, "sent");
    assert_eq!(asl_sent["entered"], 1);
    assert_eq!(asl_sent["declined"], 0);
    let asl_ack = row(&report, &asl, "acknowledged");
    assert_eq!(asl_ack["left"], 1);
    let pat_progress = row(&report, &pat, "in_progress");
    assert_eq!(pat_progress["left"], 1);
    assert!(report["rows"].as_array().unwrap().iter().all(|r| r["open"] == 0));
    let csv = s
        .http
        .get(s.url("/api/v1/reports/bottlenecks"))
        .bearer_auth(&coordinator)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    assert!(csv.lines().count() > 1);
    assert!(csv.contains("job_centre_registration"));
    s.stop().await;
}
