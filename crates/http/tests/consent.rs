//! Consent over HTTP against a running server (real PostgreSQL and NATS):
//! a referral needs a consent in force covering its recipient, or a legal
//! basis recorded by a desk supervisor; refusals name what is missing and
//! append nothing; bad consent input names the field.

use serde_json::{Value, json};
use sportello_domain::{NetworkId, OrganizationId};

mod common;
use common::*;

struct Desk {
    network: NetworkId,
    operator: String,
    supervisor: String,
    a: (String, String),
    b: (String, String),
}

async fn desk(s: &Server) -> Desk {
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    let supervisor = s.account(network, desk, "desk_supervisor").await;
    let a = provider(
        s,
        &operator,
        "Demo ASL",
        "health_authority",
        &["health_stp_code"],
    )
    .await;
    let b = provider(s, &operator, "Demo CPI", "job_centre", &["health_stp_code"]).await;
    Desk {
        network,
        operator,
        supervisor,
        a,
        b,
    }
}

/// A person (with `consent` at intake, if any) and one open need.
async fn person_with_need(s: &Server, d: &Desk, consent: Option<Value>) -> (String, String) {
    let mut body = person("Demo Consenso");
    if let Some(c) = consent {
        body["consent"] = c;
    }
    let taken = s.post_ok("/api/v1/persons", &d.operator, &body, 201).await;
    let pid = taken["id"].as_str().unwrap().to_owned();
    let need = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &d.operator,
            &json!({ "code": "health_stp_code" }),
            201,
        )
        .await;
    (pid, need["need_id"].as_str().unwrap().to_owned())
}

fn referral(pid: &str, nid: &str, to: &(String, String)) -> Value {
    json!({ "person_id": pid, "need_id": nid, "organization_id": to.0, "service_id": to.1 })
}

/// A referral refused for want of consent: `409 consent-required` naming
/// the organisation and the purpose, and nothing appended.
async fn refused(s: &Server, d: &Desk, pid: &str, nid: &str, to: &(String, String)) {
    let before = s.event_count().await;
    let res = s
        .post_with(
            "/api/v1/referrals",
            &d.operator,
            Some(&referral(pid, nid, to)),
            &[],
        )
        .await;
    let p = problem(res, 409).await;
    assert!(
        p["type"].as_str().unwrap().ends_with("/consent-required"),
        "{p}"
    );
    assert_eq!(p["organization_id"], to.0.as_str());
    assert_eq!(p["purpose"], "referral");
    assert!(p["detail"].as_str().unwrap().contains(&to.0), "{p}");
    assert_eq!(s.event_count().await, before, "a refusal appends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_referral_needs_consent_covering_its_recipient() {
    let s = Server::start().await;
    let d = desk(&s).await;

    // No consent: refused.
    let (pid, nid) = person_with_need(&s, &d, None).await;
    refused(&s, &d, &pid, &nid, &d.a).await;

    // Consent only for B: A is still refused; B is sent.
    let only_b = json!({
        "purpose": "referral",
        "organizations": [d.b.0],
        "data": ["names", "needs"],
        "given_on": "2025-02-01",
        "notice_language": "ar"
    });
    let c = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/consents"),
            &d.operator,
            &only_b,
            201,
        )
        .await;
    let consent_id = c["consent_id"].as_str().unwrap().to_owned();
    assert_eq!(c["id"], pid.as_str());
    refused(&s, &d, &pid, &nid, &d.a).await;
    let sent = s
        .post_ok(
            "/api/v1/referrals",
            &d.operator,
            &referral(&pid, &nid, &d.b),
            201,
        )
        .await;
    // It is declined, and the redirection to A is refused too (same check).
    let rid = sent["referral_id"].as_str().unwrap();
    let b_staff = s
        .account(d.network, OrganizationId(d.b.0.parse().unwrap()), "partner")
        .await;
    s.post_ok(
        &format!("/api/v1/referrals/{rid}/decline"),
        &b_staff,
        &json!({ "reason": "no_capacity" }),
        200,
    )
    .await;
    let before = s.event_count().await;
    let res = s
        .post_with(
            &format!("/api/v1/referrals/{rid}/redirect"),
            &d.operator,
            Some(&json!({ "organization_id": d.a.0, "service_id": d.a.1 })),
            &[],
        )
        .await;
    let p = problem(res, 409).await;
    assert!(p["type"].as_str().unwrap().ends_with("/consent-required"));
    assert_eq!(s.event_count().await, before);

    // Withdrawn: B is refused again; a second withdrawal is a conflict.
    let withdraw = format!("/api/v1/persons/{pid}/consents/{consent_id}/withdraw");
    s.post_ok(
        &withdraw,
        &d.operator,
        &json!({ "withdrawn_on": "2025-03-01" }),
        200,
    )
    .await;
    problem(s.post_with(&withdraw, &d.operator, None, &[]).await, 409).await;
    let (pid2, nid2) = person_with_need(&s, &d, None).await;
    let _ = pid2;
    let none = format!(
        "/api/v1/persons/{pid}/consents/{}/withdraw",
        uuid::Uuid::now_v7()
    );
    problem(s.post_with(&none, &d.operator, None, &[]).await, 404).await;
    // A new need on the first person: withdrawn consent does not count.
    let need = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &d.operator,
            &json!({ "code": "health_stp_code" }),
            201,
        )
        .await;
    refused(&s, &d, &pid, need["need_id"].as_str().unwrap(), &d.b).await;

    // Consent to the whole network at intake: sent to A.
    let (pid3, nid3) = person_with_need(&s, &d, Some(network_consent())).await;
    s.post_ok(
        "/api/v1/referrals",
        &d.operator,
        &referral(&pid3, &nid3, &d.a),
        201,
    )
    .await;

    // The card shows the consents, withdrawn ones with their date.
    let card = s
        .get_ok(&format!("/api/v1/persons/{pid}/card"), &d.operator)
        .await;
    let consents = card["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0]["consent_id"], consent_id.as_str());
    assert_eq!(consents[0]["withdrawn_on"], "2025-03-01");
    assert_eq!(consents[0]["notice_language"], "ar");
    assert_eq!(consents[0]["organizations"], json!([d.b.0]));

    // Still no consent for the person with none.
    refused(&s, &d, &pid2, &nid2, &d.a).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legal_basis_recorded_by_a_supervisor_stands_for_consent() {
    let s = Server::start().await;
    let d = desk(&s).await;
    let (pid, nid) = person_with_need(&s, &d, None).await;
    let path = format!("/api/v1/persons/{pid}/legal-bases");
    let body = json!({
        "organization_id": d.a.0,
        "basis": "vital_interests",
        "reason": "Demo: urgent care, the person cannot consent now"
    });

    // An operator may not record one.
    let before = s.event_count().await;
    problem(s.post_with(&path, &d.operator, Some(&body), &[]).await, 403).await;
    assert_eq!(s.event_count().await, before);

    let w = s.post_ok(&path, &d.supervisor, &body, 201).await;
    assert!(w["legal_basis_id"].is_string());
    s.post_ok(
        "/api/v1/referrals",
        &d.operator,
        &referral(&pid, &nid, &d.a),
        201,
    )
    .await;
    // Only for A.
    let need = s
        .post_ok(
            &format!("/api/v1/persons/{pid}/needs"),
            &d.operator,
            &json!({ "code": "health_stp_code" }),
            201,
        )
        .await;
    refused(&s, &d, &pid, need["need_id"].as_str().unwrap(), &d.b).await;

    // The desk sees the reason; it is sealed in the log.
    let card = s
        .get_ok(&format!("/api/v1/persons/{pid}/card"), &d.operator)
        .await;
    let basis = &card["legal_bases"][0];
    assert_eq!(basis["organization_id"], d.a.0.as_str());
    assert_eq!(basis["basis"], "vital_interests");
    assert_eq!(
        basis["reason"],
        json!({ "state": "open", "data": "Demo: urgent care, the person cannot consent now" })
    );
    let payloads: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM events WHERE event_type = 'LegalBasisRecorded'",
    )
    .fetch_all(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(payloads.len(), 1);
    assert!(!payloads[0].contains("urgent care"));

    // Bad legal basis input names the field.
    for (bad, field) in [
        (
            json!({ "organization_id": d.a.0, "basis": "whim", "reason": "x" }),
            "basis",
        ),
        (
            json!({ "organization_id": d.a.0, "basis": "public_task", "reason": " " }),
            "reason",
        ),
        (
            json!({ "organization_id": uuid::Uuid::now_v7(), "basis": "public_task", "reason": "x" }),
            "organization_id",
        ),
    ] {
        let before = s.event_count().await;
        let p = problem(
            s.post_with(&path, &d.supervisor, Some(&bad), &[]).await,
            422,
        )
        .await;
        assert_eq!(p["errors"][0]["field"], field, "{p}");
        assert_eq!(s.event_count().await, before);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_consent_input_names_the_field_and_appends_nothing() {
    let s = Server::start().await;
    let d = desk(&s).await;
    let (pid, _) = person_with_need(&s, &d, None).await;
    let path = format!("/api/v1/persons/{pid}/consents");
    let good = network_consent();
    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        b
    };
    let cases = [
        (with("purpose", json!("marketing")), "purpose"),
        (with("notice_language", json!("ARA")), "notice_language"),
        (with("data", json!([])), "data"),
        (with("data", json!(["shoe_size"])), "data[0]"),
        (with("organizations", json!("everyone")), "organizations"),
        (with("organizations", json!([])), "organizations"),
        (
            with("organizations", json!([uuid::Uuid::now_v7()])),
            "organizations[0]",
        ),
        (with("given_on", json!("2025-13-01")), "given_on"),
        (with("given_on", json!("2999-01-01")), "given_on"),
    ];
    for (body, field) in cases {
        let before = s.event_count().await;
        let p = problem(s.post_with(&path, &d.operator, Some(&body), &[]).await, 422).await;
        assert_eq!(p["errors"][0]["field"], field, "{body}: {p}");
        assert_eq!(s.event_count().await, before, "{field}");
    }
    // At intake too, under `consent.`, and no case is opened.
    let before = s.event_count().await;
    let mut body = person("Demo Intake");
    body["consent"] = with("notice_language", json!("x"));
    let p = problem(
        s.post_with("/api/v1/persons", &d.operator, Some(&body), &[])
            .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "consent.notice_language", "{p}");
    assert_eq!(s.event_count().await, before);
    // A partner may not record consent.
    let staff = s
        .account(d.network, OrganizationId(d.a.0.parse().unwrap()), "partner")
        .await;
    problem(s.post_with(&path, &staff, Some(&good), &[]).await, 403).await;
    // The opening and the consent at intake are one write: version 2.
    let mut body = person("Demo Intake Due");
    body["consent"] = good.clone();
    let taken = s.post_ok("/api/v1/persons", &d.operator, &body, 201).await;
    assert_eq!(taken["version"], 2);
    assert!(taken["consent_id"].is_string());
    s.stop().await;
}
