//! The OpenAPI document of `/api/v1`, generated from the handlers and types, then completed with
//! what the derive cannot say: every error status each operation can answer, and the exact
//! constraints of each request body (lengths after trimming, patterns, enums, ranges), so that
//! a request the document calls valid is accepted and one it calls invalid is refused
//! (checked by schemathesis in `crates/web/pytests`).

use crate::api::{extensions, groups, lookup, phonebook, sync};
use pbx365_domain::settings::DigitRange;
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The OpenAPI description of the REST API as derived from the handlers; [`document`] completes it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "pbx365 REST API",
        description = "PBX directory and presence server with Microsoft 365 integration. Authenticate with \
            `Authorization: Bearer <api token>` (`pbx365 admin token create`) or the console session cookie \
            (then send the session's CSRF token in `X-CSRF-Token` with changes). Errors are \
            `{\"error\": {\"code\", \"message\"}}`: 400 a request that cannot be read (JSON syntax, a path \
            or query value of the wrong type), 401 no or bad credentials, 403 a cookie-authenticated change \
            without the CSRF token, 404 no such resource, 409 a conflict with what is stored, 415 a body \
            that is not JSON, 422 a value that is not acceptable. Text fields are trimmed; an empty \
            optional field is stored as absent."
    ),
    paths(
        extensions::list, extensions::get_one, extensions::create, extensions::update, extensions::delete,
        extensions::set_admin, extensions::get_profile, extensions::put_profile, extensions::photo,
        groups::list, groups::create, groups::delete, groups::add_member, groups::remove_member,
        phonebook::list_company, phonebook::create_company, phonebook::update_company, phonebook::delete_company,
        phonebook::list_personal, phonebook::create_personal, phonebook::update_personal, phonebook::delete_personal,
        sync::list_runs, sync::get_run, sync::start_run, sync::approve_run,
        lookup::lookup,
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

/// The longest text a directory field keeps (after trimming).
const MAX_TEXT: usize = pbx365_domain::extension::MAX_FIELD_LEN;
/// The longest group name (after trimming).
const MAX_GROUP_NAME: usize = 64;
/// The longest group description.
const MAX_GROUP_DESCRIPTION: usize = 1024;
/// The most mail addresses, and the most numbers, of one phonebook entry.
const MAX_ENTRY_ITEMS: usize = 20;
/// The longest phone number.
const MAX_PHONE: usize = 64;
/// The longest mail address (bytes of UTF-8).
const MAX_EMAIL: usize = 320;

/// What `str::trim` removes (Unicode White_Space), as a regex class body; spelled out because
/// `\s` differs between regex dialects.
const WS: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters (Unicode Cc) beside the whitespace, as a class body.
const CTRL: &str = r"\x00-\x1f\x7f-\x9f";
/// Characters of a dialable number.
const DIAL: &str = r"0-9 +\-()/.*#";

/// Any number of trimmed characters.
fn ws() -> String {
    format!("[{WS}]*")
}

/// Text whose trimmed form has 1 to `max` characters (`blank_ok`: or is empty).
fn trimmed_text(max: usize, blank_ok: bool) -> String {
    let core = format!("[^{WS}](?:[\\s\\S]{{0,{}}}[^{WS}])?", max - 2);
    let core = if blank_ok {
        format!("(?:{core})?")
    } else {
        core
    };
    format!("^{ws}{core}{ws}$", ws = ws())
}

/// A mail address `local@domain.tld` (no whitespace or control characters, the domain holds a
/// dot and neither starts nor ends with one), possibly surrounded by trimmed whitespace.
fn email(blank_ok: bool) -> String {
    let any = format!("[^@{CTRL}{WS}]");
    let edge = format!("[^@.{CTRL}{WS}]");
    let core = format!("{any}+@{edge}{any}*\\.{any}*{edge}");
    let core = if blank_ok {
        format!("(?:{core})?")
    } else {
        core
    };
    format!("^{ws}{core}{ws}$", ws = ws())
}

/// A dialable number: digits and `+ - ( ) / . * #` and spaces, at least one digit.
fn dialable(trimmed: bool) -> String {
    let core = format!("[{DIAL}]*[0-9][{DIAL}]*");
    if trimmed {
        format!("^{ws}(?:{core})?{ws}$", ws = ws())
    } else {
        format!("^{core}$")
    }
}

fn text_field(description: &str, max: usize, nullable: bool) -> Value {
    json!({
        "type": if nullable { json!(["string", "null"]) } else { json!("string") },
        "description": format!("{description} At most {max} characters after trimming."),
        "pattern": trimmed_text(max, true),
    })
}

fn email_field(nullable: bool) -> Value {
    json!({
        "type": if nullable { json!(["string", "null"]) } else { json!("string") },
        "description": format!("Mail address `name@domain.tld` (at most {MAX_EMAIL} bytes)."),
        "allOf": [{"pattern": email(nullable)}, {"pattern": trimmed_text(MAX_EMAIL, nullable)}],
    })
}

fn phone_field(description: &str) -> Value {
    json!({
        "type": ["string", "null"],
        "description": format!("{description} Digits, spaces and `+ - ( ) / . * #`, at least one digit, at most {MAX_PHONE} characters after trimming; empty means none."),
        // Shape and length are two patterns: the length counts the trimmed characters.
        "allOf": [{"pattern": dialable(true)}, {"pattern": trimmed_text(MAX_PHONE, true)}],
    })
}

/// "At least one of these fields holds a non-blank text."
fn one_not_blank(fields: &[&str]) -> Value {
    let non_blank = json!({"type": "string", "pattern": format!("[^{WS}]")});
    Value::Array(
        fields
            .iter()
            .map(|f| json!({"required": [f], "properties": {*f: non_blank}}))
            .collect(),
    )
}

fn extension_number(digits: DigitRange) -> Value {
    json!({
        "type": "string",
        "description": format!("The dialable number: {} to {} digits (`extension_digits`).", digits.min, digits.max),
        "pattern": format!("^{ws}[0-9]{{{},{}}}{ws}$", digits.min, digits.max, ws = ws()),
    })
}

/// The body of creating (`number` required) or replacing (`number` optional) an extension.
fn extension_input(digits: DigitRange, create: bool) -> Value {
    let mut number = extension_number(digits);
    if !create {
        number["description"] = json!("The extension's number; may be omitted, else it must equal the number in the path (409 otherwise).");
    }
    let mut schema = json!({
        "type": "object",
        "description": "The directory fields of a local extension. At least one of display_name, first_name and last_name is not blank; an empty display name is made of first and last name.",
        "additionalProperties": false,
        "properties": {
            "number": number,
            "first_name": text_field("Given name.", MAX_TEXT, false),
            "last_name": text_field("Surname.", MAX_TEXT, false),
            "display_name": text_field("Shown name.", MAX_TEXT, false),
            "email": email_field(true),
            "mobile": phone_field("Mobile number."),
            "outbound_caller_id": phone_field("Outbound caller ID."),
            "department": text_field("Department.", MAX_TEXT, true),
            "job_title": text_field("Job title.", MAX_TEXT, true),
            "office": text_field("Office location.", MAX_TEXT, true),
        },
        "anyOf": one_not_blank(&["display_name", "first_name", "last_name"]),
    });
    if create {
        schema["required"] = json!(["number"]);
    }
    schema
}

fn group_input() -> Value {
    let name_char = format!("[^{CTRL}{WS}]");
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["name"],
        "properties": {
            "name": {
                "type": "string",
                "description": format!("Unique name: 1 to {MAX_GROUP_NAME} characters after trimming, no control characters."),
                "pattern": format!("^{ws}{name_char}(?:[^{CTRL}]{{0,{}}}{name_char})?{ws}$", MAX_GROUP_NAME - 2, ws = ws()),
            },
            "description": {
                "type": "string",
                "description": "Free text.",
                "maxLength": MAX_GROUP_DESCRIPTION,
            },
        },
    })
}

fn entry_input() -> Value {
    json!({
        "type": "object",
        "description": "A local phonebook entry. At least one of display_name, first_name, last_name and company is not blank, and the entry has at least one number or mail address.",
        "additionalProperties": false,
        "properties": {
            "display_name": text_field("Shown name; made of first and last name (or company) when empty.", MAX_TEXT, false),
            "first_name": text_field("Given name.", MAX_TEXT, false),
            "last_name": text_field("Surname.", MAX_TEXT, false),
            "company": text_field("Company.", MAX_TEXT, true),
            "emails": {
                "type": "array",
                "description": "Mail addresses.",
                "maxItems": MAX_ENTRY_ITEMS,
                "items": email_field(false),
            },
            "numbers": {
                "type": "array",
                "description": "Phone numbers.",
                "maxItems": MAX_ENTRY_ITEMS,
                "items": {"$ref": "#/components/schemas/NumberInput"},
            },
        },
        "allOf": [
            {"anyOf": one_not_blank(&["display_name", "first_name", "last_name", "company"])},
            {"anyOf": [
                {"required": ["emails"], "properties": {"emails": {"minItems": 1}}},
                {"required": ["numbers"], "properties": {"numbers": {"minItems": 1}}},
            ]},
        ],
    })
}

fn number_input() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["kind", "number"],
        "properties": {
            "kind": {"$ref": "#/components/schemas/PhoneKind"},
            "number": {
                "type": "string",
                "description": format!("The number as written (digits, spaces and `+ - ( ) / . * #`, at least one digit, at most {MAX_PHONE} characters); it is also normalised to E.164."),
                "pattern": dialable(false),
                "maxLength": MAX_PHONE,
            },
        },
    })
}

fn profile_input() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["profile"],
        "properties": {
            "profile": {"$ref": "#/components/schemas/Profile"},
            "source": {
                "type": ["string", "null"],
                "description": "Only `manual` may be set through the API (the calendar sync sets `calendar`).",
                "enum": ["manual", null],
            },
            "until": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "Optional end of the manual profile; it must lie in the future (422 otherwise).",
            },
        },
    })
}

fn admin_input() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["is_admin"],
        "properties": {
            "is_admin": {"type": "boolean", "description": "Grant (true) or revoke (false) console admin rights."},
        },
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    })
}

/// The shared error responses, by status.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The request cannot be read: JSON syntax, or a path or query value of the wrong type.",
    ),
    (
        "401",
        "Unauthorized",
        "No, an unknown, an expired or a revoked API token, and no console session.",
    ),
    (
        "403",
        "Forbidden",
        "A change with the console session cookie but without its CSRF token in `X-CSRF-Token`.",
    ),
    ("404", "NotFound", "No such resource."),
    (
        "409",
        "Conflict",
        "The request conflicts with what is stored.",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as `Content-Type: application/json`.",
    ),
    (
        "422",
        "Unprocessable",
        "A value is not acceptable; the message names it.",
    ),
    (
        "500",
        "Internal",
        "The server could not complete the request (the cause is in the server log).",
    ),
];

/// The complete document served at `/api/v1/openapi.json`; the extension number pattern follows
/// the effective `extension_digits`.
pub fn document(digits: DigitRange) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("the document has schemas");
    schemas.insert("ExtensionInput".into(), extension_input(digits, true));
    schemas.insert("ExtensionUpdate".into(), extension_input(digits, false));
    schemas.insert("GroupInput".into(), group_input());
    schemas.insert("EntryInput".into(), entry_input());
    schemas.insert("NumberInput".into(), number_input());
    schemas.insert("ProfileInput".into(), profile_input());
    schemas.insert("AdminInput".into(), admin_input());
    let responses: Map<String, Value> = ERRORS
        .iter()
        .map(|(_, name, description)| (name.to_string(), error_response(description)))
        .collect();
    doc["components"]["responses"] = Value::Object(responses);

    let paths = doc["paths"]
        .as_object_mut()
        .expect("the document has paths");
    for (path, item) in paths.iter_mut() {
        let has_path_params = path.contains('{');
        for (method, op) in item.as_object_mut().expect("a path item").iter_mut() {
            complete_operation(path, method, op, has_path_params);
        }
    }
    doc
}

/// Adds the error statuses `op` can answer and fixes what the derive gets wrong.
fn complete_operation(path: &str, method: &str, op: &mut Value, has_path_params: bool) {
    let has_body = op.get("requestBody").is_some();
    let has_query = op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    if path == "/api/v1/extensions/{number}" && method == "put" {
        op["requestBody"]["content"]["application/json"]["schema"] =
            json!({"$ref": "#/components/schemas/ExtensionUpdate"});
    }
    if path == "/api/v1/extensions/{number}/photo" {
        let binary = json!({"schema": {"type": "string", "format": "binary"}});
        op["responses"]["200"]["content"] =
            json!({"image/*": binary, "application/octet-stream": binary});
        op["responses"]["200"]["description"] =
            json!("The photo as stored (`image/jpeg`, `image/png`, ...); anything but an image is sent as `application/octet-stream`.");
    }
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in params {
            match p["name"].as_str() {
                Some("limit") => {
                    p["schema"] =
                        json!({"type": "integer", "minimum": 1, "maximum": 500, "default": 50});
                }
                Some("full") | Some("dry_run") => {
                    p["schema"] = json!({"type": "boolean", "default": false});
                }
                Some("kind") => {
                    p["schema"] = json!({"type": "string", "enum": ["users", "all"]});
                }
                Some("number") if path == "/api/v1/lookup" => {
                    p["schema"] = json!({"type": "string", "pattern": dialable(false), "maxLength": MAX_PHONE});
                }
                _ => {}
            }
        }
    }
    if has_body {
        op["requestBody"]["required"] = json!(true);
    }
    let mut statuses = vec!["401", "500"];
    if method != "get" {
        statuses.push("403");
    }
    if has_body || has_path_params || has_query {
        statuses.push("400");
    }
    if has_body {
        statuses.extend(["415", "422"]);
    }
    if has_query {
        statuses.push("422");
    }
    if has_path_params {
        statuses.push("404");
    }
    let responses = op["responses"]
        .as_object_mut()
        .expect("an operation has responses");
    for status in statuses {
        let (_, name, _) = ERRORS
            .iter()
            .find(|(s, _, _)| *s == status)
            .expect("a shared error response");
        responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn doc() -> Value {
        document(DigitRange { min: 3, max: 5 })
    }

    /// `(method, path)` of every `.route(…)` in the API router's source: axum cannot list its
    /// routes, and a route added without its `#[utoipa::path]` is what this guards against.
    fn routed() -> BTreeSet<(String, String)> {
        let src = include_str!("api/mod.rs");
        let mut found = BTreeSet::new();
        for block in src.split(".route(").skip(1) {
            let path = block.split('"').nth(1).expect("a route path literal");
            // The route's method router ends where the next statement or route begins.
            let end = block.find("\n        .").unwrap_or(block.len());
            let methods = &block[..end];
            for m in ["get", "post", "put", "delete", "patch"] {
                let called = methods.match_indices(&format!("{m}(")).any(|(i, _)| {
                    i == 0 || !methods[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if called {
                    found.insert((m.to_string(), format!("/api/v1{path}")));
                }
            }
        }
        found.remove(&("get".to_string(), "/api/v1/openapi.json".to_string()));
        found
    }

    #[test]
    fn every_routed_operation_is_documented_and_nothing_else() {
        let doc = doc();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let routed = routed();
        assert!(
            routed.len() >= 25,
            "the route scan found too little: {routed:?}"
        );
        assert_eq!(routed, documented);
    }

    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = doc();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn every_operation_documents_its_errors_with_the_error_schema() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let mut want = vec!["401", "500"];
                if method != "get" {
                    want.push("403");
                }
                if path.contains('{') {
                    want.extend(["400", "404"]);
                }
                if op.get("requestBody").is_some() {
                    want.extend(["400", "415", "422"]);
                    assert_eq!(op["requestBody"]["required"], true, "{method} {path}");
                }
                for status in want {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
                for (status, response) in responses {
                    if status.starts_with('2') {
                        continue;
                    }
                    let schema = match response.get("$ref") {
                        Some(Value::String(r)) => doc
                            .pointer(r.strip_prefix('#').unwrap())
                            .unwrap()["content"]["application/json"]["schema"]
                            .clone(),
                        _ => response["content"]["application/json"]["schema"].clone(),
                    };
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    #[test]
    fn request_bodies_are_closed_and_name_their_required_fields() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "ExtensionInput",
            "ExtensionUpdate",
            "GroupInput",
            "EntryInput",
            "NumberInput",
            "ProfileInput",
            "AdminInput",
        ] {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
        assert_eq!(schemas["ExtensionInput"]["required"], json!(["number"]));
        assert!(schemas["ExtensionUpdate"].get("required").is_none());
        assert_eq!(schemas["GroupInput"]["required"], json!(["name"]));
        assert_eq!(schemas["ProfileInput"]["required"], json!(["profile"]));
        assert_eq!(
            schemas["ExtensionInput"]["properties"]["number"]["pattern"],
            format!("^{ws}[0-9]{{3,5}}{ws}$", ws = ws())
        );
    }

    #[test]
    fn photos_are_documented_as_any_image() {
        let doc = doc();
        let content = &doc["paths"]["/api/v1/extensions/{number}/photo"]["get"]["responses"]["200"]
            ["content"];
        assert!(content.get("image/*").is_some(), "{content}");
        assert!(content.get("application/octet-stream").is_some());
    }

    #[test]
    fn trimmed_text_pattern_counts_the_trimmed_characters() {
        assert_eq!(
            trimmed_text(3, false),
            format!("^{ws}[^{WS}](?:[\\s\\S]{{0,1}}[^{WS}])?{ws}$", ws = ws())
        );
    }
}
