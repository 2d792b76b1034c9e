//! Erasure (GDPR art. 17) on an append-only log: the person's key is
//! deleted (crypto-shredding, in the store) and the case records a
//! `PersonErased` event saying why — at the person's request or by the
//! retention rule. The event carries no personal data; the case's facts
//! (needs, referrals, times) stay, so the network's statistics are
//! unchanged. An erased case takes no further command.

use serde::{Deserialize, Serialize};

/// Why a person's data was erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureReason {
    /// The person asked (right to erasure).
    Request,
    /// The case had been closed longer than the retention period.
    Retention,
}

impl ErasureReason {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureReason::Request => "request",
            ErasureReason::Retention => "retention",
        }
    }
}

/// Public part of `PersonErased` (there is no personal part).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErasedPayload {
    /// Why.
    pub reason: ErasureReason,
}
