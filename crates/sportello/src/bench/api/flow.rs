//! The command mix: client tasks each working fresh people through the
//! desk and the providers over HTTP, one request at a time, the way the
//! desk's and the partners' screens do — take in charge, screen two
//! needs, answer one at the desk now and then, refer the others to an
//! active provider's service that answers them, and the partner's
//! acknowledge, accept or decline, start and complete; a declined referral
//! is sometimes redirected by the desk to another service.

use super::routes::{Answer, Pace, Recorder};
use crate::simulate::Network;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// Route names of the commands, as reported.
pub mod route {
    /// Take in charge.
    pub const TAKE_IN_CHARGE: &str = "POST /persons";
    /// Record a need.
    pub const RECORD_NEED: &str = "POST /persons/{id}/needs";
    /// The desk answers a need itself.
    pub const RESOLVE_NEED: &str = "POST /persons/{id}/needs/{nid}/resolve";
    /// Refer a need.
    pub const SEND: &str = "POST /referrals";
    /// The partner has seen it.
    pub const ACKNOWLEDGE: &str = "POST /referrals/{id}/acknowledge";
    /// The partner takes it.
    pub const ACCEPT: &str = "POST /referrals/{id}/accept";
    /// The partner declines it.
    pub const DECLINE: &str = "POST /referrals/{id}/decline";
    /// First contact with the person.
    pub const START: &str = "POST /referrals/{id}/start";
    /// Done.
    pub const COMPLETE: &str = "POST /referrals/{id}/complete";
    /// The desk sends a declined referral on.
    pub const REDIRECT: &str = "POST /referrals/{id}/redirect";
}

/// How often the desk answers the second need itself.
const RESOLVE: f64 = 0.3;
/// How often a partner declines.
const DECLINE: f64 = 0.2;
/// How often the desk redirects a declined referral.
const REDIRECT: f64 = 0.5;

/// The bearer tokens of the bench's accounts.
pub struct Actors {
    /// The desk operator.
    pub desk: String,
    /// The coordinator.
    pub coordinator: String,
    /// Each provider's partner, by organisation id.
    pub partners: HashMap<Uuid, String>,
}

/// A provider's service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The organisation.
    pub organization: Uuid,
    /// Its service.
    pub service: Uuid,
}

/// The need categories some active provider with an agreement answers,
/// with the services that answer each.
pub struct Catalog {
    needs: Vec<(String, Vec<Target>)>,
}

impl Catalog {
    /// From the network, as of now.
    pub fn of(net: &Network) -> Catalog {
        let today = OffsetDateTime::now_utc().date();
        let mut needs: BTreeMap<String, Vec<Target>> = BTreeMap::new();
        for p in &net.providers {
            let org = &p.organization;
            if !org.can_receive_referrals(today) {
                continue;
            }
            for s in org.services.values() {
                for code in &s.needs {
                    needs
                        .entry(code.as_str().to_owned())
                        .or_default()
                        .push(Target {
                            organization: org.id.0,
                            service: s.id.0,
                        });
                }
            }
        }
        Catalog {
            needs: needs.into_iter().collect(),
        }
    }

    /// The providers that can receive referrals.
    pub fn providers(&self) -> Vec<Uuid> {
        let mut all: Vec<Uuid> = self
            .needs
            .iter()
            .flat_map(|(_, ts)| ts.iter().map(|t| t.organization))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// How many categories.
    pub fn len(&self) -> usize {
        self.needs.len()
    }
}

/// One client task.
pub struct Client {
    http: reqwest::Client,
    base: String,
    actors: Arc<Actors>,
    catalog: Arc<Catalog>,
    rng: StdRng,
    deadline: Instant,
    /// What it measured.
    pub rec: Recorder,
    index: u64,
    pace: Option<Pace>,
}

impl Client {
    /// Client `task` of the phase, until `duration` from now.
    pub fn new(
        http: reqwest::Client,
        base: String,
        actors: Arc<Actors>,
        catalog: Arc<Catalog>,
        task: u64,
        duration: Duration,
    ) -> Self {
        Client {
            http,
            base,
            actors,
            catalog,
            rng: StdRng::seed_from_u64(0xf10e ^ (task << 32)),
            deadline: Instant::now() + duration,
            rec: Recorder::new(),
            index: task << 40,
            pace: None,
        }
    }

    /// Send at this pace instead of one request right after the other.
    pub fn paced(mut self, pace: Pace) -> Self {
        self.pace = Some(pace);
        self
    }

    /// Work people until the deadline.
    pub async fn run(mut self) -> Recorder {
        while Instant::now() < self.deadline {
            // A flow ends early when a command fails (counted) or at the
            // deadline; the next one starts on a new person.
            let _ = self.person().await;
        }
        self.rec
    }

    /// POST `path` as `token` (with a JSON body if given); its JSON answer
    /// if 2xx. Nothing is sent after the deadline.
    async fn post(
        &mut self,
        route: &'static str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        if let Some(pace) = &mut self.pace {
            pace.wait().await;
        }
        if Instant::now() >= self.deadline {
            return None;
        }
        let mut req = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = &body {
            req = req.json(b);
        }
        match self.rec.call(route, req).await {
            Answer::Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.rec
                        .failed(route, format!("{route}: unreadable answer: {e}"));
                    None
                }
            },
            Answer::Failed => None,
        }
    }

    /// One person, from intake to their referrals' ends.
    async fn person(&mut self) -> Option<()> {
        let actors = self.actors.clone();
        let catalog = self.catalog.clone();
        let desk = actors.desk.as_str();
        self.index += 1;
        let identity = identity(&mut self.rng, self.index);
        let taken = self
            .post(route::TAKE_IN_CHARGE, "/persons", desk, Some(identity))
            .await?;
        let person = id(&taken, "person_id")?;
        let a = self.rng.random_range(0..catalog.needs.len());
        let b = (a + self.rng.random_range(1..catalog.needs.len())) % catalog.needs.len();
        let mut refer = Vec::with_capacity(2);
        for (k, i) in [a, b].into_iter().enumerate() {
            let urgency = ["low", "normal", "normal", "normal", "high", "immediate"]
                [self.rng.random_range(0..6)];
            let (code, _) = &catalog.needs[i];
            let body = json!({ "code": code, "urgency": urgency });
            let path = format!("/persons/{person}/needs");
            let need = self
                .post(route::RECORD_NEED, &path, desk, Some(body))
                .await?;
            let need = id(&need, "need_id")?;
            if k == 1 && self.rng.random_bool(RESOLVE) {
                let outcome = ["information_given", "orientation"][self.rng.random_range(0..2)];
                let path = format!("/persons/{person}/needs/{need}/resolve");
                let body = json!({ "outcome": outcome });
                self.post(route::RESOLVE_NEED, &path, desk, Some(body))
                    .await?;
            } else {
                refer.push((need, i));
            }
        }
        for (need, i) in refer {
            let targets = &catalog.needs[i].1;
            let to = targets[self.rng.random_range(0..targets.len())];
            let body = json!({
                "person_id": person,
                "need_id": need,
                "organization_id": to.organization,
                "service_id": to.service,
            });
            let sent = self
                .post(route::SEND, "/referrals", desk, Some(body))
                .await?;
            let referral = id(&sent, "referral_id")?;
            self.provider(&actors, referral, to, targets).await?;
        }
        Some(())
    }

    /// The provider's work on a referral (and the desk's redirection of a
    /// declined one).
    async fn provider(
        &mut self,
        actors: &Actors,
        referral: Uuid,
        to: Target,
        targets: &[Target],
    ) -> Option<()> {
        let partner = actors.partners.get(&to.organization)?.as_str();
        let path = |action: &str| format!("/referrals/{referral}/{action}");
        self.post(route::ACKNOWLEDGE, &path("acknowledge"), partner, None)
            .await?;
        if self.rng.random_bool(DECLINE) {
            let body = json!({ "reason": "no_capacity" });
            self.post(route::DECLINE, &path("decline"), partner, Some(body))
                .await?;
            let others: Vec<Target> = targets.iter().copied().filter(|t| *t != to).collect();
            if others.is_empty() || !self.rng.random_bool(REDIRECT) {
                return Some(());
            }
            let next = others[self.rng.random_range(0..others.len())];
            let body = json!({ "organization_id": next.organization, "service_id": next.service });
            let desk = actors.desk.as_str();
            let sent = self
                .post(route::REDIRECT, &path("redirect"), desk, Some(body))
                .await?;
            let referral = id(&sent, "referral_id")?;
            let partner = actors.partners.get(&next.organization)?.as_str();
            let path = |action: &str| format!("/referrals/{referral}/{action}");
            self.post(route::ACKNOWLEDGE, &path("acknowledge"), partner, None)
                .await?;
            return self
                .work(partner, &path("accept"), &path("start"), &path("complete"))
                .await;
        }
        self.work(partner, &path("accept"), &path("start"), &path("complete"))
            .await
    }

    async fn work(
        &mut self,
        partner: &str,
        accept: &str,
        start: &str,
        complete: &str,
    ) -> Option<()> {
        self.post(route::ACCEPT, accept, partner, None).await?;
        self.post(route::START, start, partner, None).await?;
        let body = json!({ "outcome": "need_met" });
        self.post(route::COMPLETE, complete, partner, Some(body))
            .await?;
        Some(())
    }
}

/// A uuid field of an answer.
fn id(v: &Value, field: &str) -> Option<Uuid> {
    v[field].as_str()?.parse().ok()
}

const GIVEN: &[&str] = &[
    "Amina", "Chinedu", "Olena", "Youssef", "Mariama", "Andrei", "Fatima", "Kwame", "Ayesha",
    "Lamin", "Wei", "Elira", "Moussa", "Nour", "Oksana", "Bilal",
];
const FAMILY: &[&str] = &[
    "Okafor",
    "Benali",
    "Kovalenko",
    "Khan",
    "Hoxha",
    "Popescu",
    "Diop",
    "Hossain",
    "Trabelsi",
    "Hassan",
    "Wang",
    "Mensah",
    "Jallow",
    "Traoré",
    "Eze",
    "Sow",
];
const COUNTRIES: &[(&str, &str)] = &[
    ("NG", "en"),
    ("MA", "ar"),
    ("UA", "uk"),
    ("PK", "ur"),
    ("AL", "sq"),
    ("RO", "ro"),
    ("SN", "wo"),
    ("BD", "bn"),
    ("CN", "zh"),
    ("GH", "en"),
];

/// A fictitious person as the desk types them in: every name starts with
/// `Demo `, phones are `+39 300 000 ...`, documents `DEMO...`.
fn identity(rng: &mut StdRng, index: u64) -> Value {
    let given = GIVEN[rng.random_range(0..GIVEN.len())];
    let family = FAMILY[rng.random_range(0..FAMILY.len())];
    let (country, language) = COUNTRIES[rng.random_range(0..COUNTRIES.len())];
    let year = rng.random_range(1960..=2007);
    let channel = ["desk", "desk", "desk", "phone", "outreach"][rng.random_range(0..5)];
    let mut body = json!({
        "names": [{ "kind": "as_in_document", "text": format!("Demo {given} {family}") }],
        "birth_date": format!("{year}-{:02}-{:02}", rng.random_range(1..=12), rng.random_range(1..=28)),
        "sex": if rng.random_bool(0.5) { "female" } else { "male" },
        "country_of_birth": country,
        "citizenships": [country],
        "languages": [
            { "code": language, "proficiency": "native" },
            { "code": "it", "proficiency": if rng.random_bool(0.5) { "basic" } else { "fluent" } },
        ],
        "contacts": { "phone": format!("+39 300 000 {:04}", index % 10_000) },
        "channel": channel,
        // The information notice at intake: referrals need this consent.
        "consent": {
            "purpose": "referral",
            "organizations": "network",
            "data": ["names", "birth_date", "languages", "contacts", "needs"],
            "given_on": "2025-01-10",
            "notice_language": language,
        },
    });
    if rng.random_bool(0.7) {
        body["documents"] = json!([{
            "kind": "passport",
            "number": format!("DEMO{:07}", rng.random_range(0..10_000_000)),
            "issuing_country": country,
            "expires_on": format!("{}-06-30", rng.random_range(2027..=2034)),
        }]);
    }
    body
}
