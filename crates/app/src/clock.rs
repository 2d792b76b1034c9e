//! The application's clock: every time the server decides with — when an
//! event occurred, deadlines, what is overdue, today's date for consents
//! and agreements, the reports' periods, the activations and their
//! scheduler, the retention rule — is read from here, never from the
//! system directly. A test sets the clock ([`Clock::manual`]) and moves it
//! on ([`ManualClock::set`]) instead of sleeping, and the scheduler wakes
//! at once when it moves; or it runs the server ahead of the system's time
//! ([`Clock::shifted`]), so a date written into a test that only passes
//! today fails now rather than on a user's machine next month.
//!
//! Sign-in security (session and token lifetimes, lockouts) keeps to the
//! database's own clock: it is about real elapsed time, not the network's
//! business days.

use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// The time, from the system or set by hand.
#[derive(Clone, Default)]
pub enum Clock {
    /// The system's clock (in production).
    #[default]
    System,
    /// A clock a test sets.
    Manual(Arc<ManualClock>),
    /// The system's clock moved by a fixed amount (a test running the
    /// server in the future).
    Shifted(time::Duration),
}

/// A clock that stands still until it is set.
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
    moved: Notify,
}

impl ManualClock {
    /// Set the time (and wake whoever waits on the clock).
    pub fn set(&self, at: OffsetDateTime) {
        *self.now.lock().expect("clock lock") = at;
        self.moved.notify_waiters();
    }

    /// Move the time on by `by`.
    pub fn advance(&self, by: time::Duration) {
        let at = *self.now.lock().expect("clock lock") + by;
        self.set(at);
    }
}

impl Clock {
    /// A manual clock standing at `at`, and its handle.
    pub fn manual(at: OffsetDateTime) -> (Clock, Arc<ManualClock>) {
        let m = Arc::new(ManualClock {
            now: Mutex::new(at),
            moved: Notify::new(),
        });
        (Clock::Manual(m.clone()), m)
    }

    /// The system's clock moved by `by`.
    pub fn shifted(by: time::Duration) -> Clock {
        Clock::Shifted(by)
    }

    /// Now.
    pub fn now(&self) -> OffsetDateTime {
        match self {
            Clock::System => OffsetDateTime::now_utc(),
            Clock::Manual(m) => *m.now.lock().expect("clock lock"),
            Clock::Shifted(by) => OffsetDateTime::now_utc() + *by,
        }
    }

    /// Today's date where the network works (Italy: Europe/Rome), the
    /// day agreements and consents are dated in.
    pub fn today(&self) -> time::Date {
        sportello_domain::matching::rome_date(self.now())
    }

    /// Wait until `period` passes on the system's clock or a manual clock
    /// is set, whichever comes first.
    pub async fn tick(&self, period: std::time::Duration) {
        match self {
            Clock::System | Clock::Shifted(_) => tokio::time::sleep(period).await,
            Clock::Manual(m) => {
                let _ = tokio::time::timeout(period, m.moved.notified()).await;
            }
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clock::System => f.write_str("System"),
            Clock::Manual(m) => write!(f, "Manual({})", *m.now.lock().expect("clock lock")),
            Clock::Shifted(by) => write!(f, "Shifted({by})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[tokio::test]
    async fn a_manual_clock_stands_still_and_wakes_on_a_move() {
        let (clock, hand) = Clock::manual(datetime!(2026-03-02 09:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-03-02 09:00 UTC));
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { clock.tick(std::time::Duration::from_secs(60)).await }
        });
        // Set until the waiter, once it waits, is woken (long before its
        // minute is up).
        let started = std::time::Instant::now();
        while !waiting.is_finished() {
            hand.set(datetime!(2026-03-03 09:00 UTC));
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
            tokio::task::yield_now().await;
        }
        assert_eq!(clock.now(), datetime!(2026-03-03 09:00 UTC));
    }

    #[test]
    fn today_is_the_day_in_rome() {
        // 23:30 UTC in winter is 00:30 of the next day in Potenza.
        let (clock, hand) = Clock::manual(datetime!(2026-03-01 23:30 UTC));
        assert_eq!(clock.today(), time::macros::date!(2026 - 03 - 02));
        hand.set(datetime!(2026-03-01 22:59 UTC));
        assert_eq!(clock.today(), time::macros::date!(2026 - 03 - 01));
    }

    #[test]
    fn a_shifted_clock_runs_ahead_of_the_system_by_its_shift() {
        let clock = Clock::shifted(time::Duration::days(365));
        let before = OffsetDateTime::now_utc();
        let now = clock.now();
        let after = OffsetDateTime::now_utc();
        assert!(now >= before + time::Duration::days(365));
        assert!(now <= after + time::Duration::days(365));
    }
}
