//! Consent and legal bases: what [`sharing`] allows, the case's commands,
//! and a property test of the sharing rule.

use super::*;
use crate::case::lifecycle::{Case, CaseCommand, CaseEvent, Stored, decide, evolve};
use crate::case::{Channel, PersonIdentity, PersonName, PersonTakenInCharge};
use crate::event::DomainEvent;
use crate::ids::PersonId;
use proptest::prelude::*;
use time::macros::date;

fn terms(
    purpose: ConsentPurpose,
    organizations: OrganizationScope,
    data: &[CardField],
) -> ConsentTerms {
    ConsentTerms {
        consent_id: ConsentId::new(),
        purpose,
        organizations,
        data: data.iter().copied().collect(),
        given_on: date!(2025 - 03 - 05),
        notice_language: "ar".into(),
        recorded_by: AccountId::new(),
    }
}

fn given(t: ConsentTerms) -> Consent {
    Consent {
        terms: t,
        withdrawn_on: None,
    }
}

fn only(orgs: &[OrganizationId]) -> OrganizationScope {
    OrganizationScope::Only(orgs.iter().copied().collect())
}

fn opened() -> Case {
    decide(
        None,
        CaseCommand::TakeInCharge(PersonTakenInCharge {
            person_id: PersonId::new(),
            desk: OrganizationId::new(),
            channel: Channel::Desk,
            operator: None,
            identity: PersonIdentity {
                names: vec![PersonName {
                    kind: "as_used".into(),
                    text: "Demo Persona".into(),
                }],
                ..Default::default()
            },
        }),
    )
    .unwrap()
    .iter()
    .fold(None, evolve)
    .unwrap()
}

fn run(state: Case, cmd: CaseCommand) -> Result<Case, DomainError> {
    let events = decide(Some(&state), cmd)?;
    Ok(events.iter().fold(Some(state), evolve).unwrap())
}

#[test]
fn a_network_consent_covers_every_organisation_for_its_purpose_and_fields() {
    let org = OrganizationId::new();
    let c = [given(terms(
        ConsentPurpose::Referral,
        OrganizationScope::Network,
        &[CardField::Names, CardField::Needs],
    ))];
    let s = sharing(&c, &[], org, ConsentPurpose::Referral);
    assert!(s.covered());
    assert!(s.allows(CardField::Needs));
    assert!(!s.allows(CardField::Vulnerabilities));
    assert_eq!(
        s.fields(),
        [CardField::Names, CardField::Needs].into_iter().collect()
    );
    assert_eq!(
        sharing(&c, &[], org, ConsentPurpose::Mediation),
        Sharing::NotCovered
    );
}

#[test]
fn a_scoped_consent_covers_only_its_organisations_and_fields_add_up() {
    let (a, b) = (OrganizationId::new(), OrganizationId::new());
    let c = [
        given(terms(
            ConsentPurpose::Referral,
            only(&[a]),
            &[CardField::Names],
        )),
        given(terms(
            ConsentPurpose::Referral,
            only(&[a]),
            &[CardField::Contacts],
        )),
    ];
    assert_eq!(
        sharing(&c, &[], a, ConsentPurpose::Referral).fields(),
        [CardField::Names, CardField::Contacts]
            .into_iter()
            .collect()
    );
    assert!(!sharing(&c, &[], b, ConsentPurpose::Referral).covered());
}

#[test]
fn a_withdrawn_consent_does_not_count_and_a_legal_basis_covers_every_field() {
    let org = OrganizationId::new();
    let mut c = given(terms(
        ConsentPurpose::Referral,
        OrganizationScope::Network,
        &[CardField::Names],
    ));
    c.withdrawn_on = Some(date!(2025 - 04 - 01));
    assert!(!sharing(&[c.clone()], &[], org, ConsentPurpose::Referral).covered());
    let basis = LegalBasis {
        legal_basis_id: LegalBasisId::new(),
        organization_id: org,
        basis: LegalBasisKind::VitalInterests,
        recorded_by: AccountId::new(),
    };
    let s = sharing(&[c], &[basis], org, ConsentPurpose::Referral);
    assert_eq!(s, Sharing::LegalBasis(LegalBasisKind::VitalInterests));
    assert_eq!(s.fields().len(), CardField::ALL.len());
    assert!(!sharing(&[], &[], OrganizationId::new(), ConsentPurpose::Referral).covered());
}

#[test]
fn the_scope_reads_and_writes_as_network_or_a_list() {
    let org = OrganizationId::new();
    assert_eq!(
        serde_json::to_value(OrganizationScope::Network).unwrap(),
        "network"
    );
    let list = only(&[org]);
    let v = serde_json::to_value(&list).unwrap();
    assert_eq!(v, serde_json::json!([org]));
    assert_eq!(
        serde_json::from_value::<OrganizationScope>(v).unwrap(),
        list
    );
    assert!(serde_json::from_value::<OrganizationScope>("everyone".into()).is_err());
    let t = terms(
        ConsentPurpose::Mediation,
        OrganizationScope::Network,
        &[CardField::Languages],
    );
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(v["given_on"], "2025-03-05");
    assert_eq!(v["purpose"], "mediation");
    assert_eq!(serde_json::from_value::<ConsentTerms>(v).unwrap(), t);
}

#[test]
fn consents_are_recorded_withdrawn_once_and_checked() {
    let org = OrganizationId::new();
    let mut case = opened();
    assert!(matches!(
        case.may_refer_to(org),
        Err(DomainError::NotCovered { organization, purpose: ConsentPurpose::Referral }) if organization == org
    ));
    let t = terms(ConsentPurpose::Referral, only(&[org]), &[CardField::Needs]);
    let id = t.consent_id;
    // Closed cases record consent too.
    case = run(case, CaseCommand::Close).unwrap();
    case = run(case, CaseCommand::RecordConsent(t.clone())).unwrap();
    assert_eq!(
        decide(Some(&case), CaseCommand::RecordConsent(t)),
        Err(DomainError::AlreadyExists("consent"))
    );
    assert!(case.may_refer_to(org).is_ok());
    let w = Withdrawal {
        consent_id: id,
        withdrawn_on: date!(2025 - 05 - 01),
    };
    assert_eq!(
        decide(
            Some(&case),
            CaseCommand::WithdrawConsent(Withdrawal {
                consent_id: ConsentId::new(),
                withdrawn_on: w.withdrawn_on,
            })
        ),
        Err(DomainError::NotFound("consent"))
    );
    assert!(matches!(
        decide(
            Some(&case),
            CaseCommand::WithdrawConsent(Withdrawal {
                consent_id: id,
                withdrawn_on: date!(2025 - 01 - 01),
            })
        ),
        Err(DomainError::Invalid {
            field: "withdrawn_on",
            ..
        })
    ));
    case = run(case, CaseCommand::WithdrawConsent(w.clone())).unwrap();
    assert!(case.may_refer_to(org).is_err());
    assert!(matches!(
        decide(Some(&case), CaseCommand::WithdrawConsent(w)),
        Err(DomainError::NotAllowed { .. })
    ));
}

#[test]
fn bad_terms_and_reasons_are_refused_naming_the_field() {
    let case = opened();
    let field = |t: ConsentTerms| match decide(Some(&case), CaseCommand::RecordConsent(t)) {
        Err(DomainError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let mut t = terms(ConsentPurpose::Referral, OrganizationScope::Network, &[]);
    assert_eq!(field(t.clone()), "data");
    t.data.insert(CardField::Names);
    t.notice_language = "ARA".into();
    assert_eq!(field(t.clone()), "notice_language");
    t.notice_language = "ar".into();
    t.organizations = only(&[]);
    assert_eq!(field(t), "organizations");
    let basis = LegalBasis {
        legal_basis_id: LegalBasisId::new(),
        organization_id: OrganizationId::new(),
        basis: LegalBasisKind::PublicTask,
        recorded_by: AccountId::new(),
    };
    assert!(matches!(
        decide(
            Some(&case),
            CaseCommand::RecordLegalBasis {
                basis,
                reason: "  ".into()
            }
        ),
        Err(DomainError::Invalid {
            field: "reason",
            ..
        })
    ));
}

#[test]
fn the_reason_of_a_legal_basis_travels_sealed_and_events_match_their_schemas() {
    let case = opened();
    let basis = LegalBasis {
        legal_basis_id: LegalBasisId::new(),
        organization_id: OrganizationId::new(),
        basis: LegalBasisKind::LegalObligation,
        recorded_by: AccountId::new(),
    };
    let t = terms(
        ConsentPurpose::Referral,
        OrganizationScope::Network,
        &[CardField::Names],
    );
    let events = vec![
        CaseEvent::ConsentRecorded(t.clone()),
        CaseEvent::ConsentWithdrawn(Withdrawal {
            consent_id: t.consent_id,
            withdrawn_on: date!(2025 - 06 - 01),
        }),
        CaseEvent::LegalBasisRecorded {
            basis: basis.clone(),
            reason: Some("Demo: a court order".into()),
        },
    ];
    for event in events {
        let parts = Stored {
            event: event.clone(),
            case: &case,
        }
        .into_parts();
        crate::schema::assert_parts_match_schema(&parts, crate::case::STREAM_KIND);
        assert!(!parts.payload.to_string().contains("court order"));
        let back = crate::case::lifecycle::decode(parts.event_type, &parts.payload).unwrap();
        match (&event, back) {
            (
                CaseEvent::LegalBasisRecorded { basis: b, .. },
                CaseEvent::LegalBasisRecorded { basis, reason },
            ) => {
                assert_eq!(&basis, b);
                assert_eq!(reason, None);
                assert_eq!(parts.personal.unwrap().1["reason"], "Demo: a court order");
            }
            (e, back) => assert_eq!(e, &back),
        }
    }
}

fn any_field_set() -> impl Strategy<Value = BTreeSet<CardField>> {
    proptest::sample::subsequence(CardField::ALL.to_vec(), 0..=CardField::ALL.len())
        .prop_map(|v| v.into_iter().collect())
}

fn any_consent(orgs: Vec<OrganizationId>) -> impl Strategy<Value = Consent> {
    (
        proptest::sample::select(ConsentPurpose::ALL.to_vec()),
        prop_oneof![
            Just(OrganizationScope::Network),
            proptest::sample::subsequence(orgs, 0..=3)
                .prop_map(|o| OrganizationScope::Only(o.into_iter().collect())),
        ],
        any_field_set(),
        any::<bool>(),
    )
        .prop_map(|(purpose, organizations, data, withdrawn)| Consent {
            terms: ConsentTerms {
                consent_id: ConsentId::new(),
                purpose,
                organizations,
                data,
                given_on: date!(2025 - 01 - 10),
                notice_language: "fr".into(),
                recorded_by: AccountId::new(),
            },
            withdrawn_on: withdrawn.then_some(date!(2025 - 02 - 10)),
        })
}

proptest! {
    /// Whatever consents and bases a case holds: a legal basis for the
    /// organisation allows everything; otherwise exactly the fields of the
    /// consents in force for the purpose that cover it, in any order, and
    /// withdrawn consents change nothing.
    #[test]
    fn sharing_is_the_union_of_the_consents_in_force_or_everything_by_law(
        (orgs, consents, basis_for, purpose, pick) in {
            let orgs: Vec<OrganizationId> = (0..3).map(|_| OrganizationId::new()).collect();
            (
                Just(orgs.clone()),
                proptest::collection::vec(any_consent(orgs.clone()), 0..6),
                proptest::option::of(proptest::sample::select(orgs)),
                proptest::sample::select(ConsentPurpose::ALL.to_vec()),
                0usize..3,
            )
        }
    ) {
        let org = orgs[pick];
        let bases: Vec<LegalBasis> = basis_for.into_iter().map(|o| LegalBasis {
            legal_basis_id: LegalBasisId::new(),
            organization_id: o,
            basis: LegalBasisKind::PublicTask,
            recorded_by: AccountId::new(),
        }).collect();
        let s = sharing(&consents, &bases, org, purpose);
        if basis_for == Some(org) {
            prop_assert_eq!(s.fields().len(), CardField::ALL.len());
        } else {
            let want: BTreeSet<CardField> = consents.iter()
                .filter(|c| c.withdrawn_on.is_none() && c.terms.purpose == purpose
                    && c.terms.organizations.covers(org))
                .flat_map(|c| c.terms.data.clone())
                .collect();
            prop_assert_eq!(s.covered(), !want.is_empty());
            prop_assert_eq!(s.fields(), want);
        }
        let mut reversed = consents.clone();
        reversed.reverse();
        prop_assert_eq!(&sharing(&reversed, &bases, org, purpose), &s);
        let in_force: Vec<Consent> = consents.iter().filter(|c| c.in_force()).cloned().collect();
        prop_assert_eq!(&sharing(&in_force, &bases, org, purpose), &s);
        for f in CardField::ALL {
            prop_assert_eq!(s.allows(f), s.fields().contains(&f));
        }
    }
}
