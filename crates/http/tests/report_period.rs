//! The period of the reports over a real server: both reports take the
//! same dates by the same rule (`crate::api::period`), refuse a date-time,
//! echo the days they applied, and count nothing made after `to` — a
//! referral sent after the period counts neither in its rows nor in its
//! unmet needs.
//!
//! Referrals are written at the server's time, so every date here is
//! computed from the clock, never written out.

use serde_json::{Value, json};
use sportello_domain::aggregate::CaseAggregate;
use sportello_domain::case::lifecycle::CaseCommand;
use sportello_domain::taxonomy::{NeedCode, Urgency};
use sportello_domain::{Metadata, NeedId, NetworkId, OrganizationId, StreamId};
use sportello_http::command::{Expect, WriteRequest, execute, written};
use time::{Date, Duration};

mod common;
use common::*;

const REPORTS: [&str; 2] = ["/api/v1/reports/bottlenecks", "/api/v1/reports/activations"];

/// Today by the test servers' clock (the system's, or shifted ahead).
fn today() -> Date {
    test_clock().now().date()
}

fn days_ago(n: i64) -> Date {
    today() - Duration::days(n)
}

/// The status and, for a problem, its fields and messages; for a report,
/// the days it echoes.
async fn outcome(s: &Server, token: &str, path: &str) -> (u16, Value) {
    let res = s.get(path, token).await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    let summary = if status == 200 {
        json!({ "from": body["from"], "to": body["to"] })
    } else {
        body["errors"].clone()
    };
    (status, summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_reports_read_the_period_alike_and_echo_the_days_applied() {
    let s = Server::start().await;
    let coordinator = s
        .account(NetworkId::new(), OrganizationId::new(), "coordinator")
        .await;
    let day = |d: Date| d.to_string();
    let asked: Vec<(String, (u16, Value))> = vec![
        (
            String::new(),
            (
                200,
                json!({ "from": day(days_ago(89)), "to": day(today()) }),
            ),
        ),
        (
            format!("to={}", days_ago(10)),
            (
                200,
                json!({ "from": day(days_ago(99)), "to": day(days_ago(10)) }),
            ),
        ),
        (
            format!("from={}", days_ago(3)),
            (200, json!({ "from": day(days_ago(3)), "to": day(today()) })),
        ),
        (
            format!("from={}&to={}", days_ago(7), days_ago(7)),
            (
                200,
                json!({ "from": day(days_ago(7)), "to": day(days_ago(7)) }),
            ),
        ),
        (
            format!("from={0}T00:00Z&to={0}T00:01Z", today()),
            (
                422,
                json!([
                    { "field": "from", "message": "must be a date, YYYY-MM-DD (a whole UTC day): the reports take dates only, not date-times" },
                    { "field": "to", "message": "must be a date, YYYY-MM-DD (a whole UTC day): the reports take dates only, not date-times" },
                ]),
            ),
        ),
        (
            format!("to={}T09:00:00Z", days_ago(1)),
            (
                422,
                json!([{ "field": "to", "message": "must be a date, YYYY-MM-DD (a whole UTC day): the reports take dates only, not date-times" }]),
            ),
        ),
        (
            format!("from={}&to={}", days_ago(3), days_ago(4)),
            (
                422,
                json!([
                    { "field": "from", "message": "`from` must not be after `to`" },
                    { "field": "to", "message": "`from` must not be after `to`" },
                ]),
            ),
        ),
        (
            format!("from={}", today() + Duration::days(1)),
            (
                422,
                json!([{ "field": "from", "message": "`from` must not be after `to`" }]),
            ),
        ),
        (
            format!("from={}", days_ago(400)),
            (
                422,
                json!([{ "field": "from", "message": "the period from `from` to `to` must be 400 days or less" }]),
            ),
        ),
        (
            format!("from={}", days_ago(399)),
            (
                200,
                json!({ "from": day(days_ago(399)), "to": day(today()) }),
            ),
        ),
    ];
    for (query, expected) in &asked {
        for report in REPORTS {
            let got = outcome(&s, &coordinator, &format!("{report}?{query}")).await;
            assert_eq!(&got, expected, "{report}?{query}");
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_made_after_the_period_is_counted_in_it() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let (operator_id, operator) = s.bound_account(network, desk, "desk_operator", None).await;
    let coordinator = s.account(network, desk, "coordinator").await;
    // A provider whose agreement is in force whatever today is.
    let mut body = provider_body(
        &s,
        "ASL di Potenza",
        "health_authority",
        &["health_stp_code"],
    );
    body["agreement"]["signed_on"] = json!(days_ago(60).to_string());
    body["agreement"]["valid_from"] = json!(days_ago(60).to_string());
    body["agreement"]["valid_to"] = json!((today() + Duration::days(300)).to_string());
    let w = s
        .post_ok("/api/v1/organizations", &coordinator, &body, 201)
        .await;
    let org = w["id"].as_str().unwrap().to_owned();
    let created = s
        .get_ok(
            &format!("/api/v1/organizations/{org}?min_position={}", w["position"]),
            &coordinator,
        )
        .await;
    let service = created["services"][0]["service_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let to = (org.clone(), service.clone());
    let partner = s
        .account(network, OrganizationId(org.parse().unwrap()), "partner")
        .await;

    // One person referred today, still waiting.
    s.referred(&operator, "Demo Ana Periodo", &to).await;
    // Another whose need was recorded three days ago, referred today and
    // declined today: the need is of a period ending yesterday, the
    // referral and its decline are not.
    let other = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &consented(person("Demo Ion Periodo")),
            201,
        )
        .await;
    let pid = other["person_id"].as_str().unwrap().to_owned();
    let need = NeedId::new();
    execute(
        &s.store(),
        WriteRequest::<CaseAggregate, _>::new(
            network,
            StreamId(pid.parse().unwrap()),
            Expect::Latest,
            vec![CaseCommand::RecordNeed {
                need,
                code: NeedCode::parse("health_stp_code").unwrap(),
                urgency: Urgency::Normal,
                note: None,
            }],
            Metadata::for_command(operator_id, desk, test_clock().now() - Duration::days(3)),
            &written,
        ),
    )
    .await
    .unwrap();
    let sent = s
        .post_ok(
            "/api/v1/referrals",
            &operator,
            &json!({ "person_id": pid, "need_id": need.0, "organization_id": org, "service_id": service }),
            201,
        )
        .await;
    let declined = s
        .post_ok(
            &format!("/api/v1/referrals/{}/decline", sent["id"].as_str().unwrap()),
            &partner,
            &json!({ "reason": "no_capacity" }),
            200,
        )
        .await;
    let pos = declined["position"].as_i64().unwrap();
    let report = |query: String| {
        let (s, coordinator) = (&s, &coordinator);
        async move {
            s.get_ok(
                &format!("/api/v1/reports/bottlenecks?min_position={pos}&{query}"),
                coordinator,
            )
            .await
        }
    };

    // Up to yesterday: nothing sent today counts, and the need of three
    // days ago is not unmet in it — its only referral came after.
    let r = report(format!("from={}&to={}", days_ago(10), days_ago(1))).await;
    assert_eq!(r["rows"], json!([]), "{r}");
    assert_eq!(r["unmet_needs"], json!([]), "{r}");
    assert_eq!(r["from"], days_ago(10).to_string());
    assert_eq!(r["to"], days_ago(1).to_string());
    // The same with `from` by default.
    let r = report(format!("to={}", days_ago(1))).await;
    assert_eq!((&r["rows"], &r["unmet_needs"]), (&json!([]), &json!([])));

    // Today alone: both referrals, one still waiting now, one declined.
    let r = report(format!("from={0}&to={0}", today())).await;
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    let sent = &rows[0];
    assert_eq!(sent["stage"], "sent");
    assert_eq!(
        (&sent["entered"], &sent["left"], &sent["declined"]),
        (&json!(2), &json!(1), &json!(1))
    );
    assert_eq!(sent["open_now"], 1, "{sent}");
    assert_eq!(sent["open_now_by_age"]["under_2d"], 1);
    // The need was recorded before this period.
    assert_eq!(r["unmet_needs"], json!([]), "{r}");

    // The last three days: the declined need is the period's, and unmet.
    let r = report(format!("from={}", days_ago(3))).await;
    assert_eq!(r["to"], today().to_string());
    assert_eq!(
        r["unmet_needs"],
        json!([{ "need_code": "health_stp_code", "need_area": "health", "no_provider": 0, "all_declined": 1 }]),
        "{r}"
    );

    // A bound inside a day is refused, not rounded to the whole day.
    let just_before = test_clock().now() - Duration::minutes(1);
    let res = s
        .get(
            &format!(
                "/api/v1/reports/bottlenecks?to={}",
                just_before
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            ),
            &coordinator,
        )
        .await;
    let p = problem(res, 422).await;
    assert_eq!(p["errors"][0]["field"], "to", "{p}");
    s.stop().await;
}
