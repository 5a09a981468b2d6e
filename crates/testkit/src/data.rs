//! Test data: extensions and ids that look like the real thing.

use chrono::TimeZone;
use pbx365_domain::{Extension, ExtensionNumber, ExtensionSource, ProfileState, AZURE_AD_GROUP};
use pbx365_store::{ExtensionOp, Store, StoreResult};

/// Writes test extensions through the sync's field-owned write ([`ExtensionOp::Sync`]: a new
/// extension gets every field given, an existing one of the same object id only the sync's
/// fields), then puts them in the other groups they name (created when missing). The store has no
/// whole-row write; this is how fixtures get synced extensions.
pub async fn put_extensions(store: &Store, exts: &[Extension]) -> StoreResult<()> {
    let ops: Vec<ExtensionOp> = exts.iter().cloned().map(ExtensionOp::Sync).collect();
    store.apply_extension_ops(&ops, None).await?;
    for e in exts {
        for g in e.groups.iter().filter(|g| g.as_str() != AZURE_AD_GROUP) {
            if store.get_group(g).await?.is_none() {
                store.create_group(g, "").await?;
            }
            store.add_group_member(g, e.number.as_str()).await?;
        }
    }
    Ok(())
}

/// A synced extension with every field filled.
pub fn synced_extension(number: &str, m365_id: &str) -> Extension {
    Extension {
        number: ExtensionNumber::from_trusted(number.to_string()),
        first_name: "Anna".into(),
        last_name: format!("Berg {number}"),
        display_name: format!("Anna Berg {number}"),
        email: Some(format!("anna.{number}@contoso.com")),
        mobile: Some("+49 170 1234567".into()),
        outbound_caller_id: Some("+49 30 1234567".into()),
        department: Some("Sales".into()),
        job_title: Some("Account manager".into()),
        office: Some("Berlin".into()),
        enabled: true,
        source: ExtensionSource::M365,
        m365_id: Some(m365_id.to_string()),
        photo: None,
        is_admin: false,
        groups: vec![AZURE_AD_GROUP.to_string()],
        profile: ProfileState::default(),
        disabled_at: None,
        updated_at: chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
    }
}

/// A synced extension of a person named `first` `last`, its object id made from the number
/// (numbers of digits only), mail `first.last@contoso.com` (lower case).
pub fn synced_person(number: &str, first: &str, last: &str) -> Extension {
    let n: u32 = number.parse().expect("a number of digits");
    Extension {
        first_name: first.into(),
        last_name: last.into(),
        display_name: format!("{first} {last}"),
        email: Some(format!("{first}.{last}@contoso.com").to_lowercase()),
        ..synced_extension(number, &object_id(n))
    }
}

/// A plausible Microsoft object id for test number `n`.
pub fn object_id(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

/// The fields of an extension a client sets through the API.
pub const EXTENSION_FIELDS: [&str; 10] = [
    "number",
    "first_name",
    "last_name",
    "display_name",
    "email",
    "mobile",
    "outbound_caller_id",
    "department",
    "job_title",
    "office",
];

/// The keys every sync run report carries (API and `pbx365 sync --json`).
pub const RUN_REPORT_KEYS: [&str; 9] = [
    "id",
    "started_at",
    "finished_at",
    "created",
    "updated",
    "disabled",
    "deleted",
    "skipped",
    "errors",
];

/// The checks `pbx365 m365 doctor` and the console's connection check run besides one per
/// permission.
pub const DOCTOR_CHECKS: [&str; 5] = [
    "configuration",
    "key pair",
    "certificate expiry",
    "token",
    "Microsoft Graph",
];

/// A 1x1 PNG.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];
