//! The authorization matrix: every route the server serves × every role
//! (and no credential) × a caller of the resource's own organisation or of
//! another — each answer checked against the table below, written apart
//! from the policy module so the two can disagree.
//!
//! The routes come from the router itself (`api::routes()`, which builds
//! the router and the OpenAPI document from one list): a route added
//! without a line in [`expected`] fails this test.
//!
//! What the answers mean:
//! - allowed: the request went past the policy; with the valid bodies
//!   sent here that is a success, or a conflict with the state earlier
//!   requests left (`409`: already closed, already withdrawn…, `410`);
//! - `403`: the caller's role may not do this (the resource's existence is
//!   no secret to them: the desk's cases, the directory's organisations);
//! - `404`: the resource does not exist *for this caller* — a partner
//!   asking for a person never referred to it, or for another
//!   organisation's referral, is not told that it exists;
//! - `401`: no credential.

use serde_json::{Value, json};
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use sportello_http::auth::token;

mod common;
use common::*;

/// The roles, as stored.
const ROLES: [&str; 6] = [
    "desk_operator",
    "desk_supervisor",
    "partner",
    "professional",
    "coordinator",
    "admin",
];

/// What a caller should get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Forbidden,
    Hidden,
    Unauthenticated,
}
use Outcome::*;

/// The table: for a route, the referral action (if any), the caller's
/// role (`None`: no credential) and whether the caller is of the
/// resource's organisation.
fn expected(
    method: &str,
    path: &str,
    action: Option<&str>,
    role: Option<&str>,
    own: bool,
) -> Outcome {
    let ops = matches!(path, "/healthz" | "/readyz" | "/metrics");
    if ops {
        return Allowed; // operations endpoints: no personal data, no credential
    }
    let Some(role) = role else {
        return Unauthenticated;
    };
    let desk = matches!(role, "desk_operator" | "desk_supervisor");
    let supervisor = role == "desk_supervisor";
    let partner = role == "partner";
    let professional = role == "professional";
    let admin = role == "admin";
    let coordination = desk || matches!(role, "coordinator" | "admin");
    let yes = |b: bool| if b { Allowed } else { Forbidden };
    match (method, path) {
        ("get", "/api/v1/me") => Allowed,
        // The directory of providers is the network's public face.
        ("get", "/api/v1/organizations" | "/api/v1/organizations/{id}") => Allowed,
        ("post", "/api/v1/organizations") | ("patch", "/api/v1/organizations/{id}") => {
            yes(coordination)
        }
        ("get", "/api/v1/organizations/{id}/inbox") => yes(desk || (partner && own)),
        // Aggregates, no person: the coordination team's and the desk's.
        ("get", "/api/v1/reports/bottlenecks" | "/api/v1/reports/activations") => yes(coordination),
        // Stream ids of people: the desk's only.
        ("get", "/api/v1/activity") => yes(desk),
        (
            "post",
            "/api/v1/accounts"
            | "/api/v1/accounts/{id}/tokens"
            | "/api/v1/accounts/{id}/disable"
            | "/api/v1/tokens/{id}/revoke",
        )
        | ("get", "/api/v1/audit/reads" | "/api/v1/audit/sign-ins") => yes(admin),
        (
            "post",
            "/api/v1/persons"
            | "/api/v1/persons/search"
            | "/api/v1/persons/{id}/visits"
            | "/api/v1/persons/{id}/needs"
            | "/api/v1/persons/{id}/needs/{nid}/resolve"
            | "/api/v1/persons/{id}/consents"
            | "/api/v1/persons/{id}/consents/{cid}/withdraw"
            | "/api/v1/persons/{id}/close"
            | "/api/v1/persons/{id}/reopen"
            | "/api/v1/referrals",
        )
        | ("get", "/api/v1/persons/{id}/needs/{nid}/matches" | "/api/v1/persons/{id}/history") => {
            yes(desk)
        }
        // A legal basis instead of consent, handing over, erasing: the
        // supervisor's.
        ("post", "/api/v1/persons/{id}/legal-bases" | "/api/v1/persons/{id}/erase")
        | ("get", "/api/v1/persons/{id}/export") => yes(supervisor),
        // The card: the desk, and a partner the person was referred to;
        // to any other partner the person does not exist.
        ("get", "/api/v1/persons/{id}/card") => match (desk, partner, own) {
            (true, _, _) => Allowed,
            (_, true, true) => Allowed,
            (_, true, false) => Hidden,
            _ => Forbidden,
        },
        ("post", "/api/v1/referrals/{id}/{action}") => {
            if partner && !own {
                return Hidden;
            }
            match action.expect("an action") {
                "cancel" | "redirect" => yes(desk),
                _ => yes(partner && own),
            }
        }
        // The registry: the desk's; a professional reads and keeps their
        // own entry's availability, and reads their own queue.
        ("get" | "post", "/api/v1/professionals") => yes(desk),
        (
            "get" | "patch",
            "/api/v1/professionals/{id}" | "/api/v1/professionals/{id}/activations",
        ) => yes(desk || (professional && own)),
        // Activations: asked for by the desk or a partner; one activation
        // is the desk's, the asking partner's and the professional's it was
        // offered to — to other partners and professionals it does not exist.
        ("get" | "post", "/api/v1/activations") => yes(desk || partner),
        ("get", "/api/v1/activations/{id}") | ("post", "/api/v1/activations/{id}/{action}") => {
            if (partner || professional) && !own {
                return Hidden;
            }
            match action {
                None => yes(desk || partner || professional),
                Some("accept" | "decline") => yes(professional),
                Some("deliver") => yes(desk || professional),
                Some(_) => yes(desk || partner),
            }
        }
        _ => panic!("{method} {path} is served but has no line in the authorization matrix"),
    }
}

/// The actions of a route with `{action}`.
fn actions(path: &str) -> &'static [&'static str] {
    if path.starts_with("/api/v1/activations") {
        // In this order: accepted, then scheduled, delivered; the rest
        // answer what the lifecycle says of a delivered activation.
        &["accept", "decline", "schedule", "deliver", "cancel"]
    } else {
        &ACTIONS
    }
}

const ACTIONS: [&str; 8] = [
    "acknowledge",
    "accept",
    "decline",
    "start",
    "complete",
    "fail",
    "cancel",
    "redirect",
];

/// Every (method, path) the server serves, from the router's document.
fn served() -> Vec<(String, String)> {
    let doc = serde_json::to_value(sportello_http::openapi::document()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.push((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

struct World {
    network: NetworkId,
    operator: String,
    person: String,
    need: String,
    consent: String,
    referral: String,
    p: (String, String),
    some_account: AccountId,
    /// The professional the own professional callers are.
    professional: String,
    /// An activation P asked for, offered to that professional.
    activation: String,
}

/// A caller: a role, of the resource's organisation (P) or another (Q).
struct CallerAccount {
    role: &'static str,
    own: bool,
    token: String,
}

impl World {
    /// The path with its parameters filled in, and the body to send.
    async fn request(
        &self,
        s: &Server,
        method: &str,
        path: &str,
        action: Option<&str>,
    ) -> (String, Option<Value>) {
        let mut url = path
            .replace("{nid}", &self.need)
            .replace("{cid}", &self.consent);
        let body = match (method, path) {
            (_, p) if p.starts_with("/api/v1/organizations/{id}") => {
                url = url.replace("{id}", &self.p.0);
                (method == "patch").then(|| json!({ "name": "Demo Provider P" }))
            }
            (_, "/api/v1/referrals/{id}/{action}") => {
                let action = action.unwrap();
                url = url
                    .replace("{id}", &self.referral)
                    .replace("{action}", action);
                match action {
                    "decline" => Some(json!({ "reason": "no_capacity" })),
                    "complete" => Some(json!({ "outcome": "need_met" })),
                    "fail" => Some(json!({ "reason": "person_unreachable" })),
                    // Within P: a redirection to Q would refer the person
                    // to the "other" organisation of this test.
                    "redirect" => {
                        Some(json!({ "organization_id": self.p.0, "service_id": self.p.1 }))
                    }
                    _ => None,
                }
            }
            (_, p) if p.starts_with("/api/v1/professionals/{id}") => {
                url = url.replace("{id}", &self.professional);
                (method == "patch").then(|| json!({ "availability": every_day() }))
            }
            ("post", "/api/v1/professionals") => Some(professional_body("Demo Nuovo", "fr")),
            ("post", "/api/v1/activations") => Some(arabic(s)),
            (_, p) if p.starts_with("/api/v1/activations/{id}") => {
                url = url.replace("{id}", &self.activation);
                if let Some(action) = action {
                    url = url.replace("{action}", action);
                }
                match action {
                    Some("schedule") => {
                        // Before the activation is needed, after its request.
                        Some(json!({ "at": s.in_hours(24), "place": "Demo: via Pretoria" }))
                    }
                    Some("deliver") => Some(json!({ "quarter_hours": 4, "outcome": "Demo: done" })),
                    Some("cancel") => Some(json!({ "reason": "Demo: not needed" })),
                    _ => None,
                }
            }
            (_, "/api/v1/persons/{id}/erase") => {
                // Each erasure its own person: an erased case answers 410.
                let fresh = s
                    .post_ok(
                        "/api/v1/persons",
                        &self.operator,
                        &person("Demo Da Cancellare"),
                        201,
                    )
                    .await;
                url = url.replace("{id}", fresh["person_id"].as_str().unwrap());
                Some(json!({ "reason": "request" }))
            }
            (_, "/api/v1/accounts/{id}/tokens") => {
                url = url.replace("{id}", &self.some_account.0.to_string());
                Some(json!({ "label": "matrix", "valid_days": 1 }))
            }
            (_, "/api/v1/accounts/{id}/disable") => {
                // Each its own live account: a disabled one is not found.
                let (fresh, _) = s
                    .bound_account(self.network, OrganizationId::new(), "partner", None)
                    .await;
                url = url.replace("{id}", &fresh.0.to_string());
                None
            }
            (_, "/api/v1/tokens/{id}/revoke") => {
                // Each revocation its own live token.
                let issued =
                    token::issue(&s.db.pool, self.some_account, "m", time::Duration::hours(1))
                        .await
                        .unwrap();
                url = url.replace("{id}", &issued.token_id.to_string());
                None
            }
            ("post", "/api/v1/organizations") => Some(provider_body(
                s,
                "Demo Provider N",
                "health_authority",
                &["health_stp_code"],
            )),
            ("post", "/api/v1/persons") => Some(consented(person("Demo Nuova Persona"))),
            ("post", "/api/v1/persons/search") => Some(json!({ "q": "demo" })),
            ("post", "/api/v1/persons/{id}/visits") => Some(json!({ "channel": "desk" })),
            ("post", "/api/v1/persons/{id}/needs") => Some(json!({ "code": "health_stp_code" })),
            ("post", "/api/v1/persons/{id}/needs/{nid}/resolve") => {
                Some(json!({ "outcome": "information_given" }))
            }
            ("post", "/api/v1/persons/{id}/consents") => Some(network_consent()),
            ("post", "/api/v1/persons/{id}/consents/{cid}/withdraw") => {
                Some(json!({ "withdrawn_on": "2025-03-01" }))
            }
            ("post", "/api/v1/persons/{id}/legal-bases") => Some(
                json!({ "organization_id": self.p.0, "basis": "public_task", "reason": "Demo" }),
            ),
            ("post", "/api/v1/referrals") => {
                // A need of its own each time, so each send can succeed.
                let need = s
                    .post_ok(
                        &format!("/api/v1/persons/{}/needs", self.person),
                        &self.operator,
                        &json!({ "code": "health_stp_code" }),
                        201,
                    )
                    .await;
                Some(
                    json!({ "person_id": self.person, "need_id": need["need_id"],
                             "organization_id": self.p.0, "service_id": self.p.1 }),
                )
            }
            ("post", "/api/v1/accounts") => Some(
                json!({ "label": "Demo Account", "role": "desk_operator", "organization_id": self.p.0 }),
            ),
            _ => None,
        };
        let url = url.replace("{id}", &self.person);
        (url, body)
    }
}

/// An interpreter for health speaking `language`.
fn professional_body(name: &str, language: &str) -> Value {
    json!({
        "profile": {
            "roles": ["interpreter"], "sectors": ["health"],
            "languages": [{ "code": language, "proficiency": "native" }],
            "modes": ["in_person"], "admitted_on": "2025-01-10"
        },
        "contact": { "name": name },
        "availability": every_day()
    })
}

/// An Arabic interpreter for health, in two days by the server's clock.
fn arabic(s: &Server) -> Value {
    json!({
        "role": "interpreter", "sector": "health", "language": "ar", "mode": "in_person",
        "place": "Demo: ASP, via Torraca 2", "needed_at": s.in_hours(48), "urgency": "48h"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_every_role_own_and_other_organisation() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let (_, operator) = s.bound_account(network, desk, "desk_operator", None).await;
    let p = provider(
        &s,
        &operator,
        "Demo Provider P",
        "health_authority",
        &["health_stp_code"],
    )
    .await;
    let q = provider(
        &s,
        &operator,
        "Demo Provider Q",
        "health_authority",
        &["health_stp_code"],
    )
    .await;
    let r = s.referred(&operator, "Demo Matrice", &p).await;
    let (person_id, consent, need, referral) = (r.person, r.consent, r.need, r.referral);
    // The referral is in the read model partners' cards are built from.
    s.get_ok(
        &format!(
            "/api/v1/persons/{person_id}/card?min_position={}",
            r.position
        ),
        &operator,
    )
    .await;

    // The own professional (Arabic) and another (English); P asks for an
    // Arabic interpreter, offered to the own one.
    let mut entries = Vec::new();
    for (name, language) in [("Demo Interprete R", "ar"), ("Demo Interprete S", "en")] {
        let w = s
            .post_ok(
                "/api/v1/professionals",
                &operator,
                &professional_body(name, language),
                201,
            )
            .await;
        s.get_ok(
            &format!(
                "/api/v1/professionals/{}?min_position={}",
                w["id"].as_str().unwrap(),
                w["position"]
            ),
            &operator,
        )
        .await;
        entries.push(w["id"].as_str().unwrap().to_owned());
    }
    let org = |id: &str| OrganizationId(id.parse().unwrap());
    let (_, p_partner) = s.bound_account(network, org(&p.0), "partner", None).await;
    let asked = s
        .post_ok("/api/v1/activations", &p_partner, &arabic(&s), 201)
        .await;
    assert_eq!(asked["offered_to"], entries[0].as_str());
    let mut callers = Vec::new();
    for role in ROLES {
        for own in [true, false] {
            let o = if own { org(&p.0) } else { org(&q.0) };
            let entry = if own { &entries[0] } else { &entries[1] };
            callers.push(CallerAccount {
                role,
                own,
                token: s.bound_account(network, o, role, Some(entry)).await.1,
            });
        }
    }
    let (some_account, _) = s.bound_account(network, desk, "partner", None).await;
    let world = World {
        network,
        operator,
        person: person_id,
        need,
        consent,
        referral,
        p,
        some_account,
        professional: entries[0].clone(),
        activation: asked["activation_id"].as_str().unwrap().to_owned(),
    };

    let routes = served();
    assert!(routes.len() >= 30, "the router's routes: {routes:?}");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (method, path) in &routes {
        let actions: Vec<Option<&str>> = if path.contains("{action}") {
            actions(path).iter().map(|a| Some(*a)).collect()
        } else {
            vec![None]
        };
        for action in actions {
            // Forbidden callers first: what they try changes nothing, and
            // the allowed ones then act on the state as set up.
            let mut order: Vec<Option<&CallerAccount>> = vec![None];
            order.extend(callers.iter().map(Some));
            order.sort_by_key(|c| {
                expected(
                    method,
                    path,
                    action,
                    c.map(|c| c.role),
                    c.is_none_or(|c| c.own),
                ) == Allowed
            });
            for caller in order {
                let role = caller.map(|c| c.role);
                let own = caller.is_none_or(|c| c.own);
                let want = expected(method, path, action, role, own);
                let (url, body) = world.request(&s, method, path, action).await;
                let mut req = match method.as_str() {
                    "get" => s.http.get(s.url(&url)),
                    "post" => s.http.post(s.url(&url)),
                    "patch" => s.http.patch(s.url(&url)),
                    other => panic!("no {other} route expected"),
                };
                if let Some(c) = caller {
                    req = req.bearer_auth(&c.token);
                }
                if let Some(b) = &body {
                    req = req.json(b);
                }
                let res = req.send().await.unwrap();
                let got = res.status().as_u16();
                let ok = match want {
                    Allowed => (200..300).contains(&got) || got == 409 || got == 410,
                    Forbidden => got == 403,
                    Hidden => got == 404,
                    Unauthenticated => got == 401,
                };
                if !ok {
                    let text = res.text().await.unwrap_or_default();
                    wrong.push(format!(
                        "{} {url} as {role:?} (own: {own}): {got}, expected {want:?}: {text}",
                        method.to_uppercase()
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} answers wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // Every route and action, each of the 13 callers.
    let requests: usize = routes
        .iter()
        .map(|(_, p)| {
            if p.contains("{action}") {
                actions(p).len()
            } else {
                1
            }
        })
        .sum();
    assert_eq!(checked, requests * 13);
    s.stop().await;
}
