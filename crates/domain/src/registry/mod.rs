//! The registry of professionals (albo dei mediatori, interpreti e
//! avvocati): one stream per professional — their roles, sectors,
//! languages (for interpreters, each paired with Italian) and how well,
//! modes, areas served, admission date, bar registration for lawyers,
//! weekly availability, absences, and whether they take activations. The
//! desk manages the entry; the professional keeps their own availability.
//!
//! A professional's name and contacts are personal: sealed under a key of
//! their own (the store's per-person key, named by the professional's id),
//! so a professional who leaves can be erased like anyone else.
//!
//! Pure `decide`/`evolve`; the statuses and their transitions are here.

pub mod stored;

use crate::activation::ranking::{Registered, RegistryStatus};
use crate::activation::{Mode, ProfessionalRole, Sector, check_language};
use crate::case::Proficiency;
use crate::error::DomainError;
use crate::ids::ProfessionalId;
use crate::organization::WeeklyHours;
use std::collections::BTreeSet;
use time::Date;

/// The stream kind of a professional.
pub const STREAM_KIND: &str = "professional";

/// What the registry says a professional does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Mediator, interpreter, lawyer (one or more).
    pub roles: BTreeSet<ProfessionalRole>,
    /// Their sectors.
    pub sectors: BTreeSet<Sector>,
    /// Languages besides Italian, and how well.
    pub languages: Vec<(String, Proficiency)>,
    /// How they work.
    pub modes: BTreeSet<Mode>,
    /// Comuni or areas they serve.
    pub areas: Vec<String>,
    /// When they were admitted to the registry.
    pub admitted_on: Date,
    /// For a lawyer: their registration with the bar (ordine degli avvocati).
    pub bar_registration: Option<String>,
}

/// Who the professional is and how to reach them (personal: sealed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    /// Their name.
    pub name: String,
    /// Phone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
}

/// A professional as their events left them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Professional {
    /// Their entry.
    pub id: ProfessionalId,
    /// What they do.
    pub profile: Profile,
    /// When they are usually available (Potenza's local time).
    pub availability: WeeklyHours,
    /// Days away (from, to, both included).
    pub absences: Vec<(Date, Date)>,
    /// Active, suspended, left.
    pub status: RegistryStatus,
}

impl Professional {
    /// What the ranking of an activation needs of them.
    pub fn registered(&self) -> Registered {
        Registered {
            id: self.id,
            status: self.status,
            roles: self.profile.roles.clone(),
            sectors: self.profile.sectors.clone(),
            languages: self.profile.languages.clone(),
            modes: self.profile.modes.clone(),
            availability: self.availability.clone(),
            absences: self.absences.clone(),
        }
    }
}

/// What may be asked of the registry about a professional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfessionalCommand {
    /// Admit them.
    Register {
        /// Their entry's id.
        id: ProfessionalId,
        /// What they do.
        profile: Profile,
        /// Who they are.
        contact: Contact,
    },
    /// Change what they do (and, if given, who they are).
    UpdateProfile {
        /// The new profile.
        profile: Profile,
        /// New contact details, if they changed.
        contact: Option<Contact>,
    },
    /// Replace their weekly availability.
    SetAvailability(WeeklyHours),
    /// They will be away.
    AddAbsence {
        /// From (included).
        from: Date,
        /// To (included).
        to: Date,
    },
    /// Suspend, reinstate, or record that they left.
    SetStatus(RegistryStatus),
}

/// What happened to a professional's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfessionalEvent {
    /// Admitted.
    Registered {
        /// Their entry's id.
        id: ProfessionalId,
        /// What they do.
        profile: Profile,
        /// Who they are (empty when read back to decide).
        contact: Contact,
    },
    /// Profile changed.
    ProfileUpdated {
        /// The new profile.
        profile: Profile,
        /// New contact details, if they changed.
        contact: Option<Contact>,
    },
    /// Availability replaced.
    AvailabilitySet(WeeklyHours),
    /// An absence.
    AbsenceAdded {
        /// From.
        from: Date,
        /// To.
        to: Date,
    },
    /// Status changed.
    StatusChanged(RegistryStatus),
}

fn invalid(field: &'static str, message: &'static str) -> DomainError {
    DomainError::Invalid { field, message }
}

/// Check a profile: something of each, languages other than Italian and
/// each once, a lawyer's bar registration.
pub fn check_profile(p: &Profile) -> Result<(), DomainError> {
    if p.roles.is_empty() {
        return Err(invalid("roles", "at least one role"));
    }
    if p.sectors.is_empty() {
        return Err(invalid("sectors", "at least one sector"));
    }
    if p.modes.is_empty() {
        return Err(invalid("modes", "at least one mode"));
    }
    if p.languages.is_empty() {
        return Err(invalid(
            "languages",
            "at least one language besides Italian",
        ));
    }
    let mut seen = BTreeSet::new();
    for (code, _) in &p.languages {
        check_language(code)
            .map_err(|_| invalid("languages", "ISO 639-1 codes, two lowercase letters"))?;
        if code == "it" {
            return Err(invalid(
                "languages",
                "Italian is the other side of every pair: list the other languages",
            ));
        }
        if !seen.insert(code) {
            return Err(invalid("languages", "each language once"));
        }
    }
    let bar = p.bar_registration.as_deref().map(str::trim);
    if p.roles.contains(&ProfessionalRole::Lawyer) && bar.is_none_or(str::is_empty) {
        return Err(invalid(
            "bar_registration",
            "a lawyer's bar registration is required",
        ));
    }
    if p.areas.len() > 50 || p.areas.iter().any(|a| a.trim().is_empty() || a.len() > 200) {
        return Err(invalid("areas", "at most 50 areas of 1 to 200 characters"));
    }
    Ok(())
}

fn check_contact(c: &Contact) -> Result<(), DomainError> {
    if c.name.trim().is_empty() || c.name.chars().count() > 200 {
        return Err(invalid("name", "must be 1 to 200 characters"));
    }
    Ok(())
}

fn status_name(s: RegistryStatus) -> &'static str {
    match s {
        RegistryStatus::Active => "active",
        RegistryStatus::Suspended => "suspended",
        RegistryStatus::Left => "left",
    }
}

/// Decide what a command does (`None`: not registered yet).
pub fn decide(
    state: Option<&Professional>,
    command: ProfessionalCommand,
) -> Result<Vec<ProfessionalEvent>, DomainError> {
    use ProfessionalCommand as C;
    use ProfessionalEvent as E;
    let Some(p) = state else {
        return match command {
            C::Register {
                id,
                profile,
                contact,
            } => {
                check_profile(&profile)?;
                check_contact(&contact)?;
                Ok(vec![E::Registered {
                    id,
                    profile,
                    contact,
                }])
            }
            _ => Err(DomainError::NotFound("professional")),
        };
    };
    if p.status == RegistryStatus::Left {
        return Err(DomainError::NotAllowed {
            action: "change the entry",
            status: "left",
        });
    }
    Ok(vec![match command {
        C::Register { .. } => return Err(DomainError::AlreadyExists("professional")),
        C::UpdateProfile { profile, contact } => {
            check_profile(&profile)?;
            if let Some(c) = &contact {
                check_contact(c)?;
            }
            E::ProfileUpdated { profile, contact }
        }
        C::SetAvailability(hours) => {
            hours.validate()?;
            E::AvailabilitySet(hours)
        }
        C::AddAbsence { from, to } => {
            if to < from {
                return Err(invalid("to", "must not be before from"));
            }
            E::AbsenceAdded { from, to }
        }
        C::SetStatus(s) if s == p.status => {
            return Err(DomainError::NotAllowed {
                action: "set the status it has",
                status: status_name(s),
            });
        }
        C::SetStatus(s) => E::StatusChanged(s),
    }])
}

/// Apply an event.
pub fn evolve(state: Option<Professional>, event: &ProfessionalEvent) -> Option<Professional> {
    use ProfessionalEvent as E;
    match (state, event) {
        (None, E::Registered { id, profile, .. }) => Some(Professional {
            id: *id,
            profile: profile.clone(),
            availability: WeeklyHours::new(),
            absences: Vec::new(),
            status: RegistryStatus::Active,
        }),
        (None, _) => None,
        (Some(mut p), e) => {
            match e {
                E::Registered { .. } => {}
                E::ProfileUpdated { profile, .. } => p.profile = profile.clone(),
                E::AvailabilitySet(h) => p.availability = h.clone(),
                E::AbsenceAdded { from, to } => p.absences.push((*from, *to)),
                E::StatusChanged(s) => p.status = *s,
            }
            Some(p)
        }
    }
}

#[cfg(test)]
mod tests;
