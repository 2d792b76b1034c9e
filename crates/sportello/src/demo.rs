//! `sportello demo`: the demo network, with fictitious people only. Until
//! the case and referral work lands this is the Comune di Potenza desk,
//! one operator account with an API token, and a few fictitious people
//! taken in charge. Loading twice adds no duplicates.

use anyhow::Context;
use serde_json::json;
use sportello_domain::case::{
    Channel, PersonIdentity, PersonName, PersonTakenInCharge, STREAM_KIND,
};
use sportello_domain::{
    AccountId, DomainEvent, Metadata, NetworkId, OrganizationId, PersonId, StreamId,
};
use sportello_http::Settings;
use sportello_http::auth::{create_account, issue_token};
use sportello_store::{AppendRequest, EventStore, ExpectedVersion, Keyring, NewEvent, db};
use std::path::Path;
use time::OffsetDateTime;
use uuid::Uuid;

/// The demo network's id: fixed, so the demo loads once.
pub const DEMO_NETWORK: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
/// The desk of the Comune di Potenza in the demo.
pub const DEMO_DESK: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0d05);
/// The demo desk operator's account.
pub const DEMO_OPERATOR: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0a01);

/// Fictitious people (DEMO DATA: these persons do not exist).
const PEOPLE: &[(&str, Option<&str>, Channel)] = &[
    ("Demo Ana Exemplu", Some("1991-04"), Channel::Desk),
    ("Demo Karim Esempio", Some("1987"), Channel::Desk),
    ("Demo Oksana Pryklad", None, Channel::Phone),
    ("Demo Joseph Sample", Some("2001-11-23"), Channel::Outreach),
    ("Demo Mei Shili", Some("1979-02-14"), Channel::Desk),
];

/// Load the demo.
pub async fn run(settings: &Settings, credentials: Option<&Path>) -> anyhow::Result<()> {
    db::create_database_if_missing(&settings.database_url).await?;
    let pool = db::connect(&settings.database_url, 4).await?;
    db::migrate(&pool).await?;
    let network = NetworkId(DEMO_NETWORK);
    let desk = OrganizationId(DEMO_DESK);
    let operator = AccountId(DEMO_OPERATOR);
    create_account(
        &pool,
        operator,
        network,
        desk,
        "desk_operator",
        "Demo desk operator",
    )
    .await?;
    let keyring = Keyring::new(settings.master_key.clone().context("master key")?);
    keyring.verify_master_key(&pool).await?;
    let store = EventStore::new(pool.clone(), keyring);
    let (existing,): (i64,) = sqlx::query_as(
        "SELECT count(DISTINCT stream_id) FROM events WHERE network_id = $1 AND stream_kind = $2",
    )
    .bind(network.0)
    .bind(STREAM_KIND)
    .fetch_one(&pool)
    .await?;
    if existing == 0 {
        for (name, birth, channel) in PEOPLE {
            let person = PersonId::new();
            let event = PersonTakenInCharge {
                person_id: person,
                desk,
                channel: *channel,
                operator: Some(operator),
                identity: PersonIdentity {
                    names: vec![PersonName {
                        kind: "as_in_document".into(),
                        text: (*name).into(),
                    }],
                    birth_date: birth.map(str::to_owned),
                    ..Default::default()
                },
            };
            store
                .append(&AppendRequest {
                    network,
                    stream_id: StreamId(person.0),
                    stream_kind: STREAM_KIND,
                    expected: ExpectedVersion::NoStream,
                    events: vec![NewEvent::from(event.into_parts())],
                    metadata: Metadata::for_command(operator, desk, OffsetDateTime::now_utc()),
                    idempotency: None,
                })
                .await?;
        }
        println!(
            "demo network loaded: {} fictitious people taken in charge",
            PEOPLE.len()
        );
    } else {
        println!("demo network already loaded ({existing} cases)");
    }
    if let Some(path) = credentials {
        let token = issue_token(&pool, operator, time::Duration::days(30)).await?;
        let out = json!({
            "network_id": network,
            "base_url": format!("http://{}", settings.listen),
            "accounts": [{
                "role": "desk_operator",
                "account_id": operator,
                "organization_id": desk,
                "organization": "Comune di Potenza — Sportello Servizi per l'immigrazione",
                "token": token,
            }],
        });
        write_private(path, &serde_json::to_vec_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("demo credentials written to {}", path.display());
    }
    Ok(())
}

/// Write a file only its owner can read (it holds bearer tokens).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)
}
