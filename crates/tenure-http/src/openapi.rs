//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    clients, codes, discovery, grants, oauth, personal, problem, sailpoint, secrets, storyden,
};

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

/// Every route answers 503 with `Retry-After` when the store cannot be reached
/// (`tenure::Error::Unavailable`); this adds that answer to each operation that
/// does not describe its own 503.
struct StoreUnavailable;

impl Modify for StoreUnavailable {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            // The OAuth endpoints answer RFC 6749 bodies, the SailPoint dialect its
            // own; device approval and the Storyden dialect (under /admin/oauth/)
            // answer the seed body.
            let body = if path.contains("/oauth-clients/") {
                "SailPointErrorBody"
            } else if path.contains("/oauth/") && !path.contains("/admin/oauth/") {
                "OAuthErrorBody"
            } else {
                "ErrorBody"
            };
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("503".to_owned())
                    .or_insert_with(|| unavailable(body).into());
            }
        }
    }
}

/// A 503 whose body is the schema named `body`, with `Retry-After`.
fn unavailable(body: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description("The store is unavailable; retry after Retry-After seconds")
        .header(
            "retry-after",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0)),
                )
                .description(Some("Seconds to wait before retrying"))
                .build(),
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(body)))
                .build(),
        )
        .build()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tenure", description = "Delegated grants, clients, OAuth and personal grants, per zone."),
    paths(
        grants::list, grants::create, grants::get, grants::update, grants::delete, grants::history,
        clients::create, clients::list, clients::get, clients::patch, clients::delete, clients::impact,
        oauth::token, oauth::introspect, oauth::revoke, oauth::device_authorization, oauth::device_approve,
        personal::create, personal::get, personal::delete, personal::list, personal::update, personal::revoke,
        codes::create, secrets::rotate, discovery::metadata, discovery::metadata_well_known,
        sailpoint::list, sailpoint::create, sailpoint::read, sailpoint::patch, sailpoint::delete,
        storyden::list, storyden::create, storyden::read, storyden::update, storyden::delete,
        storyden::device_authorizations, storyden::refresh_tokens, storyden::revoke_refresh_token,
    ),
    components(schemas(problem::ErrorBody, problem::OAuthErrorBody, sailpoint::SailPointErrorBody)),
    tags(
        (name = "sailpoint", description = "SailPoint's OAuth client API (seed 003) over the same engine: a SailPoint client with base URL `http://HOST/zones/ZONE` works unchanged. `DEVICE_CODE` is tenure's own grant type; a null `scope` means the inherit policy. Deleting a client revokes its grants first."),
        (name = "storyden", description = "Storyden's admin OAuth API (seed 004) over the same engine. A refresh token is a live refresh chain, identified by its grant; deleting it revokes the grant. Deleting a client revokes its grants first: its tokens stop at once, access tokens included, since tenure's are introspected."),
    ),
    modifiers(&BearerAuth, &StoreUnavailable),
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
