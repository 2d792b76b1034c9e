//! The working-day calendar behind agreement deadlines ("acknowledge within 2
//! working days, first contact within 5") and the breach and aging reports.
//!
//! It knows the Italian national public holidays (Easter from the anonymous
//! Gregorian algorithm), the comune's patron saint's day, which weekdays are
//! working days and any extra closure dates. It is pure arithmetic: it must
//! never read the system clock. "Now" is always an argument (see "Time is an
//! input" in the design document).
//!
//! Days are UTC calendar days: an instant is reduced to its UTC date, not its
//! Europe/Rome date, so an instant between midnight and 01:00/02:00 Italian
//! time counts as the previous day.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset, Weekday};

/// National public holidays on a fixed date, as (month, day).
const FIXED_HOLIDAYS: [(Month, u8); 10] = [
    (Month::January, 1),   // Capodanno
    (Month::January, 6),   // Epifania
    (Month::April, 25),    // Festa della Liberazione
    (Month::May, 1),       // Festa del Lavoro
    (Month::June, 2),      // Festa della Repubblica
    (Month::August, 15),   // Ferragosto
    (Month::November, 1),  // Ognissanti
    (Month::December, 8),  // Immacolata Concezione
    (Month::December, 25), // Natale
    (Month::December, 26), // Santo Stefano
];

/// Why a [`CalendarConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The patron saint's day is not a date of the calendar.
    #[error("patron saint's day {month}/{day} is not a valid month/day")]
    InvalidPatronSaint {
        /// The month given (1 to 12).
        month: u8,
        /// The day given.
        day: u8,
    },
    /// No weekday is a working day, so no deadline could ever fall.
    #[error("at least one weekday must be a working day")]
    NoWorkingWeekdays,
}

/// The serialisable configuration of a [`WorkingCalendar`], as a comune
/// writes it: weekdays as English names (`"Monday"`, case-insensitive on
/// input), dates as `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// The patron saint's day as (month, day), e.g. `[5, 30]`; `None` if the
    /// comune keeps none. 29 February is accepted and applies in leap years.
    #[serde(default)]
    pub patron_saint: Option<(u8, u8)>,
    /// The weekdays that are working days; Monday to Friday if absent.
    #[serde(default = "monday_to_friday", with = "weekday_names")]
    pub working_weekdays: Vec<Weekday>,
    /// Extra dates the office is closed (e.g. a local emergency).
    #[serde(default, with = "iso_dates")]
    pub closures: Vec<Date>,
}

impl Default for CalendarConfig {
    fn default() -> Self {
        Self {
            patron_saint: None,
            working_weekdays: monday_to_friday(),
            closures: Vec::new(),
        }
    }
}

impl CalendarConfig {
    /// Checks the configuration; [`WorkingCalendar::new`] calls this.
    pub fn validate(&self) -> Result<(), CalendarError> {
        self.patron_month_day().map(|_| ())?;
        if self.working_weekdays.is_empty() {
            return Err(CalendarError::NoWorkingWeekdays);
        }
        Ok(())
    }

    fn patron_month_day(&self) -> Result<Option<(Month, u8)>, CalendarError> {
        let Some((month, day)) = self.patron_saint else {
            return Ok(None);
        };
        let invalid = CalendarError::InvalidPatronSaint { month, day };
        let m = Month::try_from(month).map_err(|_| invalid.clone())?;
        // 2000 is a leap year, so 29 February passes.
        Date::from_calendar_date(2000, m, day).map_err(|_| invalid)?;
        Ok(Some((m, day)))
    }
}

/// Monday to Sunday.
fn all_weekdays() -> impl Iterator<Item = Weekday> {
    (0..7).map(|i| Weekday::Monday.nth_next(i))
}

fn monday_to_friday() -> Vec<Weekday> {
    all_weekdays().take(5).collect()
}

/// Which days the office works, for counting deadlines in working days.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkingCalendar {
    patron_saint: Option<(Month, u8)>,
    /// Indexed by `Weekday::number_days_from_monday`.
    working_weekdays: [bool; 7],
    closures: BTreeSet<Date>,
}

impl Default for WorkingCalendar {
    /// National holidays only, Monday to Friday, no patron saint.
    fn default() -> Self {
        Self::national()
    }
}

impl WorkingCalendar {
    /// A calendar from a configuration, refused if the configuration is invalid.
    pub fn new(config: &CalendarConfig) -> Result<Self, CalendarError> {
        config.validate()?;
        let mut working_weekdays = [false; 7];
        for w in &config.working_weekdays {
            working_weekdays[usize::from(w.number_days_from_monday())] = true;
        }
        Ok(Self {
            patron_saint: config.patron_month_day()?,
            working_weekdays,
            closures: config.closures.iter().copied().collect(),
        })
    }

    /// National holidays only, Monday to Friday, no patron saint.
    pub fn national() -> Self {
        Self::new(&CalendarConfig::default()).expect("the default config is valid")
    }

    /// Potenza: Monday to Friday, patron saint San Gerardo on 30 May.
    pub fn for_potenza() -> Self {
        let config = CalendarConfig {
            patron_saint: Some((5, 30)),
            ..CalendarConfig::default()
        };
        Self::new(&config).expect("30 May is a valid date")
    }

    /// The configuration this calendar was built from (normalised: weekdays
    /// in order from Monday, closures sorted and without duplicates).
    pub fn config(&self) -> CalendarConfig {
        let working_weekdays = all_weekdays()
            .filter(|w| self.working_weekdays[usize::from(w.number_days_from_monday())])
            .collect();
        CalendarConfig {
            patron_saint: self.patron_saint.map(|(m, d)| (m as u8, d)),
            working_weekdays,
            closures: self.closures.iter().copied().collect(),
        }
    }

    /// The days the office is closed in `year` besides weekends: national
    /// holidays, the patron saint's day and the closures, sorted, without
    /// duplicates. Empty for a year outside the range `time` supports.
    pub fn holidays(&self, year: i32) -> Vec<Date> {
        let mut days = BTreeSet::new();
        let on = |m: Month, d: u8| Date::from_calendar_date(year, m, d).ok();
        days.extend(FIXED_HOLIDAYS.iter().filter_map(|&(m, d)| on(m, d)));
        if let Some(easter) = easter_sunday(year) {
            days.insert(easter);
            days.extend(easter.next_day());
        }
        days.extend(self.patron_saint.and_then(|(m, d)| on(m, d)));
        days.extend(self.closures.iter().filter(|d| d.year() == year));
        days.into_iter().collect()
    }

    /// Whether `date` is a holiday, the patron saint's day or a closure
    /// (whatever its weekday).
    pub fn is_holiday(&self, date: Date) -> bool {
        let md = (date.month(), date.day());
        FIXED_HOLIDAYS.contains(&md)
            || self.patron_saint == Some(md)
            || self.closures.contains(&date)
            || easter_sunday(date.year()).is_some_and(|e| date == e || e.next_day() == Some(date))
    }

    /// Whether the office works on `date`: a working weekday and no holiday.
    pub fn is_working_day(&self, date: Date) -> bool {
        self.working_weekdays[usize::from(date.weekday().number_days_from_monday())]
            && !self.is_holiday(date)
    }

    /// The deadline `n` working days after `start`, at the same time of day
    /// and in the same offset as `start`.
    ///
    /// Days are UTC dates (not Europe/Rome ones). If `start` falls on a
    /// non-working day, counting starts from the next working day: 1 working
    /// day from a Saturday is Tuesday, as if the request arrived on Monday.
    /// With `n == 0` the result is `start` moved to that working day.
    ///
    /// # Panics
    ///
    /// If the deadline is after the last date `time` supports (year 9999);
    /// see [`Self::checked_add_working_days`].
    pub fn add_working_days(&self, start: OffsetDateTime, n: u32) -> OffsetDateTime {
        self.checked_add_working_days(start, n)
            .expect("deadline beyond year 9999")
    }

    /// As [`Self::add_working_days`], `None` if the deadline is beyond year 9999.
    pub fn checked_add_working_days(
        &self,
        start: OffsetDateTime,
        n: u32,
    ) -> Option<OffsetDateTime> {
        let from = utc_date(start);
        let mut day = self.first_working_day_from(from)?;
        for _ in 0..n {
            day = self.first_working_day_from(day.next_day()?)?;
        }
        start.checked_add(Duration::days((day - from).whole_days()))
    }

    /// The working days elapsed from `a` to `b` (negative if `b` is before
    /// `a`, so swapping the arguments flips the sign), on UTC dates.
    ///
    /// It counts the working days after `a`'s counting day (the first working
    /// day on or after `a`) up to and including `b`, so it agrees with
    /// [`Self::add_working_days`]: `working_days_between(d,
    /// add_working_days(d, n)) == n` for every `d`. A deadline is breached
    /// when this exceeds the agreed number of days.
    pub fn working_days_between(&self, a: OffsetDateTime, b: OffsetDateTime) -> i64 {
        let (a, b) = (utc_date(a), utc_date(b));
        let (from, to, sign) = if a <= b { (a, b, 1) } else { (b, a, -1) };
        let mut count = 0;
        let mut day = self.first_working_day_from(from);
        while let Some(next) = day.and_then(Date::next_day).filter(|&d| d <= to) {
            count += i64::from(self.is_working_day(next));
            day = Some(next);
        }
        sign * count
    }

    /// The first working day on or after `date`, `None` past year 9999.
    fn first_working_day_from(&self, mut date: Date) -> Option<Date> {
        while !self.is_working_day(date) {
            date = date.next_day()?;
        }
        Some(date)
    }
}

/// Easter Sunday of `year` in the Gregorian calendar (anonymous Gregorian
/// algorithm, a.k.a. Meeus/Jones/Butcher); `None` outside the years `time`
/// supports.
pub fn easter_sunday(year: i32) -> Option<Date> {
    let a = year.rem_euclid(19);
    let (b, c) = (year.div_euclid(100), year.rem_euclid(100));
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = u8::try_from((h + l - 7 * m + 114) / 31).ok()?;
    let day = u8::try_from((h + l - 7 * m + 114) % 31 + 1).ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn utc_date(t: OffsetDateTime) -> Date {
    t.to_offset(UtcOffset::UTC).date()
}

/// Weekdays as their English names.
mod weekday_names {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use time::Weekday;

    pub fn serialize<S: Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(days.iter().map(|w| w.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|name| {
                super::all_weekdays()
                    .find(|w| w.to_string().eq_ignore_ascii_case(name.trim()))
                    .ok_or_else(|| D::Error::custom(format!("unknown weekday {name:?}")))
            })
            .collect()
    }
}

/// Dates as `YYYY-MM-DD`.
mod iso_dates {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser};
    use time::{Date, format_description::BorrowedFormatItem, macros::format_description};

    const FORMAT: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]");

    pub fn serialize<S: Serializer>(dates: &[Date], s: S) -> Result<S::Ok, S::Error> {
        let text: Result<Vec<String>, _> = dates.iter().map(|d| d.format(FORMAT)).collect();
        s.collect_seq(text.map_err(ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Date>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| Date::parse(s, FORMAT).map_err(|e| D::Error::custom(format!("{s:?}: {e}"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::format_description;

    /// `"2026-03-13"`.
    fn d(s: &str) -> Date {
        Date::parse(s, format_description!("[year]-[month]-[day]")).unwrap()
    }

    /// `"2026-03-13 16:45 +01"`.
    fn t(s: &str) -> OffsetDateTime {
        let f = format_description!("[year]-[month]-[day] [hour]:[minute] [offset_hour]");
        OffsetDateTime::parse(s, f).unwrap()
    }

    #[test]
    fn easter_known_years() {
        let known = "2024-03-31 2025-04-20 2026-04-05 2027-03-28 2038-04-25 2285-03-22 1961-04-02";
        for e in known.split(' ').map(d) {
            assert_eq!(easter_sunday(e.year()), Some(e));
        }
    }

    #[test]
    fn every_2026_holiday() {
        let expected: Vec<Date> = "2026-01-01 2026-01-06 2026-04-05 2026-04-06 2026-04-25 \
            2026-05-01 2026-06-02 2026-08-15 2026-11-01 2026-12-08 2026-12-25 2026-12-26"
            .split_whitespace()
            .map(d)
            .collect();
        let cal = WorkingCalendar::national();
        assert_eq!(cal.holidays(2026), expected);
        for &day in &expected {
            assert!(cal.is_holiday(day) && !cal.is_working_day(day), "{day}");
        }
        assert!(cal.is_working_day(d("2026-04-07")));
        assert!(!cal.is_working_day(d("2026-05-30")), "a Saturday");
        assert!(!cal.is_holiday(d("2026-05-30")));
    }

    #[test]
    fn patron_saint_and_closures() {
        let potenza = WorkingCalendar::for_potenza();
        assert!(potenza.is_holiday(d("2025-05-30")));
        assert!(
            !potenza.is_working_day(d("2025-05-30")),
            "San Gerardo, a Friday"
        );
        assert!(WorkingCalendar::national().is_working_day(d("2025-05-30")));
        assert_eq!(potenza.holidays(2026).len(), 13);

        let closures = vec![d("2026-03-10"), d("2027-01-07")];
        let cal = WorkingCalendar::new(&CalendarConfig {
            closures,
            ..potenza.config()
        })
        .unwrap();
        assert!(!cal.is_working_day(d("2026-03-10")));
        assert!(cal.holidays(2026).contains(&d("2026-03-10")));
        assert!(!cal.holidays(2026).contains(&d("2027-01-07")));
    }

    #[test]
    fn deadlines() {
        let cal = WorkingCalendar::national();
        for (start, n, expected) in [
            // Across a weekend, from Friday 13 March 2026.
            ("2026-03-13 16:45 +00", 0, "2026-03-13 16:45 +00"),
            ("2026-03-13 16:45 +00", 1, "2026-03-16 16:45 +00"),
            ("2026-03-13 16:45 +00", 5, "2026-03-20 16:45 +00"),
            // Across Easter (5 April 2026) and Easter Monday, from Thursday.
            ("2026-04-02 10:00 +00", 2, "2026-04-07 10:00 +00"),
            ("2026-04-02 10:00 +00", 5, "2026-04-10 10:00 +00"),
            // From a holiday (Tuesday 2 June): counting starts on Wednesday.
            ("2026-06-02 11:00 +00", 0, "2026-06-03 11:00 +00"),
            ("2026-06-02 11:00 +00", 2, "2026-06-05 11:00 +00"),
            // From a Saturday: as if it arrived on Monday.
            ("2026-03-14 08:00 +00", 1, "2026-03-17 08:00 +00"),
            // Monday 00:30 in Rome is Sunday 23:30 UTC: UTC dates count, so
            // counting starts on Monday (UTC) and the deadline is Tuesday UTC.
            ("2026-03-16 00:30 +01", 1, "2026-03-18 00:30 +01"),
        ] {
            assert_eq!(
                cal.add_working_days(t(start), n),
                t(expected),
                "{start} + {n}"
            );
        }
    }

    #[test]
    fn working_days_between_is_antisymmetric() {
        let cal = WorkingCalendar::national();
        for (a, b, n) in [
            ("2026-03-16 09:00 +00", "2026-03-16 17:00 +00", 0),
            ("2026-03-16 09:00 +00", "2026-03-17 08:00 +00", 1),
            ("2026-03-16 09:00 +00", "2026-03-23 09:00 +00", 5),
            ("2026-03-14 09:00 +00", "2026-03-15 09:00 +00", 0), // a weekend
            ("2026-03-14 09:00 +00", "2026-03-17 09:00 +00", 1), // Saturday counts from Monday
            ("2026-04-02 09:00 +00", "2026-04-07 09:00 +00", 2), // Easter Monday
            ("2026-12-24 09:00 +00", "2027-01-07 09:00 +00", 7), // Christmas to Epiphany
        ] {
            assert_eq!(cal.working_days_between(t(a), t(b)), n, "{a} -> {b}");
            assert_eq!(cal.working_days_between(t(b), t(a)), -n, "{b} -> {a}");
        }
    }

    #[test]
    fn config_validation_and_serde() {
        let mut config = CalendarConfig::default();
        for (month, day) in [(0, 1), (13, 1), (2, 30), (4, 31), (5, 0)] {
            config.patron_saint = Some((month, day));
            let err = CalendarError::InvalidPatronSaint { month, day };
            assert_eq!(WorkingCalendar::new(&config), Err(err));
        }
        config.patron_saint = Some((2, 29));
        assert!(config.validate().is_ok(), "applies in leap years");
        config.working_weekdays.clear();
        assert_eq!(config.validate(), Err(CalendarError::NoWorkingWeekdays));

        let config = WorkingCalendar::for_potenza().config();
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["patron_saint"], serde_json::json!([5, 30]));
        assert_eq!(json["working_weekdays"][0], "Monday");
        assert_eq!(
            serde_json::from_value::<CalendarConfig>(json).unwrap(),
            config
        );

        let parse = serde_json::from_str::<CalendarConfig>;
        let json = r#"{"working_weekdays": ["monday", "SATURDAY"], "closures": ["2026-03-10"]}"#;
        let parsed = parse(json).unwrap();
        assert_eq!(
            parsed.working_weekdays,
            [Weekday::Monday, Weekday::Saturday]
        );
        assert_eq!(parsed.closures, [d("2026-03-10")]);
        assert!(parse(r#"{"working_weekdays": ["Funday"]}"#).is_err());
        assert!(parse(r#"{"closures": ["2026-02-30"]}"#).is_err());
        assert!(parse(r#"{"patron": [5, 30]}"#).is_err(), "unknown field");
        assert_eq!(parse("{}").unwrap(), CalendarConfig::default());
    }

    fn any_start() -> impl Strategy<Value = OffsetDateTime> {
        (0i64..365 * 80, 0i64..86_400, -12i8..=12).prop_map(|(days, secs, hours)| {
            let start = d("2000-01-01").midnight().assume_utc();
            let offset = UtcOffset::from_hms(hours, 0, 0).unwrap();
            (start + Duration::days(days) + Duration::seconds(secs)).to_offset(offset)
        })
    }

    proptest! {
        #[test]
        fn deadlines_are_working_days_monotonic_and_consistent(
            start in any_start(),
            n in 1u32..200,
            potenza in any::<bool>(),
        ) {
            let cal = if potenza { WorkingCalendar::for_potenza() } else { WorkingCalendar::national() };
            let deadline = cal.add_working_days(start, n);
            prop_assert!(cal.is_working_day(utc_date(deadline)));
            prop_assert!(deadline > cal.add_working_days(start, n - 1));
            prop_assert_eq!(deadline.offset(), start.offset());
            prop_assert_eq!(cal.working_days_between(start, deadline), i64::from(n));
            prop_assert_eq!(cal.working_days_between(deadline, start), -i64::from(n));
            if cal.is_working_day(utc_date(start)) {
                prop_assert_eq!(cal.add_working_days(start, 0), start);
            }
        }
    }
}
