//! The OpenAPI document of `/api/v1`, generated from the handlers and types.

use crate::api::{extensions, groups, phonebook, sync};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The OpenAPI description of the REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pbx365 REST API",
        description = "PBX directory and presence server with Microsoft 365 integration. Authenticate with \
            `Authorization: Bearer <api token>` (`pbx365 admin token create`) or the console session cookie \
            (then send the session's CSRF token in `X-CSRF-Token` with changes). Errors are \
            `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        extensions::list, extensions::get_one, extensions::create, extensions::update, extensions::delete,
        extensions::set_admin, extensions::get_profile, extensions::put_profile, extensions::photo,
        groups::list, groups::create, groups::delete, groups::add_member, groups::remove_member,
        phonebook::list_company, phonebook::create_company, phonebook::update_company, phonebook::delete_company,
        phonebook::list_personal, phonebook::create_personal, phonebook::update_personal, phonebook::delete_personal,
        sync::list_runs, sync::get_run, sync::start_run,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
