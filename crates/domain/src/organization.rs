//! An organisation of the network (ente, nodo della rete): the desk or a
//! provider, with its services and its agreement (protocollo d'intesa). Its
//! own stream (kind `organization`).
//!
//! Onboarding lives in one place, [`transition`]:
//!
//! ```text
//! invited ──▶ onboarding ──▶ active ⇄ suspended
//! ```
//!
//! A service answers need categories of the taxonomy, in some languages,
//! with weekly opening hours and dates it is closed. The agreement says how
//! fast the provider answers a referral (in working days) and which fields
//! of the card it may see; signing a new one replaces the previous one.
//!
//! Organisation data is not personal: every event has a public part only.
//! `decide` is pure: the same state and command always give the same events
//! or the same refusal; a refusal gives no event. Time comes in as dates.

use crate::calendar::WorkingCalendar;
use crate::error::DomainError;
use crate::event::{DomainEvent, EventParts, part};
use crate::ids::{AgreementId, OrganizationId, ServiceId};
use crate::taxonomy::NeedCode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::{Date, OffsetDateTime, Time, Weekday};

/// The stream kind of an organisation.
pub const STREAM_KIND: &str = "organization";

/// What kind of organisation it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationKind {
    /// The comune's immigration services desk (sportello).
    Desk,
    /// Questura (police headquarters: residence permits).
    Questura,
    /// Prefettura (prefecture: immigration office).
    Prefettura,
    /// Azienda Sanitaria Locale (local health authority).
    HealthAuthority,
    /// Centro per l'impiego (job centre).
    JobCentre,
    /// Ufficio scolastico (regional or provincial school office).
    SchoolOffice,
    /// Another office of the comune.
    ComuneOffice,
    /// Patronato (welfare advice bureau).
    Patronato,
    /// Trade union.
    TradeUnion,
    /// Non-profit organisation (association, cooperative, charity).
    NonProfit,
    /// Anything else.
    Other,
}

/// Whether the organisation is public or private.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// A public body.
    Public,
    /// A private one (patronati, unions, non-profits, ...).
    Private,
}

/// Where an organisation stands in its onboarding into the network.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnboardingStatus {
    /// Listed and invited to join.
    Invited,
    /// Joining: agreement and services being set up.
    Onboarding,
    /// A working member of the network: referrals may be sent to it.
    Active,
    /// Temporarily out: no referrals are sent to it.
    Suspended,
}

impl OnboardingStatus {
    /// Every status.
    pub const ALL: [OnboardingStatus; 4] = [
        OnboardingStatus::Invited,
        OnboardingStatus::Onboarding,
        OnboardingStatus::Active,
        OnboardingStatus::Suspended,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OnboardingStatus::Invited => "invited",
            OnboardingStatus::Onboarding => "onboarding",
            OnboardingStatus::Active => "active",
            OnboardingStatus::Suspended => "suspended",
        }
    }
}

/// The onboarding lifecycle, in one place: whether an organisation may go
/// from `from` to `to` (staying where it is is not a transition).
pub fn transition(from: OnboardingStatus, to: OnboardingStatus) -> bool {
    use OnboardingStatus as S;
    matches!(
        (from, to),
        (S::Invited, S::Onboarding)
            | (S::Onboarding, S::Active)
            | (S::Active, S::Suspended)
            | (S::Suspended, S::Active)
    )
}

/// How to reach the organisation's office (organisation data, not personal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Contacts {
    /// Office phone.
    pub phone: Option<String>,
    /// Office email.
    pub email: Option<String>,
    /// Office address.
    pub address: Option<String>,
}

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
const WEEKDAYS: [Weekday; 7] = [
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
    fn normalized(mut self) -> Self {
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

fn text(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), DomainError> {
    let len = value.trim().chars().count();
    if len < min {
        return Err(DomainError::Invalid {
            field,
            message: "must not be empty",
        });
    }
    if value.chars().count() > max {
        return Err(DomainError::Invalid {
            field,
            message: "is too long",
        });
    }
    Ok(())
}

fn optional_text(field: &'static str, value: &Option<String>) -> Result<(), DomainError> {
    match value {
        Some(v) => text(field, v, 1, 300),
        None => Ok(()),
    }
}

impl Contacts {
    /// Check every field: present fields are not blank, an email has an `@`
    /// between two non-empty parts, a phone has digits and only `+ -()/.`
    /// and spaces besides.
    pub fn validate(&self) -> Result<(), DomainError> {
        optional_text("phone", &self.phone)?;
        optional_text("email", &self.email)?;
        optional_text("address", &self.address)?;
        if let Some(phone) = &self.phone {
            let ok = phone.chars().any(|c| c.is_ascii_digit())
                && phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-()/.".contains(c));
            if !ok {
                return Err(DomainError::Invalid {
                    field: "phone",
                    message: "must be digits, spaces and + - ( ) / .",
                });
            }
        }
        if let Some(email) = &self.email {
            let ok = email
                .trim()
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('@'));
            if !ok || email.trim().contains(char::is_whitespace) {
                return Err(DomainError::Invalid {
                    field: "email",
                    message: "must be an email address",
                });
            }
        }
        Ok(())
    }
}

/// A field of the card (scheda unica) a provider may be allowed to see.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CardField {
    /// Given and family names.
    Names,
    /// Date of birth.
    BirthDate,
    /// Citizenship.
    Citizenship,
    /// Languages spoken.
    Languages,
    /// Phone, email, address of the person.
    Contacts,
    /// Identity and residence documents.
    Documents,
    /// Vulnerabilities (special categories).
    Vulnerabilities,
    /// The screened needs.
    Needs,
    /// The desk's notes.
    Notes,
}

impl CardField {
    /// Every field.
    pub const ALL: [CardField; 9] = [
        CardField::Names,
        CardField::BirthDate,
        CardField::Citizenship,
        CardField::Languages,
        CardField::Contacts,
        CardField::Documents,
        CardField::Vulnerabilities,
        CardField::Needs,
        CardField::Notes,
    ];
}

/// The agreement (protocollo d'intesa) of an organisation: what it commits
/// to, how fast, and what of the card it may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// Its id.
    pub id: AgreementId,
    /// When it was signed.
    pub signed_on: Date,
    /// First day it applies.
    pub valid_from: Date,
    /// Last day it applies (included).
    pub valid_to: Date,
    /// Working days within which a referral is acknowledged (at least 1).
    pub acknowledge_within: u8,
    /// Working days within which the person is first contacted (at least
    /// 1, and not fewer than `acknowledge_within`).
    pub first_contact_within: u8,
    /// The card fields the provider may see.
    pub visible_fields: BTreeSet<CardField>,
}

impl Agreement {
    /// Whether it applies on `date` (both ends included).
    pub fn in_force(&self, date: Date) -> bool {
        self.valid_from <= date && date <= self.valid_to
    }

    /// Whether the provider may see `field` of the card.
    pub fn may_see(&self, field: CardField) -> bool {
        self.visible_fields.contains(&field)
    }

    /// When a referral sent at `sent` must be acknowledged by, counted in
    /// working days of `calendar` (`None` beyond year 9999).
    pub fn acknowledge_by(
        &self,
        calendar: &WorkingCalendar,
        sent: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        calendar.checked_add_working_days(sent, u32::from(self.acknowledge_within))
    }

    /// When the person must be first contacted by, for a referral sent at
    /// `sent` (`None` beyond year 9999).
    pub fn first_contact_by(
        &self,
        calendar: &WorkingCalendar,
        sent: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        calendar.checked_add_working_days(sent, u32::from(self.first_contact_within))
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.valid_from > self.valid_to {
            return Err(DomainError::Invalid {
                field: "valid_to",
                message: "must not be before valid_from",
            });
        }
        if self.acknowledge_within == 0 {
            return Err(DomainError::Invalid {
                field: "acknowledge_within",
                message: "must be at least 1 working day",
            });
        }
        if self.first_contact_within == 0 {
            return Err(DomainError::Invalid {
                field: "first_contact_within",
                message: "must be at least 1 working day",
            });
        }
        if self.first_contact_within < self.acknowledge_within {
            return Err(DomainError::Invalid {
                field: "first_contact_within",
                message: "must not be shorter than acknowledge_within",
            });
        }
        Ok(())
    }
}

/// An organisation as its events left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// Its id (also its stream id).
    pub id: OrganizationId,
    /// Its name.
    pub name: String,
    /// What kind it is.
    pub kind: OrganizationKind,
    /// Public or private.
    pub ownership: Ownership,
    /// How to reach its office.
    pub contacts: Contacts,
    /// Where it stands in onboarding.
    pub status: OnboardingStatus,
    /// Its services.
    pub services: BTreeMap<ServiceId, Service>,
    /// Its current agreement, if any.
    pub agreement: Option<Agreement>,
}

impl Organization {
    /// Whether it is active and its agreement is in force on `date`: the
    /// desk may send it referrals.
    pub fn can_receive_referrals(&self, date: Date) -> bool {
        self.status == OnboardingStatus::Active
            && self.agreement.as_ref().is_some_and(|a| a.in_force(date))
    }
}

/// What the desk or the coordination team asks of an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganizationCommand {
    /// List a new organisation (it starts invited).
    Register {
        /// Its id.
        id: OrganizationId,
        /// Its name.
        name: String,
        /// What kind it is.
        kind: OrganizationKind,
        /// Public or private.
        ownership: Ownership,
        /// How to reach its office.
        contacts: Contacts,
    },
    /// Change its name, kind, ownership or contacts.
    UpdateDetails {
        /// Its name.
        name: String,
        /// What kind it is.
        kind: OrganizationKind,
        /// Public or private.
        ownership: Ownership,
        /// How to reach its office.
        contacts: Contacts,
    },
    /// Move it along its onboarding.
    ChangeOnboarding(OnboardingStatus),
    /// Add a service.
    AddService(Service),
    /// Replace a service (same id).
    UpdateService(Service),
    /// Remove a service.
    RemoveService(ServiceId),
    /// Sign an agreement; it replaces the current one, if any.
    SignAgreement(Agreement),
    /// End the current agreement.
    EndAgreement {
        /// The day it ends.
        on: Date,
    },
}

/// What happened to an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganizationEvent {
    /// Listed.
    Registered {
        /// Its id.
        id: OrganizationId,
        /// Its name.
        name: String,
        /// What kind it is.
        kind: OrganizationKind,
        /// Public or private.
        ownership: Ownership,
        /// How to reach its office.
        contacts: Contacts,
    },
    /// Details changed.
    DetailsUpdated {
        /// Its name.
        name: String,
        /// What kind it is.
        kind: OrganizationKind,
        /// Public or private.
        ownership: Ownership,
        /// How to reach its office.
        contacts: Contacts,
    },
    /// Onboarding moved.
    OnboardingChanged {
        /// From.
        from: OnboardingStatus,
        /// To.
        to: OnboardingStatus,
    },
    /// A service added.
    ServiceAdded(Service),
    /// A service replaced.
    ServiceUpdated(Service),
    /// A service removed.
    ServiceRemoved(ServiceId),
    /// An agreement signed.
    AgreementSigned {
        /// The agreement.
        agreement: Agreement,
        /// The agreement it replaces.
        replaces: Option<AgreementId>,
    },
    /// The agreement ended.
    AgreementEnded {
        /// The agreement.
        agreement: AgreementId,
        /// The day it ended.
        on: Date,
    },
}

impl OrganizationEvent {
    /// Its type on the wire.
    pub fn event_type(&self) -> &'static str {
        match self {
            OrganizationEvent::Registered { .. } => "OrganizationRegistered",
            OrganizationEvent::DetailsUpdated { .. } => "OrganizationDetailsUpdated",
            OrganizationEvent::OnboardingChanged { .. } => "OrganizationOnboardingChanged",
            OrganizationEvent::ServiceAdded(_) => "OrganizationServiceAdded",
            OrganizationEvent::ServiceUpdated(_) => "OrganizationServiceUpdated",
            OrganizationEvent::ServiceRemoved(_) => "OrganizationServiceRemoved",
            OrganizationEvent::AgreementSigned { .. } => "OrganizationAgreementSigned",
            OrganizationEvent::AgreementEnded { .. } => "OrganizationAgreementEnded",
        }
    }
}

fn details(name: &str, contacts: &Contacts) -> Result<(), DomainError> {
    text("name", name, 1, 200)?;
    contacts.validate()
}

/// Decide what a command does to an organisation (`None`: not registered).
pub fn decide(
    state: Option<&Organization>,
    command: OrganizationCommand,
) -> Result<Vec<OrganizationEvent>, DomainError> {
    use OrganizationCommand as C;
    use OrganizationEvent as E;
    let Some(org) = state else {
        return match command {
            C::Register {
                id,
                name,
                kind,
                ownership,
                contacts,
            } => {
                details(&name, &contacts)?;
                Ok(vec![E::Registered {
                    id,
                    name,
                    kind,
                    ownership,
                    contacts,
                }])
            }
            _ => Err(DomainError::NotFound("organization")),
        };
    };
    let event = match command {
        C::Register { .. } => return Err(DomainError::AlreadyExists("organization")),
        C::UpdateDetails {
            name,
            kind,
            ownership,
            contacts,
        } => {
            details(&name, &contacts)?;
            E::DetailsUpdated {
                name,
                kind,
                ownership,
                contacts,
            }
        }
        C::ChangeOnboarding(to) => {
            if !transition(org.status, to) {
                return Err(DomainError::NotAllowed {
                    action: "make that onboarding change",
                    status: org.status.as_str(),
                });
            }
            E::OnboardingChanged {
                from: org.status,
                to,
            }
        }
        C::AddService(service) => {
            if org.services.contains_key(&service.id) {
                return Err(DomainError::AlreadyExists("service"));
            }
            let service = service.normalized();
            service.validate()?;
            E::ServiceAdded(service)
        }
        C::UpdateService(service) => {
            if !org.services.contains_key(&service.id) {
                return Err(DomainError::NotFound("service"));
            }
            let service = service.normalized();
            service.validate()?;
            E::ServiceUpdated(service)
        }
        C::RemoveService(id) => {
            if !org.services.contains_key(&id) {
                return Err(DomainError::NotFound("service"));
            }
            E::ServiceRemoved(id)
        }
        C::SignAgreement(agreement) => {
            let replaces = org.agreement.as_ref().map(|a| a.id);
            if replaces == Some(agreement.id) {
                return Err(DomainError::AlreadyExists("agreement"));
            }
            agreement.validate()?;
            E::AgreementSigned {
                agreement,
                replaces,
            }
        }
        C::EndAgreement { on } => {
            let Some(current) = &org.agreement else {
                return Err(DomainError::NotFound("agreement"));
            };
            E::AgreementEnded {
                agreement: current.id,
                on,
            }
        }
    };
    Ok(vec![event])
}

/// Apply an event. Events are facts: one the rules would not have produced
/// leaves the state as it was (it cannot come from `decide`).
pub fn evolve(state: Option<Organization>, event: &OrganizationEvent) -> Option<Organization> {
    use OrganizationEvent as E;
    match (state, event) {
        (
            None,
            E::Registered {
                id,
                name,
                kind,
                ownership,
                contacts,
            },
        ) => Some(Organization {
            id: *id,
            name: name.clone(),
            kind: *kind,
            ownership: *ownership,
            contacts: contacts.clone(),
            status: OnboardingStatus::Invited,
            services: BTreeMap::new(),
            agreement: None,
        }),
        (None, _) => None,
        (Some(mut org), e) => {
            match e {
                E::Registered { .. } => {}
                E::DetailsUpdated {
                    name,
                    kind,
                    ownership,
                    contacts,
                } => {
                    org.name = name.clone();
                    org.kind = *kind;
                    org.ownership = *ownership;
                    org.contacts = contacts.clone();
                }
                E::OnboardingChanged { from, to } => {
                    if *from == org.status && transition(org.status, *to) {
                        org.status = *to;
                    }
                }
                E::ServiceAdded(service) => {
                    org.services
                        .entry(service.id)
                        .or_insert_with(|| service.clone());
                }
                E::ServiceUpdated(service) => {
                    if let Some(s) = org.services.get_mut(&service.id) {
                        *s = service.clone();
                    }
                }
                E::ServiceRemoved(id) => {
                    org.services.remove(id);
                }
                E::AgreementSigned { agreement, .. } => {
                    org.agreement = Some(agreement.clone());
                }
                E::AgreementEnded { agreement, .. } => {
                    if org.agreement.as_ref().map(|a| a.id) == Some(*agreement) {
                        org.agreement = None;
                    }
                }
            }
            Some(org)
        }
    }
}

fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn hh_mm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// Public part of `OrganizationRegistered` and `OrganizationDetailsUpdated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DetailsPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// Its name.
    pub name: String,
    /// What kind it is.
    pub kind: OrganizationKind,
    /// Public or private.
    pub ownership: Ownership,
    /// How to reach its office.
    pub contacts: Contacts,
}

/// Public part of `OrganizationOnboardingChanged`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OnboardingChangedPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// From.
    pub from: OnboardingStatus,
    /// To.
    pub to: OnboardingStatus,
}

/// One opening period on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimeRangePayload {
    /// Opens at, `HH:MM`.
    pub open: String,
    /// Closes at, `HH:MM` (not included).
    pub close: String,
}

/// Weekly opening hours on the wire: each weekday's periods, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WeeklyHoursPayload {
    /// Monday.
    pub monday: Vec<TimeRangePayload>,
    /// Tuesday.
    pub tuesday: Vec<TimeRangePayload>,
    /// Wednesday.
    pub wednesday: Vec<TimeRangePayload>,
    /// Thursday.
    pub thursday: Vec<TimeRangePayload>,
    /// Friday.
    pub friday: Vec<TimeRangePayload>,
    /// Saturday.
    pub saturday: Vec<TimeRangePayload>,
    /// Sunday.
    pub sunday: Vec<TimeRangePayload>,
}

impl From<&WeeklyHours> for WeeklyHoursPayload {
    fn from(h: &WeeklyHours) -> Self {
        let day = |d: Weekday| {
            h.on(d)
                .iter()
                .map(|r| TimeRangePayload {
                    open: hh_mm(r.open),
                    close: hh_mm(r.close),
                })
                .collect()
        };
        let [
            monday,
            tuesday,
            wednesday,
            thursday,
            friday,
            saturday,
            sunday,
        ] = WEEKDAYS.map(day);
        Self {
            monday,
            tuesday,
            wednesday,
            thursday,
            friday,
            saturday,
            sunday,
        }
    }
}

/// Public part of `OrganizationServiceAdded` and `OrganizationServiceUpdated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServicePayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// The service.
    pub service_id: ServiceId,
    /// Its name.
    pub name: String,
    /// The need categories it answers.
    pub needs: Vec<NeedCode>,
    /// Its languages (ISO 639-1).
    pub languages: Vec<String>,
    /// Whether interpretation is offered.
    pub interpretation: bool,
    /// Who may use it, in words.
    pub eligibility: String,
    /// Where it is given.
    pub location: String,
    /// Weekly opening hours.
    pub hours: WeeklyHoursPayload,
    /// Dates it is closed, `YYYY-MM-DD`, in order.
    pub closed_on: Vec<String>,
}

/// Public part of `OrganizationServiceRemoved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceRemovedPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// The service.
    pub service_id: ServiceId,
}

/// Public part of `OrganizationAgreementSigned`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgreementSignedPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The agreement it replaces, if any.
    pub replaces: Option<AgreementId>,
    /// Signed on, `YYYY-MM-DD`.
    pub signed_on: String,
    /// First day it applies, `YYYY-MM-DD`.
    pub valid_from: String,
    /// Last day it applies (included), `YYYY-MM-DD`.
    pub valid_to: String,
    /// Working days to acknowledge a referral.
    pub acknowledge_within: u8,
    /// Working days to first contact the person.
    pub first_contact_within: u8,
    /// The card fields the provider may see.
    pub visible_fields: Vec<CardField>,
}

/// Public part of `OrganizationAgreementEnded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgreementEndedPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The day it ended, `YYYY-MM-DD`.
    pub on: String,
}

/// Stands for the personal part in the schemas: organisation events have
/// none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NoPersonal {}

/// An organisation event with the organisation it belongs to, ready for
/// storage.
pub struct Stored {
    /// The event.
    pub event: OrganizationEvent,
    /// The organisation it belongs to.
    pub organization: OrganizationId,
}

impl DomainEvent for Stored {
    fn into_parts(self) -> EventParts {
        use OrganizationEvent as E;
        let organization_id = self.organization;
        let event_type = self.event.event_type();
        let service = |s: Service| ServicePayload {
            organization_id,
            service_id: s.id,
            hours: WeeklyHoursPayload::from(&s.hours),
            closed_on: s.closed_on.iter().copied().map(iso_date).collect(),
            name: s.name,
            needs: s.needs,
            languages: s.languages,
            interpretation: s.interpretation,
            eligibility: s.eligibility,
            location: s.location,
        };
        let payload = match self.event {
            E::Registered {
                name,
                kind,
                ownership,
                contacts,
                ..
            }
            | E::DetailsUpdated {
                name,
                kind,
                ownership,
                contacts,
            } => part(DetailsPayload {
                organization_id,
                name,
                kind,
                ownership,
                contacts,
            }),
            E::OnboardingChanged { from, to } => part(OnboardingChangedPayload {
                organization_id,
                from,
                to,
            }),
            E::ServiceAdded(s) | E::ServiceUpdated(s) => part(service(s)),
            E::ServiceRemoved(service_id) => part(ServiceRemovedPayload {
                organization_id,
                service_id,
            }),
            E::AgreementSigned {
                agreement: a,
                replaces,
            } => part(AgreementSignedPayload {
                organization_id,
                agreement_id: a.id,
                replaces,
                signed_on: iso_date(a.signed_on),
                valid_from: iso_date(a.valid_from),
                valid_to: iso_date(a.valid_to),
                acknowledge_within: a.acknowledge_within,
                first_contact_within: a.first_contact_within,
                visible_fields: a.visible_fields.into_iter().collect(),
            }),
            E::AgreementEnded { agreement, on } => part(AgreementEndedPayload {
                organization_id,
                agreement_id: agreement,
                on: iso_date(on),
            }),
        };
        EventParts {
            event_type,
            schema_version: 1,
            payload,
            // Organisation data is not personal.
            personal: None,
            // Routed to the organisation itself.
            concerns: Some(organization_id),
        }
    }
}

#[cfg(test)]
mod tests;
