//! The pure rules of user sync (SPEC §3): which Microsoft 365 users become extensions, which
//! fields they map to, and how a report line names them. No I/O; the sync engine applies them.

use crate::settings::SyncSettings;
use crate::{DirectoryUser, Extension, NewExtension, NumberRules, ReportItem, AZURE_AD_GROUP};
use std::collections::HashSet;

/// Which users are in scope this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every enabled member of the tenant.
    All,
    /// Only these object ids (listed users, or transitive members of the chosen groups).
    Ids(HashSet<String>),
}

impl Scope {
    /// Whether the user with object id `id` is selected.
    pub fn contains(&self, id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Ids(ids) => ids.contains(id),
        }
    }
}

/// Why a user is not (or no longer) an extension. `Display` is the report's `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `userType` is `Guest`.
    Guest,
    /// `accountEnabled` is false.
    Disabled,
    /// Not among the chosen users / groups.
    OutOfScope,
    /// Deleted in Microsoft 365 (`@removed` in delta, or absent from a full round).
    Deleted,
    /// No free number left in the configured range.
    RangeFull { start: u64, end: Option<u64> },
    /// A field Microsoft holds cannot be stored (e.g. a malformed mail address).
    InvalidData(String),
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::Guest => f.write_str("guest"),
            SkipReason::Disabled => f.write_str("disabled"),
            SkipReason::OutOfScope => f.write_str("out of scope"),
            SkipReason::Deleted => f.write_str("deleted in Microsoft 365"),
            SkipReason::RangeFull {
                start,
                end: Some(end),
            } => {
                write!(
                    f,
                    "range full: no free extension number from {start} to {end}"
                )
            }
            SkipReason::RangeFull { start, end: None } => {
                write!(
                    f,
                    "range full: no free extension number from {start} upward"
                )
            }
            SkipReason::InvalidData(why) => write!(f, "invalid data: {why}"),
        }
    }
}

/// The settings that shape a plan (a subset of `SyncSettings` plus the number rules).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanConfig {
    /// First number for synced users.
    pub start_extension: u64,
    /// Last number (optional).
    pub end_extension: Option<u64>,
    /// Office phone -> outbound caller ID.
    pub caller_id_from_office_phone: bool,
    /// Grace period before a disabled synced extension is deleted.
    pub delete_after_days: u32,
    /// Mass-deletion guard: absolute count.
    pub max_deletions: u32,
    /// Mass-deletion guard: share of synced extensions, in percent.
    pub max_deletion_percent: u32,
    /// Allowed lengths of extension numbers.
    pub number_rules: NumberRules,
}

impl PlanConfig {
    /// The plan settings of `sync` with the deployment's number lengths.
    pub fn from_settings(sync: &SyncSettings, number_rules: NumberRules) -> Self {
        PlanConfig {
            start_extension: sync.start_extension,
            end_extension: sync.end_extension,
            caller_id_from_office_phone: sync.caller_id_from_office_phone,
            delete_after_days: sync.delete_after_days,
            max_deletions: sync.max_deletions,
            max_deletion_percent: sync.max_deletion_percent,
            number_rules,
        }
    }
}

/// The verdict on one Microsoft 365 user.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Should be an (enabled) extension with these fields.
    Wanted(NewExtension),
    /// Should not be an extension (an existing one gets disabled).
    NotWanted(SkipReason),
    /// Its data cannot be stored: skipped, an existing extension is left as it is.
    Invalid(SkipReason),
}

/// Decides what a user should be, per SPEC §3: members only, enabled only, in scope only,
/// fields mapped as mail-else-UPN, office phone as caller ID when the option is on.
pub fn classify(user: &DirectoryUser, scope: &Scope, cfg: &PlanConfig) -> Verdict {
    if user
        .user_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("member"))
    {
        return Verdict::NotWanted(SkipReason::Guest);
    }
    if user.account_enabled == Some(false) {
        return Verdict::NotWanted(SkipReason::Disabled);
    }
    if !scope.contains(&user.id) {
        return Verdict::NotWanted(SkipReason::OutOfScope);
    }
    match desired_fields(user, cfg) {
        Ok(fields) => Verdict::Wanted(fields),
        Err(why) => Verdict::Invalid(SkipReason::InvalidData(why)),
    }
}

/// The extension fields a user maps to (validated, trimmed).
pub fn desired_fields(user: &DirectoryUser, cfg: &PlanConfig) -> Result<NewExtension, String> {
    let nonempty = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let email = nonempty(&user.mail).or_else(|| nonempty(&user.user_principal_name));
    let caller_id = if cfg.caller_id_from_office_phone {
        user.business_phones
            .iter()
            .map(|p| p.trim())
            .find(|p| !p.is_empty())
            .map(str::to_string)
    } else {
        None
    };
    NewExtension {
        first_name: nonempty(&user.given_name).unwrap_or_default(),
        last_name: nonempty(&user.surname).unwrap_or_default(),
        display_name: nonempty(&user.display_name).unwrap_or_default(),
        email,
        mobile: nonempty(&user.mobile_phone),
        outbound_caller_id: caller_id,
        department: nonempty(&user.department),
        job_title: nonempty(&user.job_title),
        office: nonempty(&user.office_location),
    }
    .validated()
    .map_err(|e| e.to_string())
}

/// Compares the directory fields of `ext` with `want`; returns the names of the changed fields.
pub fn changed_fields(ext: &Extension, want: &NewExtension) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            out.push(name.to_string());
        }
    };
    check("first_name", ext.first_name == want.first_name);
    check("last_name", ext.last_name == want.last_name);
    check("display_name", ext.display_name == want.display_name);
    check("email", ext.email == want.email);
    check("mobile", ext.mobile == want.mobile);
    check(
        "outbound_caller_id",
        ext.outbound_caller_id == want.outbound_caller_id,
    );
    check("department", ext.department == want.department);
    check("job_title", ext.job_title == want.job_title);
    check("office", ext.office == want.office);
    check("groups", ext.groups.iter().any(|g| g == AZURE_AD_GROUP));
    out
}

/// Writes the directory fields of `want` into `ext` and puts it in the "Azure AD" group.
pub fn apply_fields(ext: &mut Extension, want: &NewExtension) {
    ext.first_name = want.first_name.clone();
    ext.last_name = want.last_name.clone();
    ext.display_name = want.display_name.clone();
    ext.email = want.email.clone();
    ext.mobile = want.mobile.clone();
    ext.outbound_caller_id = want.outbound_caller_id.clone();
    ext.department = want.department.clone();
    ext.job_title = want.job_title.clone();
    ext.office = want.office.clone();
    if !ext.groups.iter().any(|g| g == AZURE_AD_GROUP) {
        ext.groups.push(AZURE_AD_GROUP.to_string());
        ext.groups.sort();
    }
}

/// The report line naming an extension (number, object id, name).
pub fn extension_item(ext: &Extension) -> ReportItem {
    ReportItem {
        extension: Some(ext.number.to_string()),
        m365_id: ext.m365_id.clone(),
        name: Some(ext.display_name.clone()),
        ..Default::default()
    }
}

/// The report line naming a Microsoft 365 user and why it was skipped.
pub fn user_item(user: &DirectoryUser, reason: &SkipReason) -> ReportItem {
    ReportItem {
        extension: None,
        m365_id: Some(user.id.clone()),
        name: user
            .display_name
            .clone()
            .or_else(|| user.user_principal_name.clone()),
        fields: Vec::new(),
        reason: Some(reason.to_string()),
    }
}
