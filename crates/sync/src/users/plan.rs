//! Pure planning of a user sync: given the extensions the store holds, the Microsoft 365 users a
//! round saw (or the changed ones, in a delta round), the settings and the scope, compute the
//! extension operations and the report. No I/O; the users kind feeds pages in and the framework
//! applies the ops. The rules for one user (who is wanted, which fields) live in
//! `pbx365_domain::user_rules`.
//!
//! Destructive operations (disable, delete) are kept apart from the rest so that the framework can
//! run them through the mass-deletion guard before anything destructive is written.

use chrono::{DateTime, Duration, Utc};
use pbx365_domain::deletion_guard::{guard, Guard};
use pbx365_domain::numbering::NumberRange;
use pbx365_domain::user_rules::{
    apply_fields, changed_fields, classify, extension_item, user_item, PlanConfig, Scope,
    SkipReason, Verdict,
};
use pbx365_domain::{DirectoryUser, Extension, ExtensionNumber, ExtensionSource, PhotoRef};
use pbx365_store::ExtensionOp;
use std::collections::{HashMap, HashSet};

use super::numbers::Numbers;

/// Operations and report lines of one planning step of user sync.
pub type PlanStep = crate::kind::Step<ExtensionOp>;

/// The planner: carries the extensions it knows and the number allocator across the pages of one
/// run, so page after page sees the numbers already handed out (nothing needs to be written in
/// between).
///
/// It knows either every synced extension ([`Planner::new`], or a full round after
/// [`Planner::know_all`]) or only those the round touches ([`Planner::partial`]: a delta round
/// loads the changed users' extensions with [`Planner::unknown_ids`] / [`Planner::learn`]).
#[derive(Debug, Clone)]
pub struct Planner {
    cfg: PlanConfig,
    now: DateTime<Utc>,
    /// Synced extensions by Microsoft object id (the snapshot, updated as the plan goes).
    by_id: HashMap<String, Extension>,
    numbers: Numbers,
    synced_at_start: usize,
    /// Synced extensions as planned: at the start, plus created, minus deleted.
    synced_total: usize,
    /// Synced extensions taken out of the snapshot to save memory during a full round (they are
    /// in the store and wanted); read again ([`Planner::unknown_ids`]) if they show up again.
    evicted: HashSet<String>,
    /// True when `by_id` (with `evicted`) holds every synced extension.
    complete: bool,
    /// Ids looked up in the store and not found (a partial planner does not ask again).
    absent: HashSet<String>,
}

/// The range synced users get numbers from.
fn number_range(cfg: &PlanConfig) -> NumberRange {
    NumberRange {
        start: cfg.start_extension,
        end: cfg.end_extension,
        max_len: cfg.number_rules.max_len,
    }
}

impl Planner {
    /// A planner over the store's current extensions (local and synced): a complete snapshot.
    pub fn new(
        cfg: PlanConfig,
        now: DateTime<Utc>,
        existing: impl IntoIterator<Item = Extension>,
    ) -> Self {
        let mut taken = Vec::new();
        let mut by_id = HashMap::new();
        for ext in existing {
            taken.push(ext.number.value());
            if ext.source == ExtensionSource::M365 {
                if let Some(id) = ext.m365_id.clone() {
                    by_id.insert(id, ext);
                }
            }
        }
        // The guard's base: active synced extensions (disabled ones are not lost again).
        let synced_at_start = by_id.values().filter(|e| e.enabled).count();
        Planner {
            numbers: Numbers::complete(number_range(&cfg), cfg.number_rules.min_len, taken),
            cfg,
            now,
            synced_total: by_id.len(),
            by_id,
            synced_at_start,
            evicted: HashSet::new(),
            complete: true,
            absent: HashSet::new(),
        }
    }

    /// A planner that knows nothing yet but the store's counts of synced extensions (all, and
    /// enabled): extensions are loaded as the round touches them, numbers as it needs them.
    pub fn partial(cfg: PlanConfig, now: DateTime<Utc>, synced: usize, enabled: usize) -> Self {
        Planner {
            numbers: Numbers::new(number_range(&cfg), cfg.number_rules.min_len),
            cfg,
            now,
            by_id: HashMap::new(),
            synced_at_start: enabled,
            synced_total: synced,
            evicted: HashSet::new(),
            complete: false,
            absent: HashSet::new(),
        }
    }

    /// True when the planner knows every synced extension.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Makes the snapshot complete with every extension of the store (a full round, whose end
    /// disables what no page wanted). Extensions already known keep their planned state.
    pub fn know_all(&mut self, existing: impl IntoIterator<Item = Extension>) {
        for ext in existing {
            self.remember(ext);
        }
        self.complete = true;
        self.absent.clear();
    }

    /// Of `ids`, those whose extension must be read from the store before planning them.
    pub fn unknown_ids<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut out: Vec<String> = ids
            .into_iter()
            .filter(|id| {
                if self.complete {
                    self.evicted.contains(*id)
                } else {
                    !self.by_id.contains_key(*id) && !self.absent.contains(*id)
                }
            })
            .map(str::to_string)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Learns the extensions read for `asked` ([`Planner::unknown_ids`]); an id asked for and not
    /// found has no extension.
    pub fn learn(&mut self, asked: &[String], found: Vec<Extension>) {
        for ext in found {
            if let Some(id) = ext.m365_id.clone() {
                if self.evicted.remove(&id) {
                    self.by_id.insert(id, ext);
                    continue;
                }
            }
            self.remember(ext);
        }
        if !self.complete {
            for id in asked {
                if !self.by_id.contains_key(id) {
                    self.absent.insert(id.clone());
                }
            }
        }
    }

    /// Adds a synced extension read from the store unless the plan already holds it.
    fn remember(&mut self, ext: Extension) {
        if ext.source != ExtensionSource::M365 {
            return;
        }
        if let Some(id) = ext.m365_id.clone() {
            if !self.evicted.contains(&id) {
                self.by_id.entry(id).or_insert(ext);
            }
        }
    }

    /// Synced extensions disabled at or before this instant are deleted unless wanted again
    /// ([`Planner::plan_expired`]); a partial planner must [`Planner::learn`] them first.
    pub fn expiry_limit(&self) -> DateTime<Utc> {
        self.now - Duration::days(i64::from(self.cfg.delete_after_days))
    }

    /// How many numbers users of this batch may need: those without an extension (after their
    /// extensions were learnt).
    pub fn new_users(&self, users: &[DirectoryUser]) -> usize {
        users
            .iter()
            .filter(|u| !self.by_id.contains_key(&u.id))
            .count()
    }

    /// The number allocator (position it and feed it before planning new users).
    pub fn numbers(&mut self) -> &mut Numbers {
        &mut self.numbers
    }

    /// The allocator's position: every number from [`Planner::numbers_floor`] up to it is taken
    /// or handed out by this plan (`None` when no number was needed).
    pub fn numbers_mark(&self) -> Option<u64> {
        self.numbers.mark()
    }

    /// The first number synced users get.
    pub fn numbers_floor(&self) -> u64 {
        self.numbers.floor()
    }

    /// Active synced extensions when the run started (the base of the percentage guard).
    pub fn synced_at_start(&self) -> usize {
        self.synced_at_start
    }

    /// The synced extensions as planned so far.
    pub fn synced(&self) -> impl Iterator<Item = &Extension> {
        self.by_id.values()
    }

    /// Synced extensions after the planned ops: at the start, plus created, minus deleted.
    pub fn synced_count(&self) -> usize {
        self.synced_total
    }

    /// Drops these (wanted, applied) extensions from the snapshot to bound memory in a full
    /// round; their numbers stay taken.
    pub fn evict(&mut self, ids: &[String]) {
        for id in ids {
            if self.by_id.remove(id).is_some() {
                self.evicted.insert(id.clone());
            }
        }
    }

    /// Puts an extension a stored plan will write (a plan this run did not make) into the
    /// snapshot; its number counts as taken.
    pub fn reload(&mut self, ext: Extension) {
        self.numbers.take(ext.number.value());
        if let Some(id) = ext.m365_id.clone() {
            self.evicted.remove(&id);
            self.absent.remove(&id);
            self.by_id.insert(id, ext);
        }
    }

    /// The synced extension of a user, as planned so far.
    pub fn extension_of(&self, m365_id: &str) -> Option<&Extension> {
        self.by_id.get(m365_id)
    }

    /// Records a photo change in the snapshot (so later upserts carry it); returns the extension.
    pub fn set_photo(&mut self, m365_id: &str, photo: Option<PhotoRef>) -> Option<&Extension> {
        let ext = self.by_id.get_mut(m365_id)?;
        ext.photo = photo;
        Some(ext)
    }

    /// Plans the users of one page (full round) or the changed users (delta round).
    /// `removed` are object ids Microsoft reported as deleted (`@removed`).
    pub fn plan_users(
        &mut self,
        users: &[DirectoryUser],
        removed: &[String],
        scope: &Scope,
    ) -> PlanStep {
        let mut step = PlanStep::default();
        for user in users {
            let verdict = classify(user, scope, &self.cfg);
            self.plan_one(user, verdict, &mut step);
        }
        for id in removed {
            let user = DirectoryUser {
                id: id.clone(),
                ..Default::default()
            };
            self.plan_one(&user, Verdict::NotWanted(SkipReason::Deleted), &mut step);
        }
        step
    }

    fn plan_one(&mut self, user: &DirectoryUser, verdict: Verdict, step: &mut PlanStep) {
        match verdict {
            Verdict::Wanted(want) => {
                step.wanted.push(user.id.clone());
                if let Some(ext) = self.by_id.get_mut(&user.id) {
                    let mut fields = changed_fields(ext, &want);
                    let reenable = !ext.enabled;
                    if fields.is_empty() && !reenable {
                        return;
                    }
                    apply_fields(ext, &want);
                    ext.updated_at = self.now;
                    if reenable {
                        ext.enabled = true;
                        ext.disabled_at = None;
                        fields.push("enabled".into());
                    }
                    step.ops.push(ExtensionOp::Sync(ext.clone()));
                    let mut line = extension_item(ext);
                    line.fields = fields;
                    step.report.updated.push(line);
                } else {
                    let Some(number) = self.allocate() else {
                        let reason = SkipReason::RangeFull {
                            start: self.cfg.start_extension,
                            end: self.cfg.end_extension,
                        };
                        step.report.skipped.push(user_item(user, &reason));
                        step.wanted.pop();
                        return;
                    };
                    let mut ext = Extension {
                        number,
                        first_name: String::new(),
                        last_name: String::new(),
                        display_name: String::new(),
                        email: None,
                        mobile: None,
                        outbound_caller_id: None,
                        department: None,
                        job_title: None,
                        office: None,
                        enabled: true,
                        source: ExtensionSource::M365,
                        m365_id: Some(user.id.clone()),
                        photo: None,
                        is_admin: false,
                        groups: Vec::new(),
                        profile: Default::default(),
                        disabled_at: None,
                        updated_at: self.now,
                    };
                    apply_fields(&mut ext, &want);
                    step.report.created.push(extension_item(&ext));
                    step.ops.push(ExtensionOp::Sync(ext.clone()));
                    self.by_id.insert(user.id.clone(), ext);
                    self.synced_total += 1;
                }
            }
            Verdict::Invalid(reason) => {
                // Keep an existing extension as it is: bad data upstream is not a departure.
                if self.by_id.contains_key(&user.id) {
                    step.wanted.push(user.id.clone());
                }
                let mut line = user_item(user, &reason);
                if let Some(ext) = self.by_id.get(&user.id) {
                    line.extension = Some(ext.number.to_string());
                }
                step.report.skipped.push(line);
            }
            Verdict::NotWanted(reason) => {
                if self.by_id.contains_key(&user.id) {
                    self.disable(&user.id, &reason, step);
                } else if reason != SkipReason::Deleted {
                    step.report.skipped.push(user_item(user, &reason));
                }
            }
        }
    }

    fn disable(&mut self, id: &str, reason: &SkipReason, step: &mut PlanStep) {
        let Some(ext) = self.by_id.get_mut(id) else {
            return;
        };
        if !ext.enabled {
            return;
        }
        ext.enabled = false;
        ext.disabled_at = Some(self.now);
        step.destructive.push(ExtensionOp::Disable {
            number: ext.number.to_string(),
            at: self.now,
        });
        let mut line = extension_item(ext);
        line.reason = Some(reason.to_string());
        step.report.disabled.push(line);
    }

    fn allocate(&mut self) -> Option<ExtensionNumber> {
        loop {
            let n = self.numbers.allocate()?;
            if let Ok(num) = ExtensionNumber::parse(&n.to_string(), self.cfg.number_rules) {
                return Some(num);
            }
        }
    }

    /// End of a full round: every synced extension whose user is not in `wanted` is disabled
    /// (reason: deleted when `seen` does not hold it, else it was reported as not wanted already).
    /// Only a complete planner knows who is absent.
    pub fn plan_absent(&mut self, wanted: &HashSet<String>) -> PlanStep {
        debug_assert!(
            self.complete,
            "absence is only known to a complete snapshot"
        );
        let mut step = PlanStep::default();
        let mut gone: Vec<String> = self
            .by_id
            .iter()
            .filter(|(id, e)| e.enabled && !wanted.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        gone.sort_by_key(|id| self.by_id[id].number.value());
        for id in gone {
            self.disable(&id, &SkipReason::Deleted, &mut step);
        }
        step
    }

    /// Synced extensions disabled for longer than `delete_after_days` (and not wanted again)
    /// are deleted.
    pub fn plan_expired(&mut self, wanted: &HashSet<String>) -> PlanStep {
        let mut step = PlanStep::default();
        let limit = self.expiry_limit();
        let mut expired: Vec<String> = self
            .by_id
            .iter()
            .filter(|(id, e)| {
                !e.enabled && !wanted.contains(*id) && e.disabled_at.is_some_and(|at| at <= limit)
            })
            .map(|(id, _)| id.clone())
            .collect();
        expired.sort_by_key(|id| self.by_id[id].number.value());
        for id in expired {
            if let Some(ext) = self.by_id.remove(&id) {
                self.synced_total = self.synced_total.saturating_sub(1);
                step.destructive.push(ExtensionOp::Delete {
                    number: ext.number.to_string(),
                });
                let mut line = extension_item(&ext);
                line.reason = Some(format!(
                    "disabled for more than {} days",
                    self.cfg.delete_after_days
                ));
                step.report.deleted.push(line);
            }
        }
        step
    }

    /// The mass-deletion guard over `destructive` ops (SPEC §3: more than `max_deletions` or
    /// `max_deletion_percent`% of the synced extensions holds the run).
    pub fn guard(&self, destructive: usize) -> Guard {
        guard(
            destructive,
            self.synced_at_start,
            self.cfg.max_deletions,
            self.cfg.max_deletion_percent,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx365_domain::settings::SyncSettings;
    use pbx365_domain::{NumberRules, AZURE_AD_GROUP};

    fn cfg() -> PlanConfig {
        PlanConfig::from_settings(&SyncSettings::default(), NumberRules::default())
    }

    fn now() -> DateTime<Utc> {
        "2026-01-10T12:00:00Z".parse().unwrap()
    }

    fn user(id: &str, name: &str) -> DirectoryUser {
        DirectoryUser {
            id: id.into(),
            display_name: Some(name.into()),
            given_name: Some(name.split(' ').next().unwrap().into()),
            surname: Some(name.split(' ').nth(1).unwrap_or("").into()),
            mail: Some(format!("{}@contoso.com", id)),
            user_principal_name: Some(format!("{}@contoso.onmicrosoft.com", id)),
            business_phones: vec!["+1 425 555 0100".into()],
            mobile_phone: Some("+1 425 555 0199".into()),
            job_title: Some("Engineer".into()),
            department: Some("R&D".into()),
            office_location: Some("B1".into()),
            user_type: Some("Member".into()),
            account_enabled: Some(true),
        }
    }

    fn local(number: &str) -> Extension {
        Extension {
            number: ExtensionNumber::from_trusted(number.into()),
            first_name: "Front".into(),
            last_name: "Desk".into(),
            display_name: "Front Desk".into(),
            email: None,
            mobile: None,
            outbound_caller_id: None,
            department: None,
            job_title: None,
            office: None,
            enabled: true,
            source: ExtensionSource::Local,
            m365_id: None,
            photo: None,
            is_admin: false,
            groups: vec![],
            profile: Default::default(),
            disabled_at: None,
            updated_at: now(),
        }
    }

    /// Applies a step's ops to a snapshot, the way the store would.
    fn apply(exts: &mut Vec<Extension>, step: &PlanStep) {
        for op in step.ops.iter().chain(step.destructive.iter()) {
            match op {
                ExtensionOp::Sync(e) => {
                    exts.retain(|x| x.number != e.number);
                    exts.push(e.clone());
                }
                ExtensionOp::Disable { number, at } => {
                    let e = exts
                        .iter_mut()
                        .find(|x| x.number.as_str() == number)
                        .unwrap();
                    e.enabled = false;
                    e.disabled_at = Some(*at);
                }
                ExtensionOp::Enable { number } => {
                    let e = exts
                        .iter_mut()
                        .find(|x| x.number.as_str() == number)
                        .unwrap();
                    e.enabled = true;
                    e.disabled_at = None;
                }
                ExtensionOp::Delete { number } => exts.retain(|x| x.number.as_str() != number),
            }
        }
    }

    fn full_round(
        exts: &mut Vec<Extension>,
        users: &[DirectoryUser],
        scope: &Scope,
        cfg: PlanConfig,
    ) -> PlanStep {
        full_round_at(exts, users, scope, cfg, now())
    }

    fn full_round_at(
        exts: &mut Vec<Extension>,
        users: &[DirectoryUser],
        scope: &Scope,
        cfg: PlanConfig,
        at: DateTime<Utc>,
    ) -> PlanStep {
        let mut p = Planner::new(cfg, at, exts.clone());
        let mut step = p.plan_users(users, &[], scope);
        let wanted: HashSet<String> = step.wanted.iter().cloned().collect();
        step.extend(p.plan_absent(&wanted));
        step.extend(p.plan_expired(&wanted));
        apply(exts, &step);
        step
    }

    #[test]
    fn members_become_extensions_with_mapped_fields_in_the_azure_ad_group() {
        let mut exts = vec![];
        let step = full_round(&mut exts, &[user("u1", "Anna Berg")], &Scope::All, cfg());
        assert_eq!(step.report.created.len(), 1);
        let e = &exts[0];
        assert_eq!(e.number.as_str(), "100");
        assert_eq!(e.first_name, "Anna");
        assert_eq!(e.last_name, "Berg");
        assert_eq!(e.display_name, "Anna Berg");
        assert_eq!(e.email.as_deref(), Some("u1@contoso.com"));
        assert_eq!(e.mobile.as_deref(), Some("+1 425 555 0199"));
        assert_eq!(e.outbound_caller_id.as_deref(), Some("+1 425 555 0100"));
        assert_eq!(e.department.as_deref(), Some("R&D"));
        assert_eq!(e.job_title.as_deref(), Some("Engineer"));
        assert_eq!(e.office.as_deref(), Some("B1"));
        assert_eq!(e.groups, vec![AZURE_AD_GROUP.to_string()]);
        assert_eq!(e.source, ExtensionSource::M365);
        assert_eq!(e.m365_id.as_deref(), Some("u1"));
    }

    #[test]
    fn email_falls_back_to_upn_and_caller_id_follows_the_option() {
        let mut u = user("u1", "Anna Berg");
        u.mail = None;
        let mut c = cfg();
        c.caller_id_from_office_phone = false;
        let mut exts = vec![];
        full_round(&mut exts, &[u], &Scope::All, c);
        assert_eq!(exts[0].email.as_deref(), Some("u1@contoso.onmicrosoft.com"));
        assert_eq!(exts[0].outbound_caller_id, None);
    }

    #[test]
    fn a_user_without_phone_or_mail_still_gets_an_extension() {
        let mut u = user("u1", "李 小龍");
        u.mail = None;
        u.business_phones.clear();
        u.mobile_phone = None;
        let mut exts = vec![];
        full_round(&mut exts, &[u], &Scope::All, cfg());
        assert_eq!(exts[0].display_name, "李 小龍");
        assert_eq!(exts[0].outbound_caller_id, None);
        assert_eq!(exts[0].mobile, None);
    }

    #[test]
    fn numbers_skip_local_extensions_and_never_reuse_taken_numbers() {
        let mut exts = vec![local("100"), local("102")];
        full_round(
            &mut exts,
            &[user("a", "A A"), user("b", "B B"), user("c", "C C")],
            &Scope::All,
            cfg(),
        );
        let mut synced: Vec<&str> = exts
            .iter()
            .filter(|e| e.source == ExtensionSource::M365)
            .map(|e| e.number.as_str())
            .collect();
        synced.sort();
        assert_eq!(synced, vec!["101", "103", "104"]);
    }

    #[test]
    fn renaming_upn_and_mail_keeps_the_number_and_reports_changed_fields() {
        let mut exts = vec![];
        full_round(
            &mut exts,
            &[user("a", "Anna Berg"), user("b", "Bob Lee")],
            &Scope::All,
            cfg(),
        );
        let mut renamed = user("a", "Anna Svensson");
        renamed.mail = Some("anna.svensson@contoso.com".into());
        renamed.user_principal_name = Some("anna.svensson@contoso.onmicrosoft.com".into());
        let step = full_round(
            &mut exts,
            &[renamed, user("b", "Bob Lee")],
            &Scope::All,
            cfg(),
        );
        assert!(step.report.created.is_empty());
        assert_eq!(step.report.updated.len(), 1);
        assert_eq!(step.report.updated[0].extension.as_deref(), Some("100"));
        assert_eq!(
            step.report.updated[0].fields,
            vec!["last_name", "display_name", "email"]
        );
        let a = exts
            .iter()
            .find(|e| e.m365_id.as_deref() == Some("a"))
            .unwrap();
        assert_eq!(a.number.as_str(), "100");
        assert_eq!(a.email.as_deref(), Some("anna.svensson@contoso.com"));
    }

    #[test]
    fn a_second_identical_run_yields_no_ops() {
        let users = [user("a", "A A"), user("b", "B B")];
        let mut exts = vec![local("150")];
        full_round(&mut exts, &users, &Scope::All, cfg());
        let step = full_round(&mut exts, &users, &Scope::All, cfg());
        assert!(
            step.ops.is_empty() && step.destructive.is_empty(),
            "{step:?}"
        );
        assert!(step.report.is_noop());
    }

    #[test]
    fn guests_disabled_and_out_of_scope_users_are_skipped_with_reasons() {
        let mut guest = user("g", "Gus Guest");
        guest.user_type = Some("Guest".into());
        let mut off = user("d", "Dan Off");
        off.account_enabled = Some(false);
        let scope = Scope::Ids(["a".to_string(), "g".to_string(), "d".to_string()].into());
        let mut exts = vec![];
        let step = full_round(
            &mut exts,
            &[user("a", "A A"), guest, off, user("o", "Out Side")],
            &scope,
            cfg(),
        );
        assert_eq!(exts.len(), 1);
        let reasons: Vec<(&str, &str)> = step
            .report
            .skipped
            .iter()
            .map(|i| (i.m365_id.as_deref().unwrap(), i.reason.as_deref().unwrap()))
            .collect();
        assert_eq!(
            reasons,
            vec![("g", "guest"), ("d", "disabled"), ("o", "out of scope")]
        );
    }

    #[test]
    fn deleted_disabled_guest_and_out_of_scope_users_are_disabled_at_once_not_deleted() {
        let users = [
            user("a", "A A"),
            user("b", "B B"),
            user("c", "C C"),
            user("d", "D D"),
            user("e", "E E"),
        ];
        let mut exts = vec![];
        let mut c = cfg();
        c.max_deletion_percent = 100;
        full_round(&mut exts, &users, &Scope::All, c.clone());
        let mut b = user("b", "B B");
        b.account_enabled = Some(false);
        let mut cc = user("c", "C C");
        cc.user_type = Some("Guest".into());
        let scope = Scope::Ids(["a", "b", "c", "e"].iter().map(|s| s.to_string()).collect());
        // "d" deleted: absent from the round; "e" out of scope? no — "e" in scope; drop "a" from scope
        let scope = match scope {
            Scope::Ids(mut s) => {
                s.remove("a");
                Scope::Ids(s)
            }
            s => s,
        };
        let step = full_round(
            &mut exts,
            &[user("a", "A A"), b, cc, user("e", "E E")],
            &scope,
            c,
        );
        let mut disabled: Vec<(String, String)> = step
            .report
            .disabled
            .iter()
            .map(|i| (i.m365_id.clone().unwrap(), i.reason.clone().unwrap()))
            .collect();
        disabled.sort();
        assert_eq!(
            disabled,
            vec![
                ("a".into(), "out of scope".into()),
                ("b".into(), "disabled".into()),
                ("c".into(), "guest".into()),
                ("d".into(), "deleted in Microsoft 365".into()),
            ]
        );
        assert_eq!(exts.len(), 5, "nothing deleted yet");
        assert_eq!(exts.iter().filter(|e| e.enabled).count(), 1);
    }

    #[test]
    fn disabled_extensions_are_deleted_after_the_grace_period() {
        let mut c = cfg();
        c.max_deletion_percent = 100;
        let mut exts = vec![];
        full_round(
            &mut exts,
            &[user("a", "A A"), user("b", "B B")],
            &Scope::All,
            c.clone(),
        );
        full_round(&mut exts, &[user("a", "A A")], &Scope::All, c.clone());
        let step = full_round_at(
            &mut exts,
            &[user("a", "A A")],
            &Scope::All,
            c.clone(),
            now() + Duration::days(29),
        );
        assert!(step.report.deleted.is_empty());
        let step = full_round_at(
            &mut exts,
            &[user("a", "A A")],
            &Scope::All,
            c,
            now() + Duration::days(30),
        );
        assert_eq!(step.report.deleted.len(), 1);
        assert_eq!(step.report.deleted[0].m365_id.as_deref(), Some("b"));
        assert_eq!(exts.len(), 1);
    }

    #[test]
    fn a_user_back_in_scope_is_re_enabled_with_the_same_number() {
        let mut c = cfg();
        c.max_deletion_percent = 100;
        let mut exts = vec![];
        full_round(
            &mut exts,
            &[user("a", "A A"), user("b", "B B")],
            &Scope::All,
            c.clone(),
        );
        full_round(&mut exts, &[user("a", "A A")], &Scope::All, c.clone());
        let step = full_round(
            &mut exts,
            &[user("a", "A A"), user("b", "B B")],
            &Scope::All,
            c,
        );
        assert_eq!(step.report.updated.len(), 1);
        assert_eq!(step.report.updated[0].fields, vec!["enabled"]);
        let b = exts
            .iter()
            .find(|e| e.m365_id.as_deref() == Some("b"))
            .unwrap();
        assert!(b.enabled && b.disabled_at.is_none());
        assert_eq!(b.number.as_str(), "101");
    }

    #[test]
    fn a_locally_deleted_extension_is_recreated() {
        let mut exts = vec![];
        full_round(
            &mut exts,
            &[user("a", "A A"), user("b", "B B")],
            &Scope::All,
            cfg(),
        );
        exts.retain(|e| e.m365_id.as_deref() != Some("a"));
        let step = full_round(
            &mut exts,
            &[user("a", "A A"), user("b", "B B")],
            &Scope::All,
            cfg(),
        );
        assert_eq!(step.report.created.len(), 1);
        assert_eq!(step.report.created[0].m365_id.as_deref(), Some("a"));
        assert_eq!(exts.len(), 2);
    }

    #[test]
    fn a_full_range_skips_the_named_user_and_keeps_the_rest() {
        let mut c = cfg();
        c.start_extension = 100;
        c.end_extension = Some(101);
        let mut exts = vec![];
        let step = full_round(
            &mut exts,
            &[user("a", "A A"), user("b", "B B"), user("c", "Cy Young")],
            &Scope::All,
            c,
        );
        assert_eq!(exts.len(), 2);
        assert_eq!(step.report.skipped.len(), 1);
        assert_eq!(step.report.skipped[0].name.as_deref(), Some("Cy Young"));
        assert_eq!(
            step.report.skipped[0].reason.as_deref(),
            Some("range full: no free extension number from 100 to 101")
        );
    }

    #[test]
    fn malformed_mail_is_skipped_as_invalid_data_and_an_existing_extension_is_kept() {
        let mut exts = vec![];
        full_round(&mut exts, &[user("a", "A A")], &Scope::All, cfg());
        let mut bad = user("a", "A A");
        bad.mail = Some("not-a-mail".into());
        let mut bad_new = user("n", "New Bad");
        bad_new.mail = Some("x@".into());
        let step = full_round(&mut exts, &[bad, bad_new], &Scope::All, cfg());
        assert!(step.destructive.is_empty() && step.ops.is_empty());
        assert_eq!(step.report.skipped.len(), 2);
        assert!(step.report.skipped[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("invalid data: 'not-a-mail'"));
        assert_eq!(step.report.skipped[0].extension.as_deref(), Some("100"));
        assert!(exts[0].enabled);
    }

    #[test]
    fn removed_users_in_a_delta_round_are_disabled() {
        let mut exts = vec![];
        let mut c = cfg();
        c.max_deletion_percent = 100;
        full_round(
            &mut exts,
            &[user("a", "A A"), user("b", "B B")],
            &Scope::All,
            c.clone(),
        );
        let mut p = Planner::new(c, now(), exts.clone());
        let step = p.plan_users(&[], &["a".into(), "zz".into()], &Scope::All);
        assert_eq!(
            step.destructive,
            vec![ExtensionOp::Disable {
                number: "100".into(),
                at: now()
            }]
        );
        assert_eq!(
            step.report.disabled[0].reason.as_deref(),
            Some("deleted in Microsoft 365")
        );
        assert!(
            step.report.skipped.is_empty(),
            "an unknown removed id is not news"
        );
    }

    #[test]
    fn the_same_user_twice_in_one_round_is_planned_once() {
        let mut exts = vec![];
        let step = full_round(
            &mut exts,
            &[user("a", "A A"), user("a", "A A")],
            &Scope::All,
            cfg(),
        );
        assert_eq!(step.report.created.len(), 1);
        assert_eq!(exts.len(), 1);
    }

    #[test]
    fn planner_guard_uses_the_synced_count_at_start() {
        let mut exts = vec![local("999")];
        let users: Vec<DirectoryUser> = (0..100).map(|i| user(&format!("u{i}"), "X Y")).collect();
        full_round(&mut exts, &users, &Scope::All, cfg());
        let p = Planner::new(cfg(), now(), exts);
        assert_eq!(p.synced_at_start(), 100);
        assert_eq!(p.guard(10), Guard::Pass);
        assert!(matches!(p.guard(11), Guard::Exceeded { .. }));
    }

    #[test]
    fn the_guard_percentage_counts_only_active_synced_extensions() {
        let mut exts = vec![];
        let users: Vec<DirectoryUser> = (0..100).map(|i| user(&format!("u{i}"), "X Y")).collect();
        full_round(&mut exts, &users, &Scope::All, cfg());
        for e in exts.iter_mut().take(50) {
            e.enabled = false;
            e.disabled_at = Some(now());
        }
        let p = Planner::new(cfg(), now(), exts);
        assert_eq!(p.synced_at_start(), 50);
        assert_eq!(p.guard(5), Guard::Pass);
        assert!(matches!(p.guard(6), Guard::Exceeded { synced: 50, .. }));
    }
}
