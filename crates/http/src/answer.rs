//! The answer of a write, as sent: status, the headers that describe what
//! was written (`ETag`, `Location`) and the JSON body, in bytes. With an
//! `Idempotency-Key` the write path ([`sportello_app::command`]) keeps it with the
//! key, in the transaction of the events, and answers every retry of the
//! request with it — status, headers and body byte for byte.
//!
//! Never: answer a retry with an answer rendered again. Times, deadlines,
//! offers and rankings would be those of the retry, not of the write.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_app::AppError;
use sportello_domain::PersonId;

/// The answer of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: bytes::Bytes,
    about: Option<PersonId>,
}

/// An answer as kept with its idempotency key.
#[derive(Serialize, Deserialize)]
struct Kept {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body's JSON text as sent (a string, not a JSON value: kept
    /// byte for byte, key order and all).
    body: String,
}

impl Answer {
    /// `status` with `body` as JSON.
    pub fn json(status: StatusCode, body: &impl Serialize) -> Self {
        // The answers are plain structs of ids, numbers, strings and
        // times: serialising them cannot fail.
        let body = serde_json::to_vec(body).expect("an answer serialises to JSON");
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
            about: None,
        }
    }

    /// With the header `name` (an `ETag`, a `Location`).
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        let value = HeaderValue::from_str(value).expect("versions and paths are header values");
        self.headers.push((name, value));
        self
    }

    /// Holding the data of `person` (a place, a note): kept sealed under
    /// their key, so erasing them erases it.
    pub fn about(mut self, person: Option<PersonId>) -> Self {
        self.about = person;
        self
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Its body, as sent.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl sportello_app::command::Keep for Answer {
    fn to_kept(&self) -> (serde_json::Value, Option<PersonId>) {
        let kept = Kept {
            status: self.status.as_u16(),
            headers: self
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: String::from_utf8_lossy(&self.body).into_owned(),
        };
        (
            serde_json::to_value(kept).expect("a kept answer serialises"),
            self.about,
        )
    }

    fn from_kept(kept: serde_json::Value) -> Result<Self, AppError> {
        let bad = |what: &str| AppError::Internal(anyhow::anyhow!("kept answer: {what}"));
        let kept: Kept = serde_json::from_value(kept).map_err(|_| bad("not an answer"))?;
        let headers = kept
            .headers
            .into_iter()
            .map(|(n, v)| {
                Ok((
                    HeaderName::try_from(n).map_err(|_| bad("header name"))?,
                    HeaderValue::try_from(v).map_err(|_| bad("header value"))?,
                ))
            })
            .collect::<Result<_, AppError>>()?;
        Ok(Answer {
            status: StatusCode::from_u16(kept.status).map_err(|_| bad("status"))?,
            headers,
            body: kept.body.into_bytes().into(),
            about: None,
        })
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.body).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            h.append(name, value);
        }
        res
    }
}
