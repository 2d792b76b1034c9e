//! Per-route latency and errors of HTTP calls, as the bench client saw
//! them: from sending the request to having read the whole body, on a
//! kept-alive connection of one shared client.

use super::super::write::histogram;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A client's pace: one request every `interval`, on a fixed schedule (a
/// late request does not push the later ones back; more than one interval
/// late, the schedule starts again from now rather than bursting).
pub struct Pace {
    interval: Duration,
    next: Instant,
}

impl Pace {
    /// One request every `interval`, the first after `offset`.
    pub fn every(interval: Duration, offset: Duration) -> Pace {
        Pace {
            interval,
            next: Instant::now() + offset,
        }
    }

    /// Wait for the next slot.
    pub async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next.into()).await;
        } else if now - self.next > self.interval {
            self.next = now;
        }
        self.next += self.interval;
    }
}

/// How many failed answers are kept as examples.
const SAMPLES: usize = 8;

/// A route's answers so far.
struct Route {
    ok: Histogram<u64>,
    errors: u64,
}

/// Latencies (µs) of successful calls and counts of failed ones, per
/// route, with a few failed answers for the report.
pub struct Recorder {
    routes: BTreeMap<&'static str, Route>,
    samples: Vec<String>,
}

/// A call and what it answered.
pub enum Answer {
    /// A 2xx: its body.
    Ok(bytes::Bytes),
    /// Anything else (another status, a transport error): counted.
    Failed,
}

impl Recorder {
    /// Empty.
    pub fn new() -> Self {
        Recorder {
            routes: BTreeMap::new(),
            samples: Vec::new(),
        }
    }

    fn route(&mut self, name: &'static str) -> &mut Route {
        self.routes.entry(name).or_insert_with(|| Route {
            ok: histogram(),
            errors: 0,
        })
    }

    /// Send `req` and read its body; a 2xx is timed under `route`, anything
    /// else counted as an error of `route`.
    pub async fn call(&mut self, route: &'static str, req: reqwest::RequestBuilder) -> Answer {
        let t = Instant::now();
        let result = async {
            let resp = req.send().await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        }
        .await;
        let elapsed = t.elapsed();
        match result {
            Ok((status, body)) if status.is_success() => {
                self.ok(route, elapsed);
                Answer::Ok(body)
            }
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body);
                let text: String = text.chars().take(300).collect();
                self.failed(route, format!("{route}: {status}: {text}"));
                Answer::Failed
            }
            Err(e) => {
                self.failed(route, format!("{route}: {e}"));
                Answer::Failed
            }
        }
    }

    fn ok(&mut self, route: &'static str, elapsed: Duration) {
        self.route(route)
            .ok
            .saturating_record(elapsed.as_micros() as u64);
    }

    /// Count a failure of `route` (also one the caller found wrong in a
    /// 2xx answer, e.g. a body it could not read).
    pub fn failed(&mut self, route: &'static str, sample: String) {
        self.route(route).errors += 1;
        if self.samples.len() < SAMPLES {
            self.samples.push(sample);
        }
    }

    /// Add another recorder's figures.
    pub fn merge(&mut self, other: Recorder) {
        for (name, r) in other.routes {
            let mine = self.route(name);
            mine.ok.add(r.ok).expect("same histogram bounds");
            mine.errors += r.errors;
        }
        let room = SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
    }

    /// The figures, over `seconds` of wall time.
    pub fn summary(&self, seconds: f64) -> Calls {
        let mut all = histogram();
        let mut errors = 0;
        let routes = self
            .routes
            .iter()
            .map(|(name, r)| {
                all.add(&r.ok).expect("same histogram bounds");
                errors += r.errors;
                RouteFigures::of(name, &r.ok, r.errors, seconds)
            })
            .collect();
        let ok = all.len();
        Calls {
            seconds,
            ok,
            errors,
            per_sec: ok as f64 / seconds,
            error_rate: errors as f64 / (ok + errors).max(1) as f64,
            total: RouteFigures::of("all", &all, errors, seconds),
            routes,
            error_samples: self.samples.clone(),
        }
    }
}

/// One route's figures.
#[derive(Clone, Debug, Serialize)]
pub struct RouteFigures {
    /// Method and path template.
    pub route: String,
    /// Successful calls.
    pub ok: u64,
    /// Failed calls.
    pub errors: u64,
    /// Successful calls per second of the phase.
    pub per_sec: f64,
    /// Latency percentiles of the successful calls, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

impl RouteFigures {
    fn of(route: &str, h: &Histogram<u64>, errors: u64, seconds: f64) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        RouteFigures {
            route: route.to_owned(),
            ok: h.len(),
            errors,
            per_sec: h.len() as f64 / seconds,
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// The calls of one phase.
#[derive(Clone, Debug, Serialize)]
pub struct Calls {
    /// Wall time, seconds.
    pub seconds: f64,
    /// Successful calls (2xx).
    pub ok: u64,
    /// Failed calls (any other status, or no answer).
    pub errors: u64,
    /// Successful calls per second.
    pub per_sec: f64,
    /// `errors / (ok + errors)`.
    pub error_rate: f64,
    /// Every route together.
    pub total: RouteFigures,
    /// Per route.
    pub routes: Vec<RouteFigures>,
    /// A few failed answers, as examples.
    pub error_samples: Vec<String>,
}

impl Calls {
    /// The figures of `route` (by its name), if it was called.
    pub fn route(&self, route: &str) -> Option<&RouteFigures> {
        self.routes.iter().find(|r| r.route == route)
    }
}
