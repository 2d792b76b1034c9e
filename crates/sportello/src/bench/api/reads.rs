//! The read mix, with no write load: the desk opening the cards of people
//! of the dataset, partners opening their inboxes (the default view: open
//! referrals, overdue first) and the coordination team's bottleneck report
//! of the last 30 days — 60, 30 and 10 out of 100 requests.

use super::flow::Actors;
use super::routes::Recorder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sportello_domain::PersonId;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Route names of the reads, as reported.
pub mod route {
    /// A person's card, as the desk sees it.
    pub const CARD: &str = "GET /persons/{id}/card";
    /// A provider's inbox, as its partner sees it.
    pub const INBOX: &str = "GET /organizations/{id}/inbox";
    /// The bottleneck report of the last 30 days.
    pub const BOTTLENECKS: &str = "GET /reports/bottlenecks";
}

/// What the readers read.
pub struct Targets {
    /// The dataset's people.
    pub persons: Vec<PersonId>,
    /// Providers with a partner account.
    pub providers: Vec<Uuid>,
    /// `from` of the report: 30 days ago, `YYYY-MM-DD`.
    pub report_from: String,
}

/// One reader until `duration` from now: the mix, or `only` one route.
pub async fn reader(
    http: reqwest::Client,
    base: String,
    actors: Arc<Actors>,
    targets: Arc<Targets>,
    (task, only): (u64, Option<&'static str>),
    duration: Duration,
) -> Recorder {
    let mut rng = StdRng::seed_from_u64(0x4ead ^ (task << 32));
    let mut rec = Recorder::new();
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        let roll = match only {
            Some(route::CARD) => 0,
            Some(route::INBOX) => 60,
            Some(_) => 90,
            None => rng.random_range(0..100),
        };
        let (name, req) = if roll < 60 {
            let p = targets.persons[rng.random_range(0..targets.persons.len())];
            let url = format!("{base}/api/v1/persons/{}/card", p.0);
            (route::CARD, http.get(url).bearer_auth(&actors.desk))
        } else if roll < 90 {
            let org = targets.providers[rng.random_range(0..targets.providers.len())];
            let url = format!("{base}/api/v1/organizations/{org}/inbox");
            let token = &actors.partners[&org];
            (route::INBOX, http.get(url).bearer_auth(token))
        } else {
            let url = format!(
                "{base}/api/v1/reports/bottlenecks?from={}",
                targets.report_from
            );
            (
                route::BOTTLENECKS,
                http.get(url).bearer_auth(&actors.coordinator),
            )
        };
        rec.call(name, req).await;
    }
    rec
}
