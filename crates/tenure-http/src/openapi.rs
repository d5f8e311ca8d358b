//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{clients, codes, discovery, grants, oauth, personal, problem, secrets};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tenure", description = "Delegated grants, clients, OAuth and personal grants, per zone."),
    paths(
        grants::list, grants::create, grants::get, grants::update, grants::delete, grants::history,
        clients::create, clients::list, clients::get, clients::patch, clients::impact,
        oauth::token, oauth::introspect, oauth::revoke, oauth::device_authorization, oauth::device_approve,
        personal::create, personal::get, personal::delete, personal::list, personal::update, personal::revoke,
        codes::create, secrets::rotate, discovery::metadata, discovery::metadata_well_known,
    ),
    components(schemas(problem::ErrorBody, problem::OAuthErrorBody)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

/// The OpenAPI 3.1 document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) async fn serve() -> Json<&'static utoipa::openapi::OpenApi> {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(openapi))
}
