//! What the HTTP tests share: a real server on port 0 over a fresh
//! database and its own JetStream stream, accounts and tokens, and the
//! checks of a problem answer.

#![allow(dead_code, reason = "each test file uses its own part of the helpers")]

use serde_json::{Value, json};
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use sportello_http::auth::{create_account, insert_account, issue_token};
use sportello_http::{Settings, launch};
use sportello_store::MasterKey;
use sportello_testkit::{TestDb, delete_stream, nats_url, unique_bus};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How far ahead of the system's time the test servers run:
/// `SPORTELLO_TEST_CLOCK_SHIFT_DAYS` (CI runs the suite a year ahead, so a
/// date literal that only passes today fails there first).
pub fn test_clock() -> sportello_http::clock::Clock {
    match std::env::var("SPORTELLO_TEST_CLOCK_SHIFT_DAYS") {
        Ok(days) => sportello_http::clock::Clock::shifted(time::Duration::days(
            days.parse()
                .expect("SPORTELLO_TEST_CLOCK_SHIFT_DAYS is a number of days"),
        )),
        Err(_) => sportello_http::clock::Clock::System,
    }
}

/// A date as `YYYY-MM-DD`.
pub fn ymd(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub struct Server {
    pub base: String,
    pub db: TestDb,
    pub settings: Settings,
    replica: Option<Replica>,
    pub http: reqwest::Client,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(|_, _| {}).await
    }

    /// A server whose settings `tweak` changes first, given the server's
    /// base URL (e.g. to configure OpenID Connect and its redirect URL).
    pub async fn start_with(tweak: impl FnOnce(&mut Settings, &str)) -> Server {
        // TEST_LOG=1 shows the server's logs.
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,sportello_store=debug")
                .with_test_writer()
                .try_init();
        }
        let db = TestDb::new().await;
        let bus = unique_bus();
        let mut settings = Settings {
            database_url: db.url.clone(),
            nats_url: nats_url(),
            stream_name: bus.stream_name,
            subject_prefix: bus.subject_prefix,
            master_key: Some(MasterKey::generate()),
            db_max_connections: 10,
            clock: test_clock(),
            // Scenarios read their writes; on a loaded machine (the suite
            // runs its servers in parallel) a read model may take longer
            // than the 2 s a client waits by default.
            read_your_writes_wait_ms: 30_000,
            ..Settings::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tweak(&mut settings, &base);
        let replica = Replica::serve(settings.clone(), listener).await;
        Server {
            base,
            db,
            settings,
            replica: Some(replica),
            http: reqwest::Client::new(),
        }
    }

    /// A token for a new account in `network`.
    pub async fn token(&self, network: NetworkId) -> String {
        let account = AccountId::new();
        create_account(
            &self.db.pool,
            account,
            network,
            OrganizationId::new(),
            "desk_operator",
            "test",
        )
        .await
        .unwrap();
        issue_token(&self.db.pool, account, time::Duration::hours(1))
            .await
            .unwrap()
    }

    /// Now, by the server's clock (shifted, set or the system's): every
    /// date a test sends that the server compares with its time is
    /// computed from this, never written as a literal.
    pub fn now(&self) -> time::OffsetDateTime {
        self.settings.clock.now()
    }

    /// Today by the server's clock, `days` on (or back, if negative), as
    /// `YYYY-MM-DD`.
    pub fn day(&self, days: i64) -> String {
        ymd(self.now().date() + time::Duration::days(days))
    }

    /// The instant `hours` from now by the server's clock, RFC 3339.
    pub fn in_hours(&self, hours: i64) -> String {
        (self.now() + time::Duration::hours(hours))
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The Prometheus text of `/metrics` (no token needed).
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_person(
        &self,
        token: &str,
        body: &Value,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url("/api/v1/persons"))
            .bearer_auth(token)
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    /// Stop the server process, keeping its database and bus.
    pub async fn halt(&mut self) {
        self.replica.take().expect("running").stop().await;
    }

    /// Start the server process again (after [`Server::halt`]), on a new
    /// port.
    pub async fn resume(&mut self) {
        assert!(self.replica.is_none(), "already running");
        let replica = Replica::start(self.settings.clone()).await;
        self.base.clone_from(&replica.base);
        self.replica = Some(replica);
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.replica.take() {
            r.stop().await;
        }
        let bus = self.settings.bus();
        delete_stream(&nats_url(), &bus).await;
        self.db.drop_db().await;
    }
}

/// Another server process on the same database and bus (a replica, or
/// the same server restarted): stopping it leaves the database alone.
pub struct Replica {
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    /// A server with `settings` (those of a [`Server`], or changed).
    pub async fn start(settings: Settings) -> Replica {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Replica::serve(settings, listener).await
    }

    /// Launch on `listener` and wait until it answers.
    async fn serve(settings: Settings, listener: tokio::net::TcpListener) -> Replica {
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(launch(settings, listener, async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/healthz")).send().await.is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Replica {
            base,
            stop: Some(tx),
            task,
        }
    }

    /// Shut it down gracefully.
    pub async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("graceful shutdown within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// Weekly hours: every day 08:00–20:00.
pub fn every_day() -> Value {
    let day = json!([{ "open": "08:00", "close": "20:00" }]);
    json!({ "monday": day, "tuesday": day, "wednesday": day, "thursday": day,
            "friday": day, "saturday": day, "sunday": day })
}

pub fn person(name: &str) -> Value {
    json!({ "names": [{ "kind": "as_in_document", "text": name }], "birth_date": "1990-05", "channel": "desk" })
}

/// A person's body with the consent given at intake: referrals to any
/// organisation of the network, every kind of data.
pub fn consented(mut body: Value) -> Value {
    body["consent"] = network_consent();
    body
}

/// A consent for referrals to every organisation, every kind of data.
pub fn network_consent() -> Value {
    json!({
        "purpose": "referral",
        "organizations": "network",
        "data": ["names", "birth_date", "citizenship", "languages", "contacts",
                 "documents", "vulnerabilities", "needs", "notes"],
        "given_on": "2025-01-10",
        "notice_language": "it"
    })
}

pub async fn problem(res: reqwest::Response, status: u16) -> Value {
    assert_eq!(res.status().as_u16(), status);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: Value = res.json().await.unwrap();
    assert!(body["type"].as_str().unwrap().starts_with("https://"));
    assert_eq!(body["status"], status);
    body
}

impl Server {
    /// A token for a new account of `organization` in `network` with `role`.
    pub async fn account(
        &self,
        network: NetworkId,
        organization: OrganizationId,
        role: &str,
    ) -> String {
        self.bound_account(network, organization, role, None)
            .await
            .1
    }

    /// A new account of `organization` with `role` and a token for it; a
    /// professional's bound to the registry entry `professional` (or any).
    pub async fn bound_account(
        &self,
        network: NetworkId,
        organization: OrganizationId,
        role: &str,
        professional: Option<&str>,
    ) -> (AccountId, String) {
        let account = AccountId::new();
        let entry = (role == "professional")
            .then(|| professional.map_or_else(uuid::Uuid::now_v7, |p| p.parse().unwrap()));
        insert_account(
            &self.db.pool,
            account,
            network,
            organization,
            role,
            "test",
            entry,
        )
        .await
        .unwrap();
        let token = issue_token(&self.db.pool, account, time::Duration::hours(1))
            .await
            .unwrap();
        (account, token)
    }

    /// The event store of this server's database, with its master key.
    pub fn store(&self) -> sportello_store::EventStore {
        sportello_store::EventStore::new(
            self.db.pool.clone(),
            sportello_store::Keyring::new(self.settings.master_key.clone().unwrap()),
        )
    }

    /// POST a JSON body (or none), with extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        token: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// POST a JSON body, expecting `status`; the answer's JSON.
    pub async fn post_ok(&self, path: &str, token: &str, body: &Value, status: u16) -> Value {
        let res = self.post_with(path, token, Some(body), &[]).await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(got, status, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// GET expecting 200; the answer's JSON.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let res = self.get(path, token).await;
        let got = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert_eq!(got, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// A provider with one service answering `needs`, active, with an
/// agreement; returns its id and the service's id.
pub async fn provider(
    s: &Server,
    token: &str,
    name: &str,
    kind: &str,
    needs: &[&str],
) -> (String, String) {
    let body = provider_body(s, name, kind, needs);
    let w = s.post_ok("/api/v1/organizations", token, &body, 201).await;
    let id = w["id"].as_str().unwrap().to_owned();
    let org = s
        .get_ok(
            &format!("/api/v1/organizations/{id}?min_position={}", w["position"]),
            token,
        )
        .await;
    assert_eq!(org["status"], "active");
    let service = org["services"][0]["service_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, service)
}

/// The body registering an active provider with one service answering
/// `needs` and an agreement in force today by the server's clock (for
/// two years), showing names, birth date, languages, needs.
pub fn provider_body(s: &Server, name: &str, kind: &str, needs: &[&str]) -> Value {
    json!({
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
            "signed_on": s.day(-60),
            "valid_from": s.day(-55),
            "valid_to": s.day(730),
            "acknowledge_within": 2,
            "first_contact_within": 5,
            "visible_fields": ["names", "birth_date", "languages", "needs"]
        }
    })
}

/// Every text rendering of every row of every table (read models,
/// idempotency, audit, person index and all), concatenated.
pub async fn all_table_text(pool: &sqlx::PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = String::new();
    for t in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM {t} t")))
                .fetch_all(pool)
                .await
                .unwrap();
        out.extend(rows);
    }
    out
}

/// `s`'s bytes in lower-case hex (as PostgreSQL renders a `bytea`).
pub fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The server's JetStream stream, once it holds at least `messages`.
pub async fn relayed(s: &Server, messages: u64) -> async_nats::jetstream::stream::Stream {
    let client = async_nats::connect(nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut st) = js.get_stream(&s.settings.stream_name).await
            && st.info().await.unwrap().state.messages >= messages
        {
            return st;
        }
        assert!(Instant::now() < deadline, "relay did not publish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every message of `stream`, raw: subject, headers (names and values)
/// and payload, as text (lossy), one string per message.
pub async fn raw_messages(stream: &mut async_nats::jetstream::stream::Stream) -> Vec<String> {
    let n = stream.info().await.unwrap().state.messages;
    let mut out = Vec::with_capacity(n as usize);
    for seq in 1..=n {
        let msg = stream.get_raw_message(seq).await.unwrap();
        let mut raw = msg.subject.as_bytes().to_vec();
        for (k, v) in msg.headers.iter() {
            raw.extend_from_slice(k.to_string().as_bytes());
            for v in v {
                raw.extend_from_slice(v.as_str().as_bytes());
            }
        }
        raw.extend_from_slice(&msg.payload);
        out.push(String::from_utf8_lossy(&raw).into_owned());
    }
    out
}

/// A person taken in charge with consent to the whole network, one need
/// and that need referred to `to` (a provider and its service).
pub struct Referred {
    pub person: String,
    pub consent: String,
    pub need: String,
    pub referral: String,
    /// The log position of the referral (for `?min_position=`).
    pub position: i64,
}

impl Server {
    /// Take `name` in charge with consent to the whole network and record
    /// a need (`health_stp_code`): the person's, the need's and the
    /// consent's ids.
    pub async fn person_with_need(&self, operator: &str, name: &str) -> (String, String, String) {
        let created = self
            .post_ok("/api/v1/persons", operator, &consented(person(name)), 201)
            .await;
        let person = created["person_id"].as_str().unwrap().to_owned();
        let need = self
            .post_ok(
                &format!("/api/v1/persons/{person}/needs"),
                operator,
                &json!({ "code": "health_stp_code" }),
                201,
            )
            .await;
        let need = need["need_id"].as_str().unwrap().to_owned();
        let consent = created["consent_id"].as_str().unwrap().to_owned();
        (person, need, consent)
    }

    /// Take `name` in charge with consent, record a need answered by `to`
    /// and refer it there.
    pub async fn referred(&self, operator: &str, name: &str, to: &(String, String)) -> Referred {
        let (person, need, consent) = self.person_with_need(operator, name).await;
        let sent = self
            .post_ok(
                "/api/v1/referrals",
                operator,
                &json!({ "person_id": person, "need_id": need, "organization_id": to.0, "service_id": to.1 }),
                201,
            )
            .await;
        Referred {
            person,
            consent,
            need,
            referral: sent["id"].as_str().unwrap().to_owned(),
            position: sent["position"].as_i64().unwrap(),
        }
    }
}
