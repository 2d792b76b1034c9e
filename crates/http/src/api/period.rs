//! The period of a report, from its `from` and `to` query parameters: one
//! rule, one set of messages, for every report.
//!
//! - `from` and `to` are dates, `YYYY-MM-DD`: UTC days, both included. The
//!   reports count by whole UTC days (the bottleneck cells are kept per
//!   day), so a bound inside a day could not be applied exactly: a
//!   date-time is refused, never rounded — a report never echoes a bound
//!   it did not apply.
//! - Without them the period is the [`DEFAULT_DAYS`] days up to and
//!   including today; with only `to`, `from` is that many days back (`to`
//!   included); with only `from`, `to` is today.
//! - `from` after `to`, or more than [`MAX_DAYS`] days, is a `422` naming
//!   the bounds the caller gave (a default bound is never at fault).
//!
//! Pure: today comes in from the handler's clock. It never reads the
//! clock itself.

use crate::error::{ApiError, FieldError};
use time::{Date, Duration, OffsetDateTime};

/// Days in the period when the query names no `from` (`to` included).
pub const DEFAULT_DAYS: i64 = 90;
/// The most days one report may cover.
pub const MAX_DAYS: i64 = 400;

/// What a bound that is not a date is told.
const NOT_A_DATE: &str =
    "must be a date, YYYY-MM-DD (a whole UTC day): the reports take dates only, not date-times";

// `day`: a `Date` as `YYYY-MM-DD`, for the reports' `from` and `to`.
time::serde::format_description!(pub(crate) day, Date, "[year]-[month]-[day]");

/// The days a report covers: `from` to `to`, UTC, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// The first day.
    pub from: Date,
    /// The last day.
    pub to: Date,
}

impl Period {
    /// The period a query asks for on `today` (UTC), validated.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Period, ApiError> {
        let (from_day, to_day) = (bound("from", from), bound("to", to));
        let errors: Vec<FieldError> = [&from_day, &to_day]
            .into_iter()
            .filter_map(|b| b.as_ref().err().cloned())
            .collect();
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let to_day = to_day.ok().flatten().unwrap_or(today);
        // `to` must have a next day: the period ends at its end.
        if to_day.next_day().is_none() {
            return Err(ApiError::Validation(vec![bad("to", NOT_A_DATE)]));
        }
        let from_day = match from_day.ok().flatten() {
            Some(day) => day,
            None => to_day
                .checked_sub(Duration::days(DEFAULT_DAYS - 1))
                .ok_or_else(|| ApiError::Validation(vec![bad("to", NOT_A_DATE)]))?,
        };
        let given = || {
            [("from", from), ("to", to)]
                .into_iter()
                .filter(|(_, raw)| raw.is_some())
                .map(|(field, _)| field)
        };
        let refuse = |message: &str| {
            ApiError::Validation(given().map(|field| bad(field, message)).collect())
        };
        if from_day > to_day {
            return Err(refuse("`from` must not be after `to`"));
        }
        if (to_day - from_day).whole_days() + 1 > MAX_DAYS {
            return Err(refuse(
                "the period from `from` to `to` must be 400 days or less",
            ));
        }
        Ok(Period {
            from: from_day,
            to: to_day,
        })
    }

    /// The day after the last (the first day not in the period).
    pub fn end_day(self) -> Date {
        // `parse` made sure there is one.
        self.to.next_day().unwrap_or(self.to)
    }

    /// The first instant of the period (midnight UTC of `from`).
    pub fn start(self) -> OffsetDateTime {
        self.from.midnight().assume_utc()
    }

    /// The first instant after the period (midnight UTC after `to`).
    pub fn end(self) -> OffsetDateTime {
        self.end_day().midnight().assume_utc()
    }
}

fn bad(field: &str, message: &str) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// One bound as given: a date, or nothing.
fn bound(field: &str, raw: Option<&str>) -> Result<Option<Date>, FieldError> {
    raw.map(|s| {
        let s = s.trim();
        // Exactly `YYYY-MM-DD`: no sign, no wider year, nothing after.
        if s.len() != 10 {
            return Err(bad(field, NOT_A_DATE));
        }
        Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
            .map_err(|_| bad(field, NOT_A_DATE))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    const TODAY: Date = date!(2026 - 03 - 10);

    fn parse(from: Option<&str>, to: Option<&str>) -> Result<Period, ApiError> {
        Period::parse(from, to, TODAY)
    }

    fn days(from: Option<&str>, to: Option<&str>) -> (Date, Date) {
        let p = parse(from, to).unwrap();
        (p.from, p.to)
    }

    /// The fields and messages of a refusal.
    fn refused(from: Option<&str>, to: Option<&str>) -> Vec<(String, String)> {
        match parse(from, to).unwrap_err() {
            ApiError::Validation(f) => f.into_iter().map(|f| (f.field, f.message)).collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    fn fields(from: Option<&str>, to: Option<&str>) -> Vec<String> {
        refused(from, to).into_iter().map(|f| f.0).collect()
    }

    #[test]
    fn the_default_is_the_90_days_up_to_today() {
        assert_eq!(days(None, None), (date!(2025 - 12 - 11), TODAY));
        let p = parse(None, None).unwrap();
        assert_eq!((p.to - p.from).whole_days() + 1, DEFAULT_DAYS);
        assert_eq!(p.start(), datetime!(2025-12-11 00:00 UTC));
        assert_eq!(p.end(), datetime!(2026-03-11 00:00 UTC), "today included");
    }

    #[test]
    fn one_bound_defaults_the_other_by_the_same_rule() {
        assert_eq!(
            days(None, Some("2026-01-31")),
            (date!(2025 - 11 - 03), date!(2026 - 01 - 31))
        );
        assert_eq!(
            days(Some("2026-03-01"), None),
            (date!(2026 - 03 - 01), TODAY)
        );
        // A `to` after today is taken as given.
        assert_eq!(
            days(Some("2026-03-01"), Some("2026-03-20")),
            (date!(2026 - 03 - 01), date!(2026 - 03 - 20))
        );
    }

    #[test]
    fn both_days_are_included() {
        let p = parse(Some("2026-02-01"), Some("2026-02-01")).unwrap();
        assert_eq!(p.start(), datetime!(2026-02-01 00:00 UTC));
        assert_eq!(p.end(), datetime!(2026-02-02 00:00 UTC));
        assert_eq!(p.end_day(), date!(2026 - 02 - 02));
        let p = parse(Some("2026-03-01"), Some("2026-03-31")).unwrap();
        assert_eq!(p.end(), datetime!(2026-04-01 00:00 UTC));
    }

    #[test]
    fn a_date_time_is_refused_naming_the_field_and_saying_dates_only() {
        for t in [
            "2026-03-01T00:00:00Z",
            "2026-03-01T00:01Z",
            "2026-03-01T08:00:00+02:00",
            "2026-03-01T08:00:00 02:00",
            "2026-03-01 00:00",
        ] {
            let got = refused(Some("2026-02-01"), Some(t));
            assert_eq!(got, [("to".to_owned(), NOT_A_DATE.to_owned())], "{t}");
            assert!(got[0].1.contains("dates only"));
            assert_eq!(fields(Some(t), None), ["from"], "{t}");
        }
    }

    #[test]
    fn malformed_dates_are_named_together() {
        assert_eq!(
            fields(Some("yesterday"), Some("2026-02-30")),
            ["from", "to"]
        );
        for s in ["10/03/2026", "2026-3-1", "+2026-03-01", "20260301", ""] {
            assert_eq!(fields(Some(s), None), ["from"], "{s:?}");
        }
        // Around the edges of the calendar.
        assert_eq!(fields(None, Some("9999-12-31")), ["to"]);
        assert!(parse(Some("0000-01-01"), Some("0000-01-05")).is_ok());
        assert!(parse(None, Some("0000-01-05")).is_ok());
        assert_eq!(days(Some(" 2026-03-01 "), None).0, date!(2026 - 03 - 01));
    }

    #[test]
    fn from_after_to_names_the_bounds_given() {
        assert_eq!(
            refused(Some("2026-02-10"), Some("2026-02-09")),
            [
                (
                    "from".to_owned(),
                    "`from` must not be after `to`".to_owned()
                ),
                ("to".to_owned(), "`from` must not be after `to`".to_owned()),
            ]
        );
        // Without `to`, the `from` given is at fault, never the default.
        assert_eq!(fields(Some("2026-03-11"), None), ["from"]);
    }

    #[test]
    fn periods_over_400_days_are_refused() {
        let p = parse(Some("2025-01-01"), Some("2026-02-04")).unwrap();
        assert_eq!((p.to - p.from).whole_days() + 1, MAX_DAYS);
        assert_eq!(
            fields(Some("2025-01-01"), Some("2026-02-05")),
            ["from", "to"]
        );
        assert_eq!(fields(Some("2020-01-01"), None), ["from"]);
    }

    #[test]
    fn days_are_written_as_dates() {
        #[derive(serde::Serialize)]
        struct Echo {
            #[serde(with = "day")]
            from: Date,
        }
        let v = serde_json::to_value(Echo {
            from: date!(2026 - 03 - 01),
        })
        .unwrap();
        assert_eq!(v["from"], "2026-03-01");
    }
}
