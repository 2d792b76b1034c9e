//! What every answer and every caller is held to, whatever the route:
//! security headers (a strict Content Security Policy, no framing, no
//! sniffing, no referrer, HSTS when served behind TLS, no caching of
//! answers that carry personal data) and rate limits (sign-in attempts
//! per client address, API requests per account). The body size limit is
//! [`crate::launch::MAX_BODY`].
//!
//! Never: a limit keyed on anything personal beyond the account id or
//! the client address, which are kept in memory only.

use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The policy for the pages and the API: nothing from elsewhere, no
/// inline script, never inside a frame.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The interactive API page (`/api/docs`) needs inline styles and scripts
/// of its vendored Swagger UI; still nothing from elsewhere, never framed.
pub const CSP_DOCS: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
                            style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                            object-src 'none'; base-uri 'none'; form-action 'self'; \
                            frame-ancestors 'none'";

/// The server's rate limiters.
#[derive(Clone)]
pub struct Limits {
    login: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    api: Option<Arc<DefaultKeyedRateLimiter<uuid::Uuid>>>,
}

impl Limits {
    /// `login_per_minute` sign-in attempts per client address (a burst of
    /// as many); `api_per_second` requests per account with a burst of ten
    /// seconds' worth (0: no API limit).
    pub fn new(login_per_minute: u32, api_per_second: u32) -> Self {
        let login = NonZeroU32::new(login_per_minute).unwrap_or(NonZeroU32::MIN);
        let api = NonZeroU32::new(api_per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(10).expect("ten"));
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        Limits {
            login: Arc::new(RateLimiter::keyed(Quota::per_minute(login))),
            api,
        }
    }

    /// One sign-in attempt from `ip`; `Err(seconds to wait)` if too many.
    /// An IPv6 client is counted by its /64 (one host holds a whole /64);
    /// a request whose address is unknown counts against one shared key,
    /// so the limit never silently lapses.
    pub fn login(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let key = match ip {
            Some(IpAddr::V6(v6)) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
            Some(v4) => v4,
            None => IpAddr::from([0, 0, 0, 0]),
        };
        self.login.check_key(&key).map_err(wait_secs)
    }

    /// One API request of `account`; `Err(seconds to wait)` if too many.
    pub fn api(&self, account: uuid::Uuid) -> Result<(), u64> {
        match &self.api {
            None => Ok(()),
            Some(api) => api.check_key(&account).map_err(wait_secs),
        }
    }

    /// Forget keys that are back to a full quota (bounded memory).
    pub fn prune(&self) {
        self.login.retain_recent();
        if let Some(api) = &self.api {
            api.retain_recent();
        }
    }
}

/// Seconds until a refused request may be tried again (at least one).
fn wait_secs(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
    not_until
        .wait_time_from(DefaultClock::default().now())
        .as_secs()
        .max(1)
}

/// Refuse `HEAD` on people's routes: axum would answer it with the `GET`
/// handler, which records a read in the audit although nothing is sent.
pub async fn no_head_on_people(req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::HEAD && req.uri().path().starts_with("/api/v1/persons") {
        return crate::error::ApiError::MethodNotAllowed.into_response();
    }
    next.run(req).await
}

/// Add the security headers to every answer.
pub async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let docs = req.uri().path().starts_with("/api/docs");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        if docs { CSP_DOCS } else { CSP },
    );
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(h, header::CACHE_CONTROL, "no-store");
    if state.settings.behind_tls {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    res
}
