//! The document-row read models — `cases`, `needs`, `referrals`,
//! `organizations`, `bottleneck_cells`, `professionals`, `activations` —
//! against a realistic history written through the
//! domain's own `decide`/`evolve`/`parts` and the real store:
//!
//! - the whole log as one set-wise batch, the log in small batches, one
//!   event at a time and a blue/green rebuild all give the same rows, and
//!   those rows say what happened;
//! - a version gap, a repeat, a stream without its first event and a
//!   malformed payload are refused, and leave the table as it was;
//! - no row holds the person's names, contacts, documents or any note, nor
//!   a professional's name or contacts, nor an activation's texts about a
//!   person, although the log holds them (sealed).

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sportello_domain::activation::ranking::RegistryStatus;
use sportello_domain::activation::{
    ActivationCommand, Mode, ProfessionalRole, Request, Sector, Status as ActivationStatus,
    Urgency as ActivationUrgency,
};
use sportello_domain::aggregate::{
    ActivationAggregate, Aggregate, CaseAggregate, OrganizationAggregate, ProfessionalAggregate,
    ReferralAggregate,
};
use sportello_domain::calendar::WorkingCalendar;
use sportello_domain::case::lifecycle::{CaseCommand, DeskOutcome};
use sportello_domain::case::{
    Channel, IdentityDocument, LanguageSkill, PersonContacts, PersonIdentity, PersonName,
    PersonTakenInCharge, Proficiency, Sex, Vulnerability,
};
use sportello_domain::ids::{ActivationId, AgreementId, ProfessionalId};
use sportello_domain::organization::{
    Agreement, CardField, Contacts, OnboardingStatus, OrganizationCommand, OrganizationKind,
    Ownership, Service, WeeklyHours,
};
use sportello_domain::referral::{
    self, DeclineReason, FailReason, Outcome, ReferralCommand, ReferralStatus,
};
use sportello_domain::registry::{Contact, ProfessionalCommand, Profile};
use sportello_domain::taxonomy::{NeedCode, Urgency};
use sportello_domain::{
    AccountId, Metadata, NeedId, NetworkId, OrganizationId, PersonId, ReferralId, ServiceId,
    StreamId,
};
use sportello_projections::{
    ActivationRow, CaseRow, NeedRow, OrganizationRow, ProfessionalRow, ReferralRow,
};
use sportello_store::projection::{ApplyError, Projection, rebuild};
use sportello_store::read::{count_after, read_log};
use sportello_store::{
    AppendRequest, EventStore, ExpectedVersion, Keyring, LogCursor, MasterKey, NewEvent, Personal,
    RecordedEvent,
};
use sportello_testkit::TestDb;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};
use time::macros::{date, datetime, time};
use time::{Duration, OffsetDateTime, Weekday};
use uuid::Uuid;

/// The row models under test: projection name and key column.
const MODELS: [(&str, &str); 7] = [
    ("cases", "person_id"),
    ("needs", "need_id"),
    ("referrals", "referral_id"),
    ("organizations", "organization_id"),
    ("bottleneck_cells", "cell_id"),
    ("professionals", "professional_id"),
    ("activations", "activation_id"),
];

/// Personal data put in the personal parts of the history: distinctive
/// enough that finding one anywhere in a row can only mean a leak. The
/// last ones are the professionals' names and contacts (sealed under each
/// professional's own key) and the texts of the activations for a person
/// (sealed under the person's key).
const PERSONAL: [&str; 28] = [
    "Zainab Quetzalcoatl-Ombrellino",
    "Zizi Ombrellino",
    "1987-04-12",
    "+39 333 765 4321",
    "zainab.ombrellino@example.net",
    "Vicolo Segreto 13",
    "YA9988776",
    "Oleksandr Pappagallo-Xilofono",
    "UA5544332",
    "NOTA-VISITA notte in stazione",
    "NOTA-BISOGNO cerca lavoro da cuoco",
    "NOTA-RISPOSTA indirizzata al patronato",
    "NOTA-INVIO contattare dopo le 17",
    "NOTA-ESITO assunta a tempo determinato",
    "MOTIVO-RIFIUTO datore di lavoro parente del referente",
    "MOTIVO-FALLIMENTO numero di telefono inesistente",
    "NOTA-USCITA dorme al dormitorio San Rocco",
    "Demo Farida Xantippe-Lumaca",
    "farida.xantippe@example.org",
    "+39 320 909 1111",
    "Demo Bogdan Quarzo-Vetraio",
    "bogdan.quarzo@example.org",
    "Demo Ifeoma Zampognaro",
    "ifeoma.zampognaro@example.org",
    "LUOGO-ATTIVAZIONE ambulatorio STP stanza 4, con la figlia",
    "LUOGO-COLLOQUIO consultorio, ingresso laterale",
    "ESITO-ATTIVAZIONE referto spiegato, teme per il permesso",
    "MOTIVO-ANNULLO la persona e' ricoverata",
];

/// Moments of the activations the assertions check (each event of an
/// activation is stamped with its command's `now`, as the HTTP layer and
/// the scheduler stamp them).
const A1_ACCEPTED: OffsetDateTime = datetime!(2026-03-03 10:45 UTC);
const A1_TAKES_PLACE: OffsetDateTime = datetime!(2026-03-05 10:00 UTC);
const A1_DELIVERED: OffsetDateTime = datetime!(2026-03-05 11:30 UTC);
const A2_REQUESTED: OffsetDateTime = datetime!(2026-03-03 09:30 UTC);
/// A scheduler tick two minutes after A2's 24 h deadline.
const A2_MISSED: OffsetDateTime = datetime!(2026-03-04 09:32 UTC);
const A3_CANCELLED: OffsetDateTime = datetime!(2026-03-03 12:05 UTC);
const A4_ACCEPTED: OffsetDateTime = datetime!(2026-03-03 14:00 UTC);
const A4_TAKES_PLACE: OffsetDateTime = datetime!(2026-03-04 16:00 UTC);

// ------------------------------------------------------------ the history

/// One stream of an aggregate as the writer sees it.
struct Stream<A: Aggregate> {
    id: StreamId,
    state: Option<A::State>,
    version: i64,
}

impl<A: Aggregate> Stream<A> {
    fn new(id: Uuid) -> Self {
        Stream {
            id: StreamId(id),
            state: None,
            version: 0,
        }
    }

    fn get(&self) -> &A::State {
        self.state.as_ref().expect("the stream exists")
    }
}

/// Writes commands through the domain and the store, each event a little
/// later than the one before.
struct Writer {
    store: EventStore,
    network: NetworkId,
    account: AccountId,
    clock: OffsetDateTime,
    appended: i64,
}

/// How much later than the one before each event is stamped.
const STEP: Duration = Duration::new(7 * 60, 123_456_789);

impl Writer {
    /// Stamp the next event at `moment` (later than the last one), and
    /// return it: the `now` of a command that happens then.
    fn at(&mut self, moment: OffsetDateTime) -> OffsetDateTime {
        assert!(moment > self.clock, "{moment} is after the last event");
        self.clock = moment - STEP;
        moment
    }

    /// Decide `commands` in turn on `stream` (as the HTTP layer does) and
    /// append their events, each with its own time; `by` is the acting
    /// organisation.
    async fn run<A: Aggregate>(
        &mut self,
        stream: &mut Stream<A>,
        by: OrganizationId,
        commands: Vec<A::Command>,
    ) {
        let mut after = stream.state.take();
        let mut events = Vec::new();
        for command in commands {
            let decided = A::decide(after.as_ref(), command)
                .unwrap_or_else(|e| panic!("{} refused a command: {e}", A::STREAM_KIND));
            for e in &decided {
                after = A::evolve(after, e);
            }
            events.extend(decided);
        }
        let after = after.expect("a state after the commands");
        let events: Vec<NewEvent> = events
            .into_iter()
            .map(|e| NewEvent::from(A::parts(&after, e)))
            .collect();
        let metadata: Vec<Metadata> = events
            .iter()
            .map(|_| {
                // Minutes apart, with nanoseconds the database must round.
                self.clock += STEP;
                Metadata::for_command(self.account, by, self.clock)
            })
            .collect();
        let n = events.len() as i64;
        let request = AppendRequest {
            network: self.network,
            stream_id: stream.id,
            stream_kind: A::STREAM_KIND,
            expected: if stream.version == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(stream.version)
            },
            events,
            metadata: metadata[0].clone(),
            idempotency: None,
        };
        let result = self
            .store
            .append_history(&request, &metadata)
            .await
            .expect("append");
        assert_eq!(result.last_version, stream.version + n);
        stream.version = result.last_version;
        stream.state = Some(after);
        self.appended += n;
    }

    /// Send a referral planned as the desk plans it (deadlines from the
    /// agreement), with a note.
    #[expect(clippy::too_many_arguments, reason = "each input is a separate fact")]
    async fn send(
        &mut self,
        desk: OrganizationId,
        case: &Stream<CaseAggregate>,
        need: NeedId,
        provider: &Stream<OrganizationAggregate>,
        service: ServiceId,
        redirected_from: Option<ReferralId>,
        note: Option<&str>,
    ) -> Stream<ReferralAggregate> {
        let id = ReferralId::new();
        let mut new = referral::plan(
            id,
            case.get(),
            need,
            provider.get(),
            service,
            redirected_from,
            &WorkingCalendar::for_potenza(),
            self.clock,
        )
        .expect("the referral is allowed");
        new.note = note.map(str::to_owned);
        let mut r = Stream::new(id.0);
        self.run(&mut r, desk, vec![ReferralCommand::Send(new)])
            .await;
        r
    }
}

/// What the history holds, for the checks.
struct History {
    /// The store it was written with (its keyring opens the personal parts).
    store: EventStore,
    network: NetworkId,
    total: i64,
    desk: OrganizationId,
    caritas: OrganizationId,
    cgil: OrganizationId,
    asp: OrganizationId,
    invited: OrganizationId,
    zainab: PersonId,
    oleksandr: PersonId,
    amina: PersonId,
    kwame: PersonId,
    /// Zainab's need the desk answered itself.
    answered: NeedId,
    /// `[completed, redirected, redirected, cancelled, failed, sent,
    /// acknowledged, accepted, declined, in progress]`.
    referrals: [ReferralId; 10],
    /// The registry: `[mediator and interpreter (an absence), interpreter,
    /// lawyer (suspended)]`.
    professionals: [ProfessionalId; 3],
    /// `[declined, then accepted and delivered; two offers expired, then
    /// its deadline missed; cancelled for Kwame; delivered for Zainab]`.
    activations: [ActivationId; 4],
}

fn code(c: &str) -> NeedCode {
    NeedCode::parse(c).unwrap()
}

fn service(name: &str, needs: &[&str], languages: &[&str]) -> Service {
    Service {
        id: ServiceId::new(),
        name: name.into(),
        needs: needs.iter().map(|c| code(c)).collect(),
        languages: languages.iter().map(|l| (*l).to_owned()).collect(),
        interpretation: languages.len() > 2,
        eligibility: "Cittadini stranieri residenti o domiciliati".into(),
        location: "Via Pretoria 1, Potenza".into(),
        hours: WeeklyHours::new()
            .with(Weekday::Thursday, time!(15:00), time!(17:30))
            .with(Weekday::Monday, time!(9:00), time!(12:30))
            .with(Weekday::Thursday, time!(9:00), time!(12:30)),
        closed_on: vec![date!(2026 - 08 - 14)],
    }
}

fn agreement(ack: u8) -> Agreement {
    Agreement {
        id: AgreementId::new(),
        signed_on: date!(2025 - 12 - 15),
        valid_from: date!(2026 - 01 - 01),
        valid_to: date!(2026 - 12 - 31),
        acknowledge_within: ack,
        first_contact_within: ack + 3,
        visible_fields: [CardField::Names, CardField::Languages, CardField::Needs]
            .into_iter()
            .collect(),
    }
}

fn profile(
    roles: &[ProfessionalRole],
    sectors: &[Sector],
    languages: &[(&str, Proficiency)],
    modes: &[Mode],
    bar_registration: Option<&str>,
) -> Profile {
    Profile {
        roles: roles.iter().copied().collect(),
        sectors: sectors.iter().copied().collect(),
        languages: languages
            .iter()
            .map(|(l, p)| ((*l).to_owned(), *p))
            .collect(),
        modes: modes.iter().copied().collect(),
        areas: vec!["Potenza".into(), "Melfi".into()],
        admitted_on: date!(2025 - 11 - 03),
        bar_registration: bar_registration.map(str::to_owned),
    }
}

/// An activation asked for, with no person or referral named.
fn request(
    id: ActivationId,
    (role, sector, language, mode): (ProfessionalRole, Sector, &str, Mode),
    needed_at: OffsetDateTime,
    place: &str,
    urgency: ActivationUrgency,
    requested_by: OrganizationId,
    requested_at: OffsetDateTime,
) -> Request {
    Request {
        id,
        role,
        sector,
        language: language.into(),
        mode,
        needed_at,
        place: place.into(),
        urgency,
        person: None,
        referral: None,
        requested_by,
        requested_at,
    }
}

fn register(id: OrganizationId, name: &str, kind: OrganizationKind) -> OrganizationCommand {
    OrganizationCommand::Register {
        id,
        name: name.into(),
        kind,
        ownership: Ownership::Private,
        contacts: Contacts {
            phone: Some("+39 0971 411111".into()),
            email: Some("segreteria@example.org".into()),
            address: Some("Corso Garibaldi 10, Potenza".into()),
        },
    }
}

fn onboard() -> Vec<OrganizationCommand> {
    vec![
        OrganizationCommand::ChangeOnboarding(OnboardingStatus::Onboarding),
        OrganizationCommand::ChangeOnboarding(OnboardingStatus::Active),
    ]
}

fn take_in_charge(
    person: PersonId,
    desk: OrganizationId,
    channel: Channel,
    operator: Option<AccountId>,
    identity: PersonIdentity,
) -> Vec<CaseCommand> {
    // The information notice at intake: consent to referrals anywhere.
    let consent = sportello_domain::case::consent::ConsentTerms {
        consent_id: sportello_domain::ConsentId::new(),
        purpose: sportello_domain::case::consent::ConsentPurpose::Referral,
        organizations: sportello_domain::case::consent::OrganizationScope::Network,
        data: CardField::ALL.into_iter().collect(),
        given_on: time::macros::date!(2025 - 01 - 10),
        notice_language: "it".into(),
        recorded_by: operator.unwrap_or_default(),
    };
    vec![
        CaseCommand::TakeInCharge(PersonTakenInCharge {
            person_id: person,
            desk,
            channel,
            operator,
            identity,
        }),
        CaseCommand::RecordConsent(consent),
    ]
}

fn named(names: &[&str]) -> PersonIdentity {
    PersonIdentity {
        names: names
            .iter()
            .map(|n| PersonName {
                kind: "as_used".into(),
                text: (*n).into(),
            })
            .collect(),
        ..PersonIdentity::default()
    }
}

fn need(id: NeedId, c: &str, urgency: Urgency, note: Option<&str>) -> CaseCommand {
    CaseCommand::RecordNeed {
        need: id,
        code: code(c),
        urgency,
        note: note.map(str::to_owned),
    }
}

/// Five organisations, four people, their needs, visits and answers, and
/// ten referrals through every status, one chain redirected twice — the
/// streams interleaved in the log as a working day interleaves them.
async fn write_history(pool: &PgPool) -> History {
    let network = NetworkId::new();
    let mut w = Writer {
        store: EventStore::new(pool.clone(), Keyring::new(MasterKey::generate())),
        network,
        account: AccountId::new(),
        clock: datetime!(2026-03-02 08:00 UTC),
        appended: 0,
    };

    // The network: a desk and four providers.
    let desk_id = OrganizationId::new();
    let mut desk = Stream::<OrganizationAggregate>::new(desk_id.0);
    let mut commands = vec![register(
        desk_id,
        "Sportello Immigrazione Potenza",
        OrganizationKind::Desk,
    )];
    commands.extend(onboard());
    w.run(&mut desk, desk_id, commands).await;

    let caritas_id = OrganizationId::new();
    let mut caritas = Stream::<OrganizationAggregate>::new(caritas_id.0);
    let jobs = service(
        "Orientamento al lavoro",
        &["job_search", "vocational_training"],
        &["it", "en", "fr"],
    );
    let legal = service(
        "Sportello legale",
        &["legal_advice", "labour_dispute"],
        &["it", "ar"],
    );
    let (jobs_id, legal_id) = (jobs.id, legal.id);
    let mut commands = vec![
        register(caritas_id, "Caritas Diocesana", OrganizationKind::NonProfit),
        OrganizationCommand::AddService(jobs),
        OrganizationCommand::AddService(legal),
        OrganizationCommand::SignAgreement(agreement(2)),
    ];
    commands.extend(onboard());
    w.run(&mut caritas, desk_id, commands).await;

    let cgil_id = OrganizationId::new();
    let mut cgil = Stream::<OrganizationAggregate>::new(cgil_id.0);
    let union = service(
        "Vertenze",
        &["labour_dispute", "workplace_safety"],
        &["it", "uk", "ru"],
    );
    let union_id = union.id;
    w.run(
        &mut cgil,
        desk_id,
        vec![register(
            cgil_id,
            "CGIL Potenza",
            OrganizationKind::TradeUnion,
        )],
    )
    .await;
    w.run(
        &mut cgil,
        cgil_id,
        vec![
            OrganizationCommand::AddService(union),
            OrganizationCommand::SignAgreement(agreement(1)),
        ],
    )
    .await;
    w.run(&mut cgil, desk_id, onboard()).await;

    let asp_id = OrganizationId::new();
    let mut asp = Stream::<OrganizationAggregate>::new(asp_id.0);
    let health = service(
        "Ambulatorio STP",
        &["health_ssn_registration", "health_stp_code"],
        &["it"],
    );
    let extra = service("Consultorio", &["health_maternal_child"], &["it"]);
    let (health_id, extra_id) = (health.id, extra.id);
    let mut commands = vec![
        register(asp_id, "ASP Basilicata", OrganizationKind::HealthAuthority),
        OrganizationCommand::AddService(health.clone()),
        OrganizationCommand::AddService(extra),
        OrganizationCommand::SignAgreement(agreement(3)),
    ];
    commands.extend(onboard());
    commands.extend([
        OrganizationCommand::ChangeOnboarding(OnboardingStatus::Suspended),
        OrganizationCommand::SignAgreement(agreement(2)),
        OrganizationCommand::ChangeOnboarding(OnboardingStatus::Active),
        OrganizationCommand::UpdateService(Service {
            languages: vec!["it".into(), "en".into(), "ar".into()],
            interpretation: true,
            ..health
        }),
        OrganizationCommand::RemoveService(extra_id),
    ]);
    w.run(&mut asp, desk_id, commands).await;

    let invited_id = OrganizationId::new();
    let mut invited = Stream::<OrganizationAggregate>::new(invited_id.0);
    w.run(
        &mut invited,
        desk_id,
        vec![
            register(invited_id, "Associazione Ponti", OrganizationKind::Other),
            OrganizationCommand::SignAgreement(agreement(5)),
            OrganizationCommand::EndAgreement {
                on: date!(2026 - 02 - 28),
            },
        ],
    )
    .await;

    // Zainab: a phone visit, two needs, one answered at the desk, the
    // other referred and completed.
    let zainab = PersonId::new();
    let mut case_z = Stream::<CaseAggregate>::new(zainab.0);
    let identity = PersonIdentity {
        names: vec![
            PersonName {
                kind: "as_in_document".into(),
                text: PERSONAL[0].into(),
            },
            PersonName {
                kind: "alias".into(),
                text: PERSONAL[1].into(),
            },
        ],
        birth_date: Some(PERSONAL[2].into()),
        sex: Some(Sex::Female),
        country_of_birth: Some("SD".into()),
        citizenships: vec!["SD".into()],
        languages: vec![LanguageSkill {
            code: "ar".into(),
            proficiency: Proficiency::Native,
        }],
        contacts: PersonContacts {
            phone: Some(PERSONAL[3].into()),
            email: Some(PERSONAL[4].into()),
            address: Some(PERSONAL[5].into()),
        },
        documents: vec![IdentityDocument {
            kind: "passport".into(),
            number: PERSONAL[6].into(),
            issuing_country: Some("SD".into()),
            expires_on: Some("2029-01-31".into()),
        }],
        vulnerabilities: vec![Vulnerability::SingleParent],
    };
    w.run(
        &mut case_z,
        desk_id,
        take_in_charge(zainab, desk_id, Channel::Desk, Some(w.account), identity),
    )
    .await;
    let (z_job, z_legal) = (NeedId::new(), NeedId::new());
    w.run(
        &mut case_z,
        desk_id,
        vec![
            CaseCommand::RecordVisit {
                channel: Channel::Phone,
                note: Some(PERSONAL[9].into()),
            },
            need(z_job, "job_search", Urgency::Normal, Some(PERSONAL[10])),
            need(z_legal, "legal_advice", Urgency::High, None),
        ],
    )
    .await;

    // Oleksandr: a labour dispute, declined, redirected, failed,
    // redirected again, cancelled.
    let oleksandr = PersonId::new();
    let mut case_o = Stream::<CaseAggregate>::new(oleksandr.0);
    let identity = PersonIdentity {
        documents: vec![IdentityDocument {
            kind: "residence_permit".into(),
            number: PERSONAL[8].into(),
            issuing_country: Some("IT".into()),
            expires_on: None,
        }],
        ..named(&[PERSONAL[7]])
    };
    w.run(
        &mut case_o,
        desk_id,
        take_in_charge(oleksandr, desk_id, Channel::Outreach, None, identity),
    )
    .await;
    let o_dispute = NeedId::new();
    w.run(
        &mut case_o,
        desk_id,
        vec![need(o_dispute, "labour_dispute", Urgency::High, None)],
    )
    .await;

    let mut r1 = w
        .send(
            desk_id,
            &case_z,
            z_job,
            &caritas,
            jobs_id,
            None,
            Some(PERSONAL[12]),
        )
        .await;
    w.run(
        &mut case_z,
        desk_id,
        vec![CaseCommand::ResolveNeed {
            need: z_legal,
            outcome: DeskOutcome::Orientation,
            note: Some(PERSONAL[11].into()),
        }],
    )
    .await;
    let mut r2 = w
        .send(desk_id, &case_o, o_dispute, &cgil, union_id, None, None)
        .await;
    w.run(&mut r1, caritas_id, vec![ReferralCommand::Acknowledge])
        .await;
    w.run(
        &mut r2,
        cgil_id,
        vec![ReferralCommand::Decline {
            reason: DeclineReason::Other,
            text: Some(PERSONAL[14].into()),
        }],
    )
    .await;
    let r3_id = ReferralId::new();
    w.run(
        &mut r2,
        desk_id,
        vec![ReferralCommand::Redirect {
            to: r3_id,
            organization: caritas_id,
            service: legal_id,
        }],
    )
    .await;
    let mut r3 = {
        let new = referral::plan(
            r3_id,
            case_o.get(),
            o_dispute,
            caritas.get(),
            legal_id,
            Some(ReferralId(r2.id.0)),
            &WorkingCalendar::for_potenza(),
            w.clock,
        )
        .unwrap();
        let mut r = Stream::<ReferralAggregate>::new(r3_id.0);
        w.run(&mut r, desk_id, vec![ReferralCommand::Send(new)])
            .await;
        r
    };
    w.run(&mut r1, caritas_id, vec![ReferralCommand::Accept])
        .await;
    w.run(&mut r3, caritas_id, vec![ReferralCommand::Accept])
        .await;
    w.run(&mut r1, caritas_id, vec![ReferralCommand::Start])
        .await;

    // Amina: health needs; one referral fails, one is only sent; her case
    // closes, reopens on a new visit, and closes again.
    let amina = PersonId::new();
    let mut case_a = Stream::<CaseAggregate>::new(amina.0);
    w.run(
        &mut case_a,
        desk_id,
        take_in_charge(
            amina,
            desk_id,
            Channel::Phone,
            Some(w.account),
            named(&["Amina"]),
        ),
    )
    .await;
    let (a_ssn, a_stp) = (NeedId::new(), NeedId::new());
    w.run(
        &mut case_a,
        desk_id,
        vec![
            CaseCommand::RecordVisit {
                channel: Channel::Desk,
                note: None,
            },
            need(a_ssn, "health_ssn_registration", Urgency::Immediate, None),
            need(a_stp, "health_stp_code", Urgency::Low, None),
        ],
    )
    .await;
    let mut r5 = w
        .send(desk_id, &case_a, a_ssn, &asp, health_id, None, None)
        .await;
    let r6 = w
        .send(desk_id, &case_a, a_stp, &asp, health_id, None, None)
        .await;
    w.run(
        &mut r3,
        caritas_id,
        vec![ReferralCommand::Fail {
            reason: FailReason::PersonUnreachable,
            text: Some(PERSONAL[15].into()),
        }],
    )
    .await;
    let r4_id = ReferralId::new();
    w.run(
        &mut r3,
        desk_id,
        vec![ReferralCommand::Redirect {
            to: r4_id,
            organization: cgil_id,
            service: union_id,
        }],
    )
    .await;
    let mut r4 = {
        let new = referral::plan(
            r4_id,
            case_o.get(),
            o_dispute,
            cgil.get(),
            union_id,
            Some(r3_id),
            &WorkingCalendar::for_potenza(),
            w.clock,
        )
        .unwrap();
        let mut r = Stream::<ReferralAggregate>::new(r4_id.0);
        w.run(&mut r, desk_id, vec![ReferralCommand::Send(new)])
            .await;
        r
    };
    w.run(
        &mut r5,
        asp_id,
        vec![ReferralCommand::Accept, ReferralCommand::Start],
    )
    .await;
    w.run(
        &mut r1,
        caritas_id,
        vec![ReferralCommand::Complete {
            outcome: Outcome::NeedMet,
            note: Some(PERSONAL[13].into()),
        }],
    )
    .await;
    w.run(&mut r4, cgil_id, vec![ReferralCommand::Acknowledge])
        .await;
    w.run(&mut r4, desk_id, vec![ReferralCommand::Cancel]).await;
    w.run(&mut case_o, desk_id, vec![CaseCommand::Close]).await;
    w.run(
        &mut r5,
        asp_id,
        vec![ReferralCommand::Fail {
            reason: FailReason::Other,
            text: Some("la persona si è trasferita".into()),
        }],
    )
    .await;
    w.run(&mut case_a, desk_id, vec![CaseCommand::Close]).await;
    w.run(
        &mut case_a,
        desk_id,
        vec![
            CaseCommand::RecordVisit {
                channel: Channel::Outreach,
                note: Some(PERSONAL[16].into()),
            },
            CaseCommand::Reopen,
        ],
    )
    .await;

    // Kwame: four needs, referrals left acknowledged, accepted, declined
    // and in progress.
    let kwame = PersonId::new();
    let mut case_k = Stream::<CaseAggregate>::new(kwame.0);
    w.run(
        &mut case_k,
        desk_id,
        take_in_charge(kwame, desk_id, Channel::Desk, None, named(&["Kwame"])),
    )
    .await;
    let k = [NeedId::new(), NeedId::new(), NeedId::new(), NeedId::new()];
    w.run(
        &mut case_k,
        desk_id,
        vec![
            need(k[0], "vocational_training", Urgency::Low, None),
            need(k[1], "job_search", Urgency::Normal, None),
            need(k[2], "labour_dispute", Urgency::Normal, None),
            need(k[3], "legal_advice", Urgency::High, None),
        ],
    )
    .await;
    let mut r7 = w
        .send(desk_id, &case_k, k[0], &caritas, jobs_id, None, None)
        .await;
    let mut r8 = w
        .send(desk_id, &case_k, k[1], &caritas, jobs_id, None, None)
        .await;
    let mut r9 = w
        .send(desk_id, &case_k, k[2], &cgil, union_id, None, None)
        .await;
    let mut r10 = w
        .send(desk_id, &case_k, k[3], &caritas, legal_id, None, None)
        .await;
    w.run(&mut r7, caritas_id, vec![ReferralCommand::Acknowledge])
        .await;
    w.run(
        &mut r9,
        cgil_id,
        vec![ReferralCommand::Decline {
            reason: DeclineReason::NoCapacity,
            text: None,
        }],
    )
    .await;
    w.run(&mut r8, caritas_id, vec![ReferralCommand::Accept])
        .await;
    w.run(
        &mut r10,
        caritas_id,
        vec![ReferralCommand::Accept, ReferralCommand::Start],
    )
    .await;
    w.run(
        &mut cgil,
        cgil_id,
        vec![OrganizationCommand::UpdateDetails {
            name: "CGIL Camera del Lavoro di Potenza".into(),
            kind: OrganizationKind::TradeUnion,
            ownership: Ownership::Private,
            contacts: Contacts::default(),
        }],
    )
    .await;
    w.run(
        &mut case_k,
        desk_id,
        vec![CaseCommand::RecordVisit {
            channel: Channel::Phone,
            note: None,
        }],
    )
    .await;

    let ids = |r: &Stream<ReferralAggregate>| ReferralId(r.id.0);

    // The registry: three professionals, the desk manages their entries.
    let p_med = ProfessionalId::new();
    let p_int = ProfessionalId::new();
    let p_law = ProfessionalId::new();
    let mut med = Stream::<ProfessionalAggregate>::new(p_med.0);
    let mut int = Stream::<ProfessionalAggregate>::new(p_int.0);
    let mut law = Stream::<ProfessionalAggregate>::new(p_law.0);
    w.run(
        &mut med,
        desk_id,
        vec![
            ProfessionalCommand::Register {
                id: p_med,
                profile: profile(
                    &[ProfessionalRole::Mediator, ProfessionalRole::Interpreter],
                    &[Sector::Health, Sector::Legal],
                    &[("ar", Proficiency::Native), ("fr", Proficiency::Fluent)],
                    &[Mode::InPerson, Mode::Phone],
                    None,
                ),
                contact: Contact {
                    name: PERSONAL[17].into(),
                    email: Some(PERSONAL[18].into()),
                    phone: Some(PERSONAL[19].into()),
                },
            },
            ProfessionalCommand::SetAvailability(
                WeeklyHours::new()
                    .with(Weekday::Monday, time!(9:00), time!(13:00))
                    .with(Weekday::Thursday, time!(14:00), time!(18:00)),
            ),
        ],
    )
    .await;
    w.run(
        &mut int,
        desk_id,
        vec![ProfessionalCommand::Register {
            id: p_int,
            profile: profile(
                &[ProfessionalRole::Interpreter],
                &[Sector::Labour, Sector::Legal],
                &[
                    ("uk", Proficiency::Native),
                    ("ru", Proficiency::Fluent),
                    ("fr", Proficiency::Basic),
                ],
                &[Mode::Phone, Mode::Video],
                None,
            ),
            contact: Contact {
                name: PERSONAL[20].into(),
                email: Some(PERSONAL[21].into()),
                phone: None,
            },
        }],
    )
    .await;
    w.run(
        &mut law,
        desk_id,
        vec![ProfessionalCommand::Register {
            id: p_law,
            profile: profile(
                &[ProfessionalRole::Lawyer],
                &[Sector::Legal],
                &[("en", Proficiency::Fluent)],
                &[Mode::InPerson, Mode::Video],
                Some("Ordine degli Avvocati di Potenza n. 0000"),
            ),
            contact: Contact {
                name: PERSONAL[22].into(),
                email: Some(PERSONAL[23].into()),
                phone: None,
            },
        }],
    )
    .await;
    // The interpreter keeps their own availability.
    w.run(
        &mut int,
        desk_id,
        vec![ProfessionalCommand::SetAvailability(
            WeeklyHours::new().with(Weekday::Tuesday, time!(14:00), time!(18:00)),
        )],
    )
    .await;
    // Four activations, interleaved through the next days; every command
    // that carries a moment is stamped with it, as the HTTP layer and the
    // scheduler stamp them.
    let ids4 = [(); 4].map(|()| ActivationId::new());
    let [mut a1, mut a2, mut a3, mut a4] = ids4.map(|a| Stream::<ActivationAggregate>::new(a.0));
    type C = ActivationCommand;
    let offer = |to, now: OffsetDateTime| C::Offer {
        to,
        expires_at: now + Duration::hours(2),
        now,
    };

    // A1: Caritas asks for a French interpreter by phone for its own
    // appointment (no person named: its texts are public).
    let now = w.at(datetime!(2026-03-03 09:00 UTC));
    let command = C::Request(request(
        ids4[0],
        (
            ProfessionalRole::Interpreter,
            Sector::Labour,
            "fr",
            Mode::Phone,
        ),
        A1_TAKES_PLACE,
        "Demo: sportello lavoro Caritas, telefono dell'ufficio",
        ActivationUrgency::Hours48,
        caritas_id,
        now,
    ));
    w.run(&mut a1, caritas_id, vec![command]).await;
    // A2: the desk asks for a French-speaking mediator within 24 h.
    let now = w.at(A2_REQUESTED);
    let command = C::Request(request(
        ids4[1],
        (
            ProfessionalRole::Mediator,
            Sector::Health,
            "fr",
            Mode::InPerson,
        ),
        datetime!(2026-03-04 15:00 UTC),
        "Demo: Sportello Immigrazione, via Pretoria 1",
        ActivationUrgency::Hours24,
        desk_id,
        now,
    ));
    w.run(&mut a2, desk_id, vec![command]).await;
    let now = w.at(datetime!(2026-03-03 09:35 UTC));
    w.run(&mut a1, desk_id, vec![offer(p_int, now)]).await;
    let now = w.at(datetime!(2026-03-03 09:40 UTC));
    w.run(&mut a2, desk_id, vec![offer(p_int, now)]).await;
    // A3: Caritas asks for a lawyer by video for Kwame's legal referral.
    let now = w.at(datetime!(2026-03-03 10:00 UTC));
    let command = C::Request(Request {
        person: Some(kwame),
        referral: Some(ids(&r10)),
        ..request(
            ids4[2],
            (ProfessionalRole::Lawyer, Sector::Legal, "en", Mode::Video),
            datetime!(2026-03-06 11:00 UTC),
            "Demo: videochiamata dallo sportello legale",
            ActivationUrgency::Hours48,
            caritas_id,
            now,
        )
    });
    w.run(&mut a3, caritas_id, vec![command]).await;
    let now = w.at(datetime!(2026-03-03 10:10 UTC));
    w.run(&mut a1, desk_id, vec![C::Decline { by: p_int, now }])
        .await;
    let now = w.at(datetime!(2026-03-03 10:15 UTC));
    w.run(&mut a1, desk_id, vec![offer(p_med, now)]).await;
    let now = w.at(datetime!(2026-03-03 10:20 UTC));
    w.run(&mut a3, desk_id, vec![offer(p_law, now)]).await;
    let now = w.at(A1_ACCEPTED);
    w.run(&mut a1, desk_id, vec![C::Accept { by: p_med, now }])
        .await;
    // A2's first offer runs out at 11:40 exactly.
    let now = w.at(datetime!(2026-03-03 11:40 UTC));
    w.run(&mut a2, desk_id, vec![C::ExpireOffer { now }]).await;
    let now = w.at(datetime!(2026-03-03 11:45 UTC));
    w.run(&mut a2, desk_id, vec![offer(p_med, now)]).await;
    // A4: the desk asks for a mediator for Zainab; the place is about her.
    let now = w.at(datetime!(2026-03-03 12:00 UTC));
    let command = C::Request(Request {
        person: Some(zainab),
        ..request(
            ids4[3],
            (
                ProfessionalRole::Mediator,
                Sector::Health,
                "ar",
                Mode::InPerson,
            ),
            A4_TAKES_PLACE,
            PERSONAL[24],
            ActivationUrgency::Hours48,
            desk_id,
            now,
        )
    });
    w.run(&mut a4, desk_id, vec![command]).await;
    // A3 is called off while the lawyer is still deciding.
    w.at(A3_CANCELLED);
    w.run(
        &mut a3,
        caritas_id,
        vec![C::Cancel {
            reason: PERSONAL[27].into(),
        }],
    )
    .await;
    w.at(datetime!(2026-03-03 12:10 UTC));
    w.run(
        &mut law,
        desk_id,
        vec![ProfessionalCommand::SetStatus(RegistryStatus::Suspended)],
    )
    .await;
    w.at(datetime!(2026-03-03 13:00 UTC));
    w.run(
        &mut a1,
        caritas_id,
        vec![C::Schedule {
            at: A1_TAKES_PLACE,
            place: "Demo: chiamata al numero dello sportello lavoro".into(),
        }],
    )
    .await;
    let now = w.at(datetime!(2026-03-03 13:05 UTC));
    w.run(&mut a4, desk_id, vec![offer(p_med, now)]).await;
    // A2's second offer runs out unanswered too (seen five minutes late).
    let now = w.at(datetime!(2026-03-03 13:50 UTC));
    w.run(&mut a2, desk_id, vec![C::ExpireOffer { now }]).await;
    let now = w.at(A4_ACCEPTED);
    w.run(&mut a4, desk_id, vec![C::Accept { by: p_med, now }])
        .await;
    w.at(datetime!(2026-03-03 14:10 UTC));
    w.run(
        &mut a4,
        desk_id,
        vec![C::Schedule {
            at: A4_TAKES_PLACE,
            place: PERSONAL[25].into(),
        }],
    )
    .await;
    // Nobody confirmed A2 within 24 h: the scheduler records it.
    let now = w.at(A2_MISSED);
    w.run(&mut a2, desk_id, vec![C::MissDeadline { now }]).await;
    w.at(datetime!(2026-03-04 10:00 UTC));
    w.run(
        &mut med,
        desk_id,
        vec![ProfessionalCommand::AddAbsence {
            from: date!(2026 - 03 - 10),
            to: date!(2026 - 03 - 14),
        }],
    )
    .await;
    w.at(datetime!(2026-03-04 17:30 UTC));
    w.run(
        &mut a4,
        desk_id,
        vec![C::Deliver {
            quarter_hours: 8,
            outcome: PERSONAL[26].into(),
        }],
    )
    .await;
    w.at(A1_DELIVERED);
    w.run(
        &mut a1,
        caritas_id,
        vec![C::Deliver {
            quarter_hours: 6,
            outcome: "Demo: colloquio di orientamento svolto".into(),
        }],
    )
    .await;

    History {
        store: w.store,
        network,
        total: w.appended,
        desk: desk_id,
        caritas: caritas_id,
        cgil: cgil_id,
        asp: asp_id,
        invited: invited_id,
        zainab,
        oleksandr,
        amina,
        kwame,
        answered: z_legal,
        referrals: [
            ids(&r1),
            ids(&r2),
            r3_id,
            r4_id,
            ids(&r5),
            ids(&r6),
            ids(&r7),
            ids(&r8),
            ids(&r9),
            ids(&r10),
        ],
        professionals: [p_med, p_int, p_law],
        activations: ids4,
    }
}

// ---------------------------------------------------------------- helpers

/// Log readers see an event once every older transaction in the cluster
/// has ended (other tests hold some open): wait until all `n` are
/// readable, then read the whole log in order.
async fn whole_log(pool: &PgPool, n: i64) -> Vec<RecordedEvent> {
    let deadline = Instant::now() + StdDuration::from_secs(30);
    while count_after(pool, LogCursor::START).await.unwrap() != n {
        assert!(Instant::now() < deadline, "timed out waiting for the log");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let log = read_log(pool, LogCursor::START, 100_000, None)
        .await
        .unwrap();
    assert_eq!(log.len() as i64, n);
    log
}

fn projection(name: &str) -> Arc<dyn Projection> {
    sportello_projections::all()
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("{name} is one of all()"))
}

async fn create(pool: &PgPool, p: &dyn Projection, table: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(p.create_table(table)))
        .execute(pool)
        .await
        .unwrap();
}

/// Every row of `table` as JSON, in key order.
async fn dump(pool: &PgPool, table: &str, key: &str) -> Vec<Value> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(t) FROM {table} t ORDER BY {key}"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Every row of a read model (its view), typed.
async fn rows<T: DeserializeOwned>(pool: &PgPool, name: &str, key: &str) -> Vec<T> {
    dump(pool, name, key)
        .await
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

async fn apply_batch(
    pool: &PgPool,
    p: &dyn Projection,
    table: &str,
    events: &[RecordedEvent],
) -> Result<(), ApplyError> {
    let mut tx = pool.begin().await.unwrap();
    p.apply_batch(&mut tx, table, events).await?;
    tx.commit().await.unwrap();
    Ok(())
}

fn refused(r: Result<(), ApplyError>, what: &str) -> String {
    match r {
        Err(ApplyError::Invalid(message)) => message,
        Err(other) => panic!("{what}: refused as a database error: {other}"),
        Ok(()) => panic!("{what}: accepted"),
    }
}

fn channels(c: &CaseRow) -> Vec<&str> {
    c.visits.iter().map(|v| v.channel.as_str()).collect()
}

fn events_of(log: &[RecordedEvent], stream: Uuid) -> Vec<RecordedEvent> {
    log.iter()
        .filter(|e| e.stream_id.0 == stream)
        .cloned()
        .collect()
}

// ------------------------------------------------------------------ tests

/// The whole log in one set-wise batch, in batches of three, one event at
/// a time, and through a blue/green rebuild in batches of five: the same
/// rows, byte for byte, in every read model — and the rows say what
/// happened.
#[tokio::test]
async fn one_batch_one_at_a_time_and_rebuild_give_the_same_rows() {
    let db = TestDb::new().await;
    let h = write_history(&db.pool).await;
    let log = whole_log(&db.pool, h.total).await;
    assert!(log.len() >= 70, "a realistic history: {} events", log.len());

    for (name, key) in MODELS {
        let p = projection(name);
        let (whole, threes, single) = (
            format!("t_{name}_whole"),
            format!("t_{name}_threes"),
            format!("t_{name}_single"),
        );
        for t in [&whole, &threes, &single] {
            create(&db.pool, &*p, t).await;
        }
        apply_batch(&db.pool, &*p, &whole, &log).await.unwrap();
        for chunk in log.chunks(3) {
            apply_batch(&db.pool, &*p, &threes, chunk).await.unwrap();
        }
        let mut conn = db.pool.acquire().await.unwrap();
        for e in &log {
            p.apply(&mut conn, &single, e).await.unwrap();
        }
        drop(conn);
        let applied = rebuild(&db.pool, &*p, 5, &|_, _| {}).await.unwrap();
        assert_eq!(applied as i64, h.total, "{name}: the rebuild read the log");

        let expected = dump(&db.pool, &single, key).await;
        assert!(!expected.is_empty(), "{name} has rows");
        assert_eq!(
            dump(&db.pool, &whole, key).await,
            expected,
            "{name}: one batch"
        );
        assert_eq!(
            dump(&db.pool, &threes, key).await,
            expected,
            "{name}: threes"
        );
        assert_eq!(dump(&db.pool, name, key).await, expected, "{name}: rebuilt");
    }

    // The rows say what happened.
    let cases: Vec<CaseRow> = rows(&db.pool, "cases", "person_id").await;
    let case = |p: PersonId| cases.iter().find(|c| c.person_id == p.0).unwrap();
    assert_eq!(cases.len(), 4);
    assert!(
        cases
            .iter()
            .all(|c| c.network_id == h.network.0 && c.desk_id == h.desk.0)
    );
    assert_eq!(channels(case(h.zainab)), ["desk", "phone"]);
    assert_eq!(channels(case(h.amina)), ["phone", "desk", "outreach"]);
    assert_eq!(channels(case(h.kwame)), ["desk", "phone"]);
    assert_eq!(case(h.oleksandr).status, "closed");
    assert!(case(h.oleksandr).closed_at.is_some());
    assert_eq!(case(h.oleksandr).operator_id, None);
    assert!(case(h.zainab).operator_id.is_some());
    // Amina's case closed, then reopened by the visit.
    assert_eq!(case(h.amina).status, "open");
    assert_eq!(case(h.amina).closed_at, None);
    for c in &cases {
        assert!(c.opened_at <= c.updated_at);
        assert!(c.visits.windows(2).all(|w| w[0].at < w[1].at));
    }

    let needs: Vec<NeedRow> = rows(&db.pool, "needs", "need_id").await;
    assert_eq!(needs.len(), 9);
    let per_person = |p: PersonId| needs.iter().filter(|n| n.person_id == p.0).count();
    assert_eq!(
        [h.zainab, h.oleksandr, h.amina, h.kwame].map(per_person),
        [2, 1, 2, 4]
    );
    let answered = needs.iter().find(|n| n.need_id == h.answered.0).unwrap();
    assert_eq!(answered.status, "resolved");
    assert_eq!(answered.outcome.as_deref(), Some("orientation"));
    assert_eq!(
        (answered.code.as_str(), answered.area.as_str()),
        ("legal_advice", "legal_assistance")
    );
    assert!(answered.resolved_at > Some(answered.recorded_at));
    assert_eq!(needs.iter().filter(|n| n.status == "open").count(), 8);
    let urgencies: BTreeSet<&str> = needs.iter().map(|n| n.urgency.as_str()).collect();
    assert_eq!(
        urgencies,
        BTreeSet::from(["high", "immediate", "low", "normal"])
    );

    let referrals: Vec<ReferralRow> = rows(&db.pool, "referrals", "referral_id").await;
    assert_eq!(referrals.len(), 10);
    let r = |i: usize| {
        referrals
            .iter()
            .find(|r| r.referral_id == h.referrals[i].0)
            .unwrap()
    };
    use ReferralStatus as S;
    let statuses = [
        S::Completed,
        S::Redirected,
        S::Redirected,
        S::Cancelled,
        S::Failed,
        S::Sent,
        S::Acknowledged,
        S::Accepted,
        S::Declined,
        S::InProgress,
    ];
    for (i, status) in statuses.into_iter().enumerate() {
        assert_eq!(r(i).status, status, "referral {i}");
        assert_eq!(r(i).history.last().unwrap().status, status, "referral {i}");
        assert_eq!(r(i).history[0].status, S::Sent, "referral {i}");
        assert_eq!(r(i).version, r(i).history.len() as i64, "referral {i}");
        assert!(r(i).acknowledge_by.is_some() && r(i).first_contact_by.is_some());
    }
    let path: Vec<S> = r(0).history.iter().map(|c| c.status).collect();
    assert_eq!(
        path,
        [
            S::Sent,
            S::Acknowledged,
            S::Accepted,
            S::InProgress,
            S::Completed
        ]
    );
    assert_eq!(r(0).outcome.as_deref(), Some("need_met"));
    assert!(r(0).closed_at.is_some() && r(0).started_at.is_some());
    assert_eq!(r(0).history[0].by_organization, h.desk.0);
    assert_eq!(r(0).history[1].by_organization, h.caritas.0);
    // The chain: declined by the union, redirected to Caritas, failed
    // there, redirected back to the union, cancelled.
    assert_eq!(r(1).decline_reason.as_deref(), Some("other"));
    assert_eq!(
        (r(1).redirected_from, r(1).redirected_to),
        (None, Some(h.referrals[2].0))
    );
    assert_eq!(
        (r(2).redirected_from, r(2).redirected_to),
        (Some(h.referrals[1].0), Some(h.referrals[3].0))
    );
    assert_eq!(
        (r(3).redirected_from, r(3).redirected_to),
        (Some(h.referrals[2].0), None)
    );
    assert_eq!(r(2).fail_reason.as_deref(), Some("person_unreachable"));
    assert_eq!(
        [1, 2, 3].map(|i| r(i).organization_id),
        [h.cgil.0, h.caritas.0, h.cgil.0]
    );
    assert!([1, 2, 3].iter().all(|&i| r(i).need_id == r(1).need_id));
    assert_eq!(r(4).fail_reason.as_deref(), Some("other"));
    assert_eq!(r(8).decline_reason.as_deref(), Some("no_capacity"));
    assert_eq!(r(4).need_area, "health");

    let orgs: Vec<OrganizationRow> = rows(&db.pool, "organizations", "organization_id").await;
    assert_eq!(orgs.len(), 5);
    let org = |id: OrganizationId| orgs.iter().find(|o| o.organization_id == id.0).unwrap();
    assert_eq!(org(h.cgil).name, "CGIL Camera del Lavoro di Potenza");
    assert_eq!(org(h.cgil).details.name, org(h.cgil).name);
    assert_eq!(org(h.cgil).details.contacts, Contacts::default());
    assert_eq!(org(h.asp).status, "active");
    let asp = org(h.asp);
    assert_eq!(asp.services.len(), 1, "the consultorio was removed");
    assert_eq!(asp.services[0].languages, ["it", "en", "ar"]);
    assert!(asp.services[0].interpretation);
    let replaced = asp.agreement.as_ref().unwrap();
    assert!(
        replaced.replaces.is_some(),
        "the second agreement replaced the first"
    );
    assert_eq!(replaced.acknowledge_within, 2);
    assert_eq!(org(h.invited).status, "invited");
    assert_eq!(org(h.invited).agreement, None, "ended");
    assert_eq!(org(h.caritas).services.len(), 2);
    assert_eq!(
        org(h.caritas).services[0].hours.thursday.len(),
        2,
        "hours as the domain stored them"
    );
    assert_eq!(org(h.caritas).services[0].hours.thursday[0].open, "09:00");

    let pros: Vec<ProfessionalRow> = rows(&db.pool, "professionals", "professional_id").await;
    assert_eq!(pros.len(), 3);
    assert!(pros.iter().all(|p| p.network_id == h.network.0));
    let pro = |id: ProfessionalId| pros.iter().find(|p| p.professional_id == id.0).unwrap();
    let [p_med, p_int, p_law] = h.professionals;
    assert_eq!(
        [p_med, p_int, p_law].map(|p| pro(p).status),
        [
            RegistryStatus::Active,
            RegistryStatus::Active,
            RegistryStatus::Suspended
        ]
    );
    assert_eq!(
        [p_med, p_int, p_law].map(|p| pro(p).version),
        [3, 2, 2],
        "register, availability, absence; register, availability; register, suspension"
    );
    let med = pro(p_med);
    assert_eq!(med.absences.len(), 1);
    assert_eq!(
        (med.absences[0].from, med.absences[0].to),
        (date!(2026 - 03 - 10), date!(2026 - 03 - 14))
    );
    fn hours(ranges: &[sportello_domain::organization::TimeRangePayload]) -> Vec<(&str, &str)> {
        ranges
            .iter()
            .map(|r| (r.open.as_str(), r.close.as_str()))
            .collect()
    }
    assert_eq!(hours(&med.availability.monday), [("09:00", "13:00")]);
    assert_eq!(hours(&med.availability.thursday), [("14:00", "18:00")]);
    assert!(med.availability.tuesday.is_empty());
    let int = pro(p_int);
    assert!(int.absences.is_empty());
    assert_eq!(hours(&int.availability.tuesday), [("14:00", "18:00")]);
    assert!(int.availability.monday.is_empty() && int.availability.thursday.is_empty());
    let law = pro(p_law);
    assert_eq!(
        law.availability,
        sportello_domain::organization::WeeklyHoursPayload::from(&WeeklyHours::new()),
        "never set: the empty week"
    );
    assert!(law.absences.is_empty());
    assert_eq!(
        law.profile.bar_registration.as_deref(),
        Some("Ordine degli Avvocati di Potenza n. 0000")
    );
    assert_eq!(
        med.profile
            .languages
            .iter()
            .map(|l| l.code.as_str())
            .collect::<Vec<_>>(),
        ["ar", "fr"]
    );
    assert!(med.profile.roles.contains(&ProfessionalRole::Interpreter));
    // What the ranking reads of an entry.
    let ranked = med.registered().expect("the stored hours read");
    assert_eq!(
        ranked.absences,
        [(date!(2026 - 03 - 10), date!(2026 - 03 - 14))]
    );
    assert_eq!(law.registered().unwrap().status, RegistryStatus::Suspended);

    let acts: Vec<ActivationRow> = rows(&db.pool, "activations", "activation_id").await;
    assert_eq!(acts.len(), 4);
    assert!(acts.iter().all(|a| a.network_id == h.network.0));
    let act = |i: usize| {
        acts.iter()
            .find(|a| a.activation_id == h.activations[i].0)
            .unwrap()
    };
    use ActivationStatus as A;
    assert_eq!(
        [0, 1, 2, 3].map(|i| act(i).status),
        [A::Delivered, A::Waiting, A::Cancelled, A::Delivered]
    );
    assert_eq!([0, 1, 2, 3].map(|i| act(i).version), [7, 6, 3, 5]);
    assert_eq!(
        [0, 1, 2, 3].map(|i| (act(i).offers, act(i).declines, act(i).expiries)),
        [(2, 1, 0), (2, 0, 2), (1, 0, 0), (1, 0, 0)]
    );
    for i in 0..4 {
        let a = act(i);
        assert_eq!((a.offered_to, a.offer_expires_at), (None, None), "{i}");
        assert_eq!(
            a.deadline,
            a.requested_at + Duration::hours(if i == 1 { 24 } else { 48 }),
            "{i}"
        );
        assert!(a.requested_at <= a.updated_at, "{i}");
    }
    // A1: declined by the interpreter, accepted by the mediator, held by
    // phone, six quarter hours.
    let a1 = act(0);
    assert_eq!(a1.passed, [p_int.0]);
    assert_eq!(a1.confirmed, Some(p_med.0));
    assert_eq!(a1.confirmed_at, Some(A1_ACCEPTED));
    assert_eq!(a1.scheduled_for, Some(A1_TAKES_PLACE));
    assert_eq!(a1.delivered_at, Some(A1_DELIVERED));
    assert_eq!(a1.quarter_hours, Some(6));
    assert_eq!(a1.requested_by, h.caritas.0);
    assert_eq!((a1.person_id, a1.referral_id), (None, None));
    assert_eq!(
        (a1.role, a1.sector, a1.language.as_str(), a1.mode),
        (
            ProfessionalRole::Interpreter,
            Sector::Labour,
            "fr",
            Mode::Phone
        )
    );
    assert_eq!((a1.cancelled_at, a1.deadline_missed_at), (None, None));
    assert_eq!(a1.updated_at, A1_DELIVERED);
    // A2: two offers lapsed, in order, then the deadline passed.
    let a2 = act(1);
    assert_eq!(a2.passed, [p_int.0, p_med.0]);
    assert_eq!(a2.urgency, ActivationUrgency::Hours24);
    assert_eq!(a2.requested_at, A2_REQUESTED);
    assert_eq!(a2.deadline, A2_REQUESTED + Duration::hours(24));
    assert_eq!(a2.deadline_missed_at, Some(A2_MISSED));
    assert!(a2.deadline_missed_at > Some(a2.deadline));
    assert_eq!((a2.confirmed, a2.confirmed_at), (None, None));
    assert_eq!((a2.scheduled_for, a2.delivered_at), (None, None));
    assert_eq!((a2.quarter_hours, a2.cancelled_at), (None, None));
    assert_eq!(a2.updated_at, A2_MISSED);
    // A3: Kwame's, for his legal referral, called off during the offer.
    let a3 = act(2);
    assert_eq!(a3.cancelled_at, Some(A3_CANCELLED));
    assert_eq!(a3.person_id, Some(h.kwame.0));
    assert_eq!(a3.referral_id, Some(h.referrals[9].0));
    assert_eq!((a3.confirmed, a3.confirmed_at), (None, None));
    assert!(a3.passed.is_empty());
    assert_eq!(a3.deadline_missed_at, None);
    // A4: Zainab's, straight through.
    let a4 = act(3);
    assert_eq!(a4.person_id, Some(h.zainab.0));
    assert_eq!(a4.requested_by, h.desk.0);
    assert!(a4.passed.is_empty());
    assert_eq!(
        (a4.confirmed, a4.confirmed_at),
        (Some(p_med.0), Some(A4_ACCEPTED))
    );
    assert_eq!(a4.scheduled_for, Some(A4_TAKES_PLACE));
    assert_eq!(a4.quarter_hours, Some(8));
    assert!(a4.delivered_at > a4.scheduled_for);

    db.drop_db().await;
}

/// A stream whose versions do not follow — a gap, a repeat, a missing
/// first event — is refused, set-wise and one event at a time, and the
/// refused batch leaves nothing behind.
#[tokio::test]
async fn a_version_gap_or_repeat_is_refused() {
    let db = TestDb::new().await;
    let h = write_history(&db.pool).await;
    let log = whole_log(&db.pool, h.total).await;

    // One stream of each kind, with at least three events.
    for (name, key, stream) in [
        ("cases", "person_id", h.zainab.0),
        ("referrals", "referral_id", h.referrals[0].0),
        ("organizations", "organization_id", h.asp.0),
    ] {
        let p = projection(name);
        let events = events_of(&log, stream);
        assert!(events.len() >= 3, "{name}");
        assert!(events.iter().zip(1..).all(|(e, v)| e.version == v));

        // Version 2 missing: refused as a whole, nothing written.
        let gap = [events[0].clone(), events[2].clone()];
        let table = format!("t_{name}_gap");
        create(&db.pool, &*p, &table).await;
        let message = refused(apply_batch(&db.pool, &*p, &table, &gap).await, name);
        assert!(message.contains("does not follow"), "{message}");
        assert!(dump(&db.pool, &table, key).await.is_empty(), "{name}");

        // One at a time: the first applies, the gap is refused, the row
        // stays at version 1.
        let mut conn = db.pool.acquire().await.unwrap();
        p.apply(&mut conn, &table, &gap[0]).await.unwrap();
        let before = dump(&db.pool, &table, key).await;
        assert_eq!(before.len(), 1);
        assert_eq!(before[0]["version"], 1);
        let message = refused(p.apply(&mut conn, &table, &gap[1]).await, name);
        assert!(message.contains("does not follow"), "{message}");
        // A repeat of the event already applied.
        refused(p.apply(&mut conn, &table, &events[0]).await, name);
        // A batch that repeats an event in itself.
        let repeated = [events[1].clone(), events[1].clone()];
        refused(p.apply_batch(&mut conn, &table, &repeated).await, name);
        drop(conn);
        assert_eq!(dump(&db.pool, &table, key).await, before, "{name}");

        // A stream without its first event.
        let table = format!("t_{name}_headless");
        create(&db.pool, &*p, &table).await;
        refused(apply_batch(&db.pool, &*p, &table, &events[1..]).await, name);
        assert!(dump(&db.pool, &table, key).await.is_empty(), "{name}");
    }

    // Needs have no version of their own: a need resolved before it was
    // recorded, or recorded twice, is refused.
    let p = projection("needs");
    create(&db.pool, &*p, "t_needs_order").await;
    let about = |t: &str| {
        log.iter()
            .find(|e| e.event_type == t && e.payload["need_id"] == h.answered.to_string())
            .cloned()
            .unwrap()
    };
    let (recorded, resolved) = (about("NeedRecorded"), about("NeedResolved"));
    refused(
        apply_batch(
            &db.pool,
            &*p,
            "t_needs_order",
            &[resolved.clone(), recorded.clone()],
        )
        .await,
        "resolved first",
    );
    assert!(dump(&db.pool, "t_needs_order", "need_id").await.is_empty());
    refused(
        apply_batch(
            &db.pool,
            &*p,
            "t_needs_order",
            &[recorded.clone(), recorded.clone()],
        )
        .await,
        "recorded twice",
    );
    apply_batch(&db.pool, &*p, "t_needs_order", &[recorded, resolved])
        .await
        .unwrap();
    assert_eq!(dump(&db.pool, "t_needs_order", "need_id").await.len(), 1);

    db.drop_db().await;
}

/// An event of the right type whose payload does not read is refused
/// with `Invalid` — never stored half-read, never replaced by a default.
#[tokio::test]
async fn a_malformed_payload_is_refused() {
    let db = TestDb::new().await;
    let h = write_history(&db.pool).await;
    let log = whole_log(&db.pool, h.total).await;

    type Spoil = fn(&mut Value);
    let cases: [(&str, &str, &str, Spoil); 12] = [
        ("cases", "PersonTakenInCharge", "an empty payload", |p| {
            *p = json!({})
        }),
        ("cases", "PersonTakenInCharge", "an unknown channel", |p| {
            p["channel"] = json!("carrier_pigeon")
        }),
        ("cases", "VisitRecorded", "an unknown channel", |p| {
            p["channel"] = json!("telepathy")
        }),
        (
            "needs",
            "NeedRecorded",
            "a code outside the taxonomy",
            |p| p["code"] = json!("made_up_need"),
        ),
        ("needs", "NeedRecorded", "an unknown urgency", |p| {
            p["urgency"] = json!("whenever")
        }),
        ("needs", "NeedResolved", "an unknown outcome", |p| {
            p["outcome"] = json!("shrugged")
        }),
        ("referrals", "ReferralSent", "no need code", |p| {
            p.as_object_mut().unwrap().remove("need_code");
        }),
        ("referrals", "ReferralDeclined", "an unknown reason", |p| {
            p["reason"] = json!("because")
        }),
        (
            "referrals",
            "ReferralCompleted",
            "a number for an outcome",
            |p| p["outcome"] = json!(42),
        ),
        (
            "referrals",
            "ReferralRedirected",
            "a target that is no id",
            |p| p["to"] = json!("the usual place"),
        ),
        (
            "organizations",
            "OrganizationOnboardingChanged",
            "an unknown status",
            |p| p["to"] = json!("retired"),
        ),
        (
            "organizations",
            "OrganizationServiceAdded",
            "languages as a number",
            |p| p["languages"] = json!(7),
        ),
    ];
    for (i, (name, event_type, what, spoil)) in cases.into_iter().enumerate() {
        let p = projection(name);
        let key = MODELS.iter().find(|(n, _)| *n == name).unwrap().1;
        let at = log
            .iter()
            .position(|e| e.event_type == event_type)
            .unwrap_or_else(|| panic!("the history has a {event_type}"));
        let table = format!("t_{name}_spoilt_{i}");
        create(&db.pool, &*p, &table).await;
        // Everything before it applies; the event itself, as written,
        // would apply too.
        apply_batch(&db.pool, &*p, &table, &log[..at])
            .await
            .unwrap();
        let before = dump(&db.pool, &table, key).await;
        let mut bad = log[at].clone();
        spoil(&mut bad.payload);
        assert_ne!(bad.payload, log[at].payload);
        let message = refused(
            apply_batch(&db.pool, &*p, &table, std::slice::from_ref(&bad)).await,
            &format!("{event_type} with {what}"),
        );
        assert!(!message.is_empty());
        let mut conn = db.pool.acquire().await.unwrap();
        refused(
            p.apply(&mut conn, &table, &bad).await,
            &format!("{event_type} with {what}, alone"),
        );
        drop(conn);
        assert_eq!(
            dump(&db.pool, &table, key).await,
            before,
            "{event_type}: {what}"
        );
        apply_batch(&db.pool, &*p, &table, std::slice::from_ref(&log[at]))
            .await
            .unwrap_or_else(|e| panic!("{event_type} as written: {e}"));
    }
    db.drop_db().await;
}

/// Names, birth date, contacts, documents and every note are in the log
/// (sealed, and they open with the person's key), and in no row of any
/// read model.
#[tokio::test]
async fn rows_hold_no_personal_data() {
    let db = TestDb::new().await;
    let h = write_history(&db.pool).await;
    let log = whole_log(&db.pool, h.total).await;

    // The personal data did reach the log: not in the public payloads,
    // but in the sealed parts, which open with the history's keyring.
    let public =
        serde_json::to_string(&log.iter().map(|e| &e.payload).collect::<Vec<_>>()).unwrap();
    let sealed: Vec<RecordedEvent> = log
        .iter()
        .filter(|e| e.personal.is_some())
        .cloned()
        .collect();
    assert!(sealed.len() >= 10, "{} sealed parts", sealed.len());
    let opened: Vec<String> = h
        .store
        .open(sealed)
        .await
        .unwrap()
        .into_iter()
        .map(|e| match e.personal {
            Personal::Open(v) => v.to_string(),
            other => panic!("a personal part that does not open: {other:?}"),
        })
        .collect();
    let opened = opened.join("\n");
    for marker in PERSONAL {
        assert!(!public.contains(marker), "{marker:?} in a public payload");
        assert!(opened.contains(marker), "{marker:?} is in the log, sealed");
    }

    for (name, key) in MODELS {
        rebuild(&db.pool, &*projection(name), 10, &|_, _| {})
            .await
            .unwrap();
        let texts: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM {name} t ORDER BY {key}"
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert!(!texts.is_empty(), "{name} has rows");
        let all = texts.join("\n");
        // The query does see the rows' contents...
        assert!(all.contains(&h.network.to_string()), "{name}");
        // ...and none of the person's data.
        for marker in PERSONAL {
            assert!(!all.contains(marker), "{marker:?} in {name}");
            let fragment = marker.split_whitespace().next().unwrap();
            if fragment.len() > 6 {
                assert!(!all.contains(fragment), "{fragment:?} in {name}");
            }
        }
    }
    db.drop_db().await;
}

// ------------------------------------------------- events the rules never make
//
// Each of these once passed through a read model unnoticed. They drop their
// database before asserting, so a failure leaves nothing behind.

/// Apply the log before the first event of `event_type` to a fresh table
/// of `name`, and return that event.
async fn up_to(
    pool: &PgPool,
    log: &[RecordedEvent],
    name: &str,
    event_type: &str,
    table: &str,
) -> RecordedEvent {
    let p = projection(name);
    let at = log
        .iter()
        .position(|e| e.event_type == event_type)
        .unwrap_or_else(|| panic!("the history has a {event_type}"));
    create(pool, &*p, table).await;
    apply_batch(pool, &*p, table, &log[..at]).await.unwrap();
    log[at].clone()
}

/// `what`, if the projection accepted `event` rather than refusing it as
/// `Invalid`.
async fn accepted(
    pool: &PgPool,
    name: &str,
    table: &str,
    event: &RecordedEvent,
    what: String,
) -> Option<String> {
    match apply_batch(pool, &*projection(name), table, std::slice::from_ref(event)).await {
        Err(ApplyError::Invalid(_)) => None,
        Err(other) => Some(format!("{what}: refused as a database error ({other})")),
        Ok(()) => Some(what),
    }
}

/// `NeedRow::key` reads the need's id from the payload and, when it does
/// not parse, says the event touches no row: the batch skips it and the
/// need is silently lost (`cases` does not read that payload either).
#[tokio::test]
async fn a_need_event_without_a_readable_need_id_is_refused() {
    let db = TestDb::new().await;
    let h = write_history(&db.pool).await;
    let log = whole_log(&db.pool, h.total).await;
    let mut wrongly_accepted = Vec::new();
    for (i, event_type) in ["NeedRecorded", "NeedResolved"].into_iter().enumerate() {
        let table = format!("t_needs_unkeyed_{i}");
        let good = up_to(&db.pool, &log, "needs", event_type, &table).await;
        for spoil in [json!("not-a-uuid"), json!(17), Value::Null] {
            let mut bad = good.clone();
            bad.payload["need_id"] = spoil.clone();
            let what = format!("{event_type} with need_id {spoil}");
            wrongly_accepted.extend(accepted(&db.pool, "needs", &table, &bad, what).await);
        }
    }
    db.drop_db().await;
    assert!(
        wrongly_accepted.is_empty(),
        "accepted: {wrongly_accepted:#?}"
    );
}

/// `organizations` keeps the agreement's dates and the service's hours
/// and closing dates as the strings the payload carries: a date or a time
/// that does not read is stored as is, although the domain's own decoder
/// refuses the event.
#[tokio::test]
async fn malformed_dates_and_hours_of_an_organisation_are_refused() {
    let db = TestDb::new().await;
    let h = write_history(&db.pool).await;
    let log = whole_log(&db.pool, h.total).await;
    type Spoil = fn(&mut Value);
    let spoilt: [(&str, &str, Spoil); 4] = [
        ("OrganizationAgreementSigned", "valid_from", |p| {
            p["valid_from"] = json!("soon")
        }),
        ("OrganizationAgreementSigned", "valid_to", |p| {
            p["valid_to"] = json!("2026-02-30")
        }),
        ("OrganizationServiceAdded", "hours", |p| {
            p["hours"]["monday"][0]["open"] = json!("25:99")
        }),
        ("OrganizationServiceAdded", "closed_on", |p| {
            p["closed_on"] = json!(["someday"])
        }),
    ];
    let mut wrongly_accepted = Vec::new();
    for (i, (event_type, field, spoil)) in spoilt.into_iter().enumerate() {
        let table = format!("t_organizations_dates_{i}");
        let mut bad = up_to(&db.pool, &log, "organizations", event_type, &table).await;
        spoil(&mut bad.payload);
        assert!(
            sportello_domain::organization::decode(&bad.event_type, &bad.payload).is_err(),
            "the domain refuses {event_type} with a bad {field}"
        );
        let what = format!("{event_type} with a bad {field}");
        wrongly_accepted.extend(accepted(&db.pool, "organizations", &table, &bad, what).await);
    }
    db.drop_db().await;
    assert!(
        wrongly_accepted.is_empty(),
        "accepted: {wrongly_accepted:#?}"
    );
}

/// `needs` resolves the need named in the payload without checking that
/// the event is on that need's case: an event of one person's case can
/// change another person's need.
#[tokio::test]
async fn a_need_resolved_on_another_case_is_refused() {
    let db = TestDb::new().await;
    let h = write_history(&db.pool).await;
    let log = whole_log(&db.pool, h.total).await;
    let table = "t_needs_foreign";
    let mut moved = up_to(&db.pool, &log, "needs", "NeedResolved", table).await;
    assert_eq!(moved.stream_id.0, h.zainab.0);
    moved.stream_id = StreamId(h.kwame.0);
    let what = "Zainab's need resolved by an event of Kwame's case".to_owned();
    let wrongly_accepted = accepted(&db.pool, "needs", table, &moved, what).await;
    db.drop_db().await;
    assert_eq!(wrongly_accepted, None);
}

/// `activations` refuses what the lifecycle never makes: an acceptance by
/// a professional the activation is not offered to, a deadline recorded
/// as missed twice, or once it was confirmed — set-wise and one event at
/// a time, leaving the table as it was.
#[tokio::test]
async fn an_activation_answered_out_of_turn_or_missed_twice_is_refused() {
    let db = TestDb::new().await;
    let h = write_history(&db.pool).await;
    let log = whole_log(&db.pool, h.total).await;
    let p = projection("activations");
    let key = "activation_id";
    let [p_med, p_int, p_law] = h.professionals;

    // A1's acceptance by the mediator, its offer standing.
    let table = "t_activations_accepted";
    let accepted = up_to(&db.pool, &log, "activations", "ActivationAccepted", table).await;
    assert_eq!(accepted.stream_id.0, h.activations[0].0);
    assert_eq!(accepted.payload["professional_id"], json!(p_med.0));
    let before = dump(&db.pool, table, key).await;
    for (who, what) in [
        (p_int, "the interpreter who declined it"),
        (p_law, "a lawyer never offered it"),
        (ProfessionalId::new(), "someone outside the registry"),
    ] {
        let mut bad = accepted.clone();
        bad.payload["professional_id"] = json!(who.0);
        let message = refused(
            apply_batch(&db.pool, &*p, table, std::slice::from_ref(&bad)).await,
            &format!("accepted by {what}"),
        );
        assert!(message.contains("not offered"), "{message}");
        let mut conn = db.pool.acquire().await.unwrap();
        refused(
            p.apply(&mut conn, table, &bad).await,
            &format!("accepted by {what}, alone"),
        );
        drop(conn);
        assert_eq!(dump(&db.pool, table, key).await, before, "{what}");
    }
    // Accepted by the one offered, but after the offer ran out.
    let mut late = accepted.clone();
    late.payload["at"] = json!("2030-01-01T00:00:00Z");
    let message = refused(
        apply_batch(&db.pool, &*p, table, std::slice::from_ref(&late)).await,
        "accepted after the offer ran out",
    );
    assert!(message.contains("ran out"), "{message}");
    // Offered again to the interpreter who declined: the mediator declines
    // too, then an offer to the interpreter is refused.
    let declined = log
        .iter()
        .find(|e| e.stream_id == accepted.stream_id && e.event_type == "ActivationDeclined")
        .expect("A1 was declined");
    let first_offer = log
        .iter()
        .find(|e| e.stream_id == accepted.stream_id && e.event_type == "ActivationOffered")
        .expect("A1 was offered");
    let mut mediator_declines = declined.clone();
    mediator_declines.payload["professional_id"] = json!(p_med.0);
    mediator_declines.version = accepted.version;
    let mut again_to_interpreter = first_offer.clone();
    again_to_interpreter.version = accepted.version + 1;
    assert_eq!(
        again_to_interpreter.payload["professional_id"],
        json!(p_int.0)
    );
    let table_again = "t_activations_offered_again";
    create(&db.pool, &*p, table_again).await;
    let upto: Vec<RecordedEvent> = log
        .iter()
        .filter(|e| e.stream_id == accepted.stream_id && e.version < accepted.version)
        .cloned()
        .collect();
    apply_batch(&db.pool, &*p, table_again, &upto)
        .await
        .unwrap();
    apply_batch(
        &db.pool,
        &*p,
        table_again,
        std::slice::from_ref(&mediator_declines),
    )
    .await
    .unwrap();
    let message = refused(
        apply_batch(
            &db.pool,
            &*p,
            table_again,
            std::slice::from_ref(&again_to_interpreter),
        )
        .await,
        "an offer to a professional who passed",
    );
    assert!(message.contains("who passed"), "{message}");

    // As written, it applies; then a deadline missed after confirmation
    // is refused.
    apply_batch(&db.pool, &*p, table, std::slice::from_ref(&accepted))
        .await
        .unwrap();
    let a2_missed = log
        .iter()
        .find(|e| e.event_type == "ActivationDeadlineMissed")
        .cloned()
        .expect("the history has a missed deadline");
    assert_eq!(a2_missed.stream_id.0, h.activations[1].0);
    let mut after_confirmation = a2_missed.clone();
    after_confirmation.stream_id = accepted.stream_id;
    after_confirmation.version = accepted.version + 1;
    let before = dump(&db.pool, table, key).await;
    let message = refused(
        apply_batch(
            &db.pool,
            &*p,
            table,
            std::slice::from_ref(&after_confirmation),
        )
        .await,
        "a deadline missed after confirmation",
    );
    assert!(message.contains("after confirmation"), "{message}");
    assert_eq!(dump(&db.pool, table, key).await, before);

    // The whole log, then A2's deadline missed again: refused, and
    // nothing changes.
    let table = "t_activations_missed_twice";
    create(&db.pool, &*p, table).await;
    apply_batch(&db.pool, &*p, table, &log).await.unwrap();
    let a2 = events_of(&log, h.activations[1].0);
    assert_eq!(a2.last().unwrap().event_id, a2_missed.event_id);
    let mut again = a2_missed.clone();
    again.version = a2.len() as i64 + 1;
    again.metadata.occurred_at = A2_MISSED + Duration::minutes(1);
    let before = dump(&db.pool, table, key).await;
    let message = refused(
        apply_batch(&db.pool, &*p, table, std::slice::from_ref(&again)).await,
        "a deadline missed twice",
    );
    assert!(message.contains("missed twice"), "{message}");
    let mut conn = db.pool.acquire().await.unwrap();
    refused(
        p.apply(&mut conn, table, &again).await,
        "a deadline missed twice, alone",
    );
    drop(conn);
    assert_eq!(dump(&db.pool, table, key).await, before);
    // Missed twice within one batch, from the event before the first.
    let fresh = "t_activations_missed_twice_in_a_batch";
    create(&db.pool, &*p, fresh).await;
    let upto = log
        .iter()
        .position(|e| e.event_id == a2_missed.event_id)
        .unwrap();
    let mut batch = log[..=upto].to_vec();
    batch.push(again.clone());
    refused(
        apply_batch(&db.pool, &*p, fresh, &batch).await,
        "a deadline missed twice in one batch",
    );
    assert!(dump(&db.pool, fresh, key).await.is_empty());
    db.drop_db().await;
}
