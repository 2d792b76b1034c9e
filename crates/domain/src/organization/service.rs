//! What a provider offers: services answering need categories, in some
//! languages, with weekly opening hours and dates they are closed, and
//! their validation.

use super::details::text;
use crate::error::DomainError;
use crate::ids::ServiceId;
use crate::taxonomy::NeedCode;
use std::collections::BTreeSet;
use time::{Date, Time, Weekday};

/// One opening period of a day, `open` up to (not including) `close`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeRange {
    /// Opens at.
    pub open: Time,
    /// Closes at.
    pub close: Time,
}

impl TimeRange {
    /// A range (not validated: see [`WeeklyHours::validate`]).
    pub fn new(open: Time, close: Time) -> Self {
        Self { open, close }
    }

    /// Whether `time` falls in the range.
    pub fn contains(&self, time: Time) -> bool {
        self.open <= time && time < self.close
    }
}

/// Weekly opening hours: for each weekday, its opening periods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeeklyHours {
    /// Monday first.
    days: [Vec<TimeRange>; 7],
}

fn day_index(day: Weekday) -> usize {
    usize::from(day.number_days_from_monday())
}

/// The weekdays, Monday first.
pub(super) const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

impl WeeklyHours {
    /// Closed every day.
    pub fn new() -> Self {
        Self::default()
    }

    /// These hours with one more period on `day` (not validated).
    pub fn with(mut self, day: Weekday, open: Time, close: Time) -> Self {
        self.days[day_index(day)].push(TimeRange::new(open, close));
        self
    }

    /// Replace the periods of `day` (not validated).
    pub fn set(&mut self, day: Weekday, ranges: Vec<TimeRange>) {
        self.days[day_index(day)] = ranges;
    }

    /// The periods of `day`.
    pub fn on(&self, day: Weekday) -> &[TimeRange] {
        &self.days[day_index(day)]
    }

    /// Whether it is open on `day` at `time`.
    pub fn is_open(&self, day: Weekday, time: Time) -> bool {
        self.on(day).iter().any(|r| r.contains(time))
    }

    /// Every period opens before it closes, on whole minutes, and no two
    /// periods of a day overlap (one may start when another ends).
    pub fn validate(&self) -> Result<(), DomainError> {
        let invalid = |message| DomainError::Invalid {
            field: "hours",
            message,
        };
        for ranges in &self.days {
            for r in ranges {
                if r.open >= r.close {
                    return Err(invalid("a period must open before it closes"));
                }
                for t in [r.open, r.close] {
                    if t.second() != 0 || t.nanosecond() != 0 {
                        return Err(invalid("times must be whole minutes"));
                    }
                }
            }
            let mut sorted = ranges.clone();
            sorted.sort();
            if sorted.windows(2).any(|w| w[0].close > w[1].open) {
                return Err(invalid("periods of a day must not overlap"));
            }
        }
        Ok(())
    }

    /// The same hours with each day's periods in order.
    fn normalized(mut self) -> Self {
        for ranges in &mut self.days {
            ranges.sort();
        }
        self
    }
}

/// What a provider offers, answering need categories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Its id.
    pub id: ServiceId,
    /// Its name.
    pub name: String,
    /// The need categories it answers (at least one, none retired).
    pub needs: Vec<NeedCode>,
    /// The languages it is given in (ISO 639-1: two lowercase letters).
    pub languages: Vec<String>,
    /// Whether the provider offers interpretation.
    pub interpretation: bool,
    /// Who may use it, in words.
    pub eligibility: String,
    /// Where it is given.
    pub location: String,
    /// When it is open, week by week.
    pub hours: WeeklyHours,
    /// Dates it is closed although the weekly hours say open.
    pub closed_on: Vec<Date>,
}

impl Service {
    /// Whether it answers the need category `code`.
    pub fn answers(&self, code: &NeedCode) -> bool {
        self.needs.contains(code)
    }

    /// Whether it is open on `date` at `time` (closing dates included).
    pub fn is_open_at(&self, date: Date, time: Time) -> bool {
        !self.closed_on.contains(&date) && self.hours.is_open(date.weekday(), time)
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), DomainError> {
        text("name", &self.name, 1, 200)?;
        text("eligibility", &self.eligibility, 0, 2000)?;
        text("location", &self.location, 0, 500)?;
        if self.needs.is_empty() {
            return Err(DomainError::Invalid {
                field: "needs",
                message: "a service answers at least one need category",
            });
        }
        if self.needs.iter().any(NeedCode::is_retired) {
            return Err(DomainError::Invalid {
                field: "needs",
                message: "a retired category cannot be offered",
            });
        }
        if has_duplicates(&self.needs) {
            return Err(DomainError::Invalid {
                field: "needs",
                message: "must not repeat a category",
            });
        }
        if !self.languages.iter().all(|l| is_language_code(l)) {
            return Err(DomainError::Invalid {
                field: "languages",
                message: "must be ISO 639-1 codes: two lowercase letters",
            });
        }
        if has_duplicates(&self.languages) {
            return Err(DomainError::Invalid {
                field: "languages",
                message: "must not repeat a language",
            });
        }
        self.hours.validate()
    }

    /// The same service with its hours and closing dates in order (and
    /// closing dates once each).
    pub(super) fn normalized(mut self) -> Self {
        self.hours = self.hours.normalized();
        self.closed_on.sort();
        self.closed_on.dedup();
        self
    }
}

/// Whether `code` is an ISO 639-1 language code as we store them: two
/// lowercase ASCII letters.
pub fn is_language_code(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase())
}

fn has_duplicates<T: Ord>(items: &[T]) -> bool {
    let set: BTreeSet<&T> = items.iter().collect();
    set.len() != items.len()
}
