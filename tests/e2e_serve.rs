//! End to end, against the `sportello` binary as an operator runs it:
//! migrate, load the demo, serve, use the API with a demo token, rebuild a
//! projection while serving (blue/green, the API keeps answering the same
//! rows), then SIGTERM: the server drains and exits cleanly.

use serde_json::Value;
use sportello_store::MasterKey;
use sportello_testkit::{TestDb, delete_stream, free_port, nats_url, unique_bus};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sportello(db: &TestDb, env: &[(&str, String)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sportello"));
    c.env("DATABASE_URL", &db.url)
        .env("NATS_URL", nats_url())
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_rebuild_and_stop_on_sigterm() {
    let db = TestDb::new().await;
    let bus = unique_bus();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.json");
    let env = vec![
        ("SPORTELLO_MASTER_KEY", MasterKey::generate().to_base64()),
        ("SPORTELLO_STREAM_NAME", bus.stream_name.clone()),
        ("SPORTELLO_SUBJECT_PREFIX", bus.subject_prefix.clone()),
        ("SPORTELLO_LISTEN", format!("127.0.0.1:{port}")),
    ];
    let ok = |c: &mut Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(sportello(&db, &env).arg("migrate"));
    let demo = ok(sportello(&db, &env)
        .args(["demo", "--write-credentials"])
        .arg(&creds));
    assert!(demo.contains("demo network loaded"), "{demo}");
    let creds: Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    let token = creds["accounts"][0]["token"].as_str().unwrap().to_owned();

    let mut server = sportello(&db, &env)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "server did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The scheduler's first ticks act on what the demo's activations wait
    // for at this moment of the day (an offer to make now that someone is
    // available, one run out): wait until the log is quiet, so the rebuild
    // below is compared with a network at rest.
    let loaded: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let (mut last, mut quiet_since) = (loaded, Instant::now());
    let rest_by = Instant::now() + Duration::from_secs(30);
    while quiet_since.elapsed() < Duration::from_secs(3) {
        assert!(Instant::now() < rest_by, "the log never came to rest");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if now != last {
            (last, quiet_since) = (now, Instant::now());
        }
    }
    eprintln!(
        "e2e: the scheduler appended {} events after start",
        last - loaded
    );

    let created: Value = http
        .post(format!("{base}/api/v1/persons"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "names": [{ "kind": "as_used", "text": "Demo E2E" }], "channel": "phone" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pos = created["position"].as_i64().unwrap();
    let list = |min: i64| {
        let http = http.clone();
        let url = format!("{base}/api/v1/activity?min_position={min}&limit=500");
        let token = token.clone();
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let before = list(pos).await;
    let (streams, events): (i64, i64) =
        sqlx::query_as("SELECT count(DISTINCT stream_id), count(*) FROM events")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(streams > 200, "the demo network and its people: {streams}");
    assert_eq!(
        before["items"].as_array().unwrap().len() as i64,
        streams.min(500),
        "every stream, the new case included"
    );
    // The demo shows real shapes: referrals in inboxes, a bottleneck report.
    let coordinator = creds["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == "coordinator")
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let report: Value = http
        .get(format!("{base}/api/v1/reports/bottlenecks"))
        .bearer_auth(&coordinator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(report["rows"].as_array().unwrap().len() > 10, "{report}");

    let rebuilt = ok(sportello(&db, &env).args(["rebuild", "stream_activity"]));
    // The rebuild reads the log up to the oldest transaction still open in
    // the cluster (other tests may hold one): up to 6 events; the live
    // runner applies any later one to the new table after the swap.
    let events = u64::try_from(events).unwrap();
    let n: u64 = rebuilt
        .trim()
        .strip_prefix("rebuilt stream_activity from ")
        .and_then(|r| r.strip_suffix(" events"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {rebuilt}"));
    assert!((1..=events).contains(&n), "{rebuilt}");
    assert_eq!(
        list(pos).await,
        before,
        "same rows after the blue/green swap"
    );

    let unknown = sportello(&db, &env)
        .args(["rebuild", "nope"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("known: stream_activity"));

    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    delete_stream(&nats_url(), &bus).await;
    db.drop_db().await;
}
