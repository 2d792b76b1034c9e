//! The read models of Sportello, each a [`Projection`] of the event log.
//!
//! A projection here only maps events to rows; feeding it (live from the
//! bus, catch-up and rebuild from the log, checkpoints) is the store's
//! runner. A projection never writes personal data in clear: rows hold ids,
//! statuses and times, and personal fields stay sealed under the person's
//! key.

pub mod activations;
pub mod bottlenecks;
pub mod card;
pub mod cases;
pub mod organizations;
pub mod professionals;
pub mod referrals;
pub mod rows;
pub mod stream_activity;

use sportello_store::projection::Projection;
use std::sync::Arc;

pub use activations::ActivationRow;
pub use bottlenecks::BottleneckCells;
pub use cases::{CaseRow, NeedRow};
pub use organizations::OrganizationRow;
pub use professionals::ProfessionalRow;
pub use referrals::ReferralRow;
pub use rows::{RowModel, Rows};
pub use stream_activity::StreamActivity;

/// Every projection of the installation, by name.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(StreamActivity),
        Arc::new(Rows::<CaseRow>::new()),
        Arc::new(Rows::<NeedRow>::new()),
        Arc::new(Rows::<ReferralRow>::new()),
        Arc::new(Rows::<OrganizationRow>::new()),
        Arc::new(BottleneckCells),
        Arc::new(Rows::<ProfessionalRow>::new()),
        Arc::new(Rows::<ActivationRow>::new()),
    ]
}

/// The projection of this name.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}
