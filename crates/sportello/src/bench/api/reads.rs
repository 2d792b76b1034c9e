//! The reads: the desk opening the cards of people of the dataset,
//! partners opening their inboxes (the default view: open referrals,
//! overdue first) and the coordination team's bottleneck report of the
//! last 30 days, in the proportions a reader is given ([`Weights`]).

use super::flow::Actors;
use super::routes::{Pace, Recorder};
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

/// How many cards, inboxes and reports a reader asks for, in proportion.
#[derive(Clone, Copy, Debug)]
pub struct Weights {
    /// Cards.
    pub card: u32,
    /// Inboxes.
    pub inbox: u32,
    /// Bottleneck reports.
    pub report: u32,
}

impl Weights {
    /// The saturation phase's mix: 60 cards, 30 inboxes, 10 reports.
    pub const READS: Weights = Weights {
        card: 60,
        inbox: 30,
        report: 10,
    };
    /// The desk's and the partners' screens: 2 cards to an inbox.
    pub const SCREENS: Weights = Weights {
        card: 2,
        inbox: 1,
        report: 0,
    };
    /// One route alone.
    pub fn only(route: &str) -> Weights {
        let one = |r| u32::from(route == r);
        Weights {
            card: one(route::CARD),
            inbox: one(route::INBOX),
            report: one(route::BOTTLENECKS),
        }
    }
}

/// One reader until `duration` from now, with these `weights`, at `pace`
/// or one request right after the other.
pub async fn reader(
    http: reqwest::Client,
    base: String,
    actors: Arc<Actors>,
    targets: Arc<Targets>,
    (task, weights, mut pace): (u64, Weights, Option<Pace>),
    duration: Duration,
) -> Recorder {
    let mut rng = StdRng::seed_from_u64(0x4ead ^ (task << 32));
    let mut rec = Recorder::new();
    let deadline = Instant::now() + duration;
    let total = weights.card + weights.inbox + weights.report;
    assert!(total > 0, "a reader reads something");
    loop {
        if let Some(p) = &mut pace {
            p.wait().await;
        }
        if Instant::now() >= deadline {
            break;
        }
        let roll = rng.random_range(0..total);
        let (name, req) = if roll < weights.card {
            let p = targets.persons[rng.random_range(0..targets.persons.len())];
            let url = format!("{base}/api/v1/persons/{}/card", p.0);
            (route::CARD, http.get(url).bearer_auth(&actors.desk))
        } else if roll < weights.card + weights.inbox {
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
