//! The OpenAPI 3.1 document, generated from the handlers' annotations
//! (`#[utoipa::path]`) and the request/response types as the routes are
//! registered ([`crate::api::routes`]), served at
//! `/api/v1/openapi.json`, with an interactive page at `/api/docs` whose
//! assets are vendored (it works offline, no CDN).

use crate::error::FieldErrorDoc;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sportello API",
        version = "1",
        description = "The HTTP contract of Sportello: the desk, its partner agencies and the \
                       coordination team. Every error under /api/ is an RFC 9457 problem \
                       (application/problem+json) with a stable type: an unknown route (404 \
                       not-found) and a method a route does not take (405 method-not-allowed, \
                       with Allow) included; a body that is not JSON is 415 \
                       unsupported-media-type, one too large 413 payload-too-large. Writes \
                       answer the stream version as ETag and the global log position; a retry \
                       with the same Idempotency-Key and body is answered the first answer, \
                       byte for byte, and appends nothing. Reads accept ?min_position= to read \
                       their writes. Weekly hours may leave days out: a day left out is closed."
    ),
    components(schemas(FieldErrorDoc, crate::error::ProblemDoc)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Liveness, readiness, metrics"),
        (name = "persons", description = "Taking in charge, the card and the case's events"),
        (name = "cases", description = "Visits, screened needs, the desk's own answers, closing, consent and legal bases"),
        (name = "referrals", description = "Matching, referrals and their lifecycle, partner inboxes"),
        (name = "organizations", description = "The directory of the network: providers, services, agreements"),
        (name = "reports", description = "Where the network gets stuck"),
        (name = "activity", description = "What moved in the network"),
        (name = "accounts", description = "Accounts, API tokens and the audit of reads and sign-ins"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole document: [`ApiDoc`]'s description with the paths of every
/// route [`crate::api::routes`] serves.
pub fn document() -> utoipa::openapi::OpenApi {
    crate::api::routes().split_for_parts().1
}

/// Routes serving `doc` and the interactive page.
pub fn router<S: Clone + Send + Sync + 'static>(doc: utoipa::openapi::OpenApi) -> Router<S> {
    SwaggerUi::new("/api/docs")
        .url("/api/v1/openapi.json", doc)
        .into()
}
