//! What a sync kind implements to be driven by the framework ([`crate::round`]): read a page of
//! changes from Microsoft 365, plan it against what pbx365 holds, apply the plan together with the
//! cursor. The framework does the rest: cursor per (kind, scope), full and delta rounds, resume
//! after a crash, the mass-deletion guard with hold and one-shot approval, the run record and report.

use async_trait::async_trait;
use pbx365_domain::deletion_guard::Guard;
use pbx365_domain::{SyncKind, SyncReport};
use pbx365_graph::DeltaPage;
use std::collections::HashSet;

use crate::error::SyncResult;

/// Which round is being planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundKind {
    /// A full reconciliation: every item is read; absence at the end means gone.
    Full,
    /// A delta round: only changes are read; absence means nothing.
    Delta,
}

/// Operations and report lines of one planning step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<Op> {
    /// Creates and updates, applied with the page.
    pub ops: Vec<Op>,
    /// Disables and deletes: they go through the mass-deletion guard first.
    pub destructive: Vec<Op>,
    /// The lines of the report these ops make.
    pub report: SyncReport,
    /// Ids that should exist after this step; in a full round, a held record not wanted by any
    /// page is absent from Microsoft 365.
    pub wanted: Vec<String>,
}

impl<Op> Default for Step<Op> {
    fn default() -> Self {
        Step {
            ops: Vec::new(),
            destructive: Vec::new(),
            report: SyncReport::default(),
            wanted: Vec::new(),
        }
    }
}

impl<Op> Step<Op> {
    /// Appends another step.
    pub fn extend(&mut self, other: Step<Op>) {
        self.ops.extend(other.ops);
        self.destructive.extend(other.destructive);
        self.report.append(other.report);
        self.wanted.extend(other.wanted);
    }
}

/// What a kind knows at the start of a run.
pub struct Prepared<S> {
    /// The kind's planning state for this run (a snapshot of what it holds, allocators, ...).
    pub state: S,
    /// A digest of the settings a full round depends on: when it changes, the next run is full.
    pub fingerprint: String,
    /// A reason to run a full round although a delta link is stored.
    pub force_full: Option<String>,
}

/// A Microsoft 365 resource synced into pbx365 through the framework.
///
/// Contract: `apply` writes the ops and the cursor in ONE transaction; `plan` and `plan_end` are
/// pure apart from reading back what the kind itself wrote; `after_apply` is idempotent.
///
/// The framework plans a whole round before it applies anything: each page's ops are stored
/// (serialized, hence the bounds on `Op`) and applied only once the guard passed over the whole
/// plan, or an admin approved that stored plan. A held round changes nothing.
#[async_trait]
pub trait SyncResource: Send + Sync {
    /// One change read from Microsoft (an item, or its removal).
    type Item: Send + Sync;
    /// One write to pbx365's store (stored with the plan before it is applied).
    type Op: Send + Sync + serde::Serialize + serde::de::DeserializeOwned;
    /// The planning state carried across the pages of a run.
    type State: Send + Sync;

    /// The kind named in run records.
    fn kind(&self) -> SyncKind;
    /// The namespace of this resource's cursor and bookkeeping, e.g. `users` or
    /// `contacts:{mailbox}:{folder}`; one delta cursor exists per scope key.
    fn scope_key(&self) -> String;
    /// The id of an item (a removed item has one too).
    fn item_id(item: &Self::Item) -> &str;

    /// Loads the state a run plans against.
    async fn prepare(&self) -> SyncResult<Prepared<Self::State>>;
    /// The first page of a full read (a delta request without a token).
    fn first_link(&self) -> String;
    /// Reads one page: items and the next link or the final delta link.
    async fn read_page(&self, link: &str) -> SyncResult<DeltaPage<Self::Item>>;
    /// Plans some items. In a delta round the items of all pages come at once, one per id.
    async fn plan(
        &self,
        state: &mut Self::State,
        items: Vec<Self::Item>,
        round: RoundKind,
    ) -> SyncResult<Step<Self::Op>>;
    /// Plans the end of a round: in a full round, what was not `wanted` is gone.
    fn plan_end(
        &self,
        state: &mut Self::State,
        wanted: &HashSet<String>,
        round: RoundKind,
    ) -> Step<Self::Op>;
    /// The mass-deletion guard over `destructive` planned removals.
    fn guard(&self, state: &Self::State, destructive: usize) -> Guard;
    /// A reason to distrust a full round that found nothing wanted (a failed read, not everyone
    /// leaving); such a round is held like one over the guard.
    fn implausible(&self, _state: &Self::State, _wanted: &HashSet<String>) -> Option<String> {
        None
    }
    /// The sentence of a held run.
    fn held_reason(&self, guard: Guard) -> String;
    /// Writes `ops` and `cursor` (key, value) in one transaction.
    async fn apply(&self, ops: Vec<Self::Op>, cursor: (&str, &str)) -> SyncResult<()>;
    /// Work that follows a committed step (photos, for users); `wanted` are the step's ids,
    /// `created` those it created.
    async fn after_apply(
        &self,
        _state: &mut Self::State,
        _wanted: &[String],
        _created: &HashSet<String>,
        _report: &mut SyncReport,
    ) -> SyncResult<()> {
        Ok(())
    }
    /// How many of the last applied pages may still have follow-up work running when a run
    /// stops (`after_apply` may leave work in flight until [`Self::follow_up_done`]); a resumed
    /// run redoes the follow-up of that many pages.
    fn follow_up_pages(&self) -> u32 {
        1
    }
    /// Waits for the follow-up work still running; the round's end commits only after it.
    async fn follow_up_done(
        &self,
        _state: &mut Self::State,
        _report: &mut SyncReport,
    ) -> SyncResult<()> {
        Ok(())
    }
    /// Bookkeeping when a round has committed (nothing by default).
    async fn completed(&self, _state: &Self::State) -> SyncResult<()> {
        Ok(())
    }
    /// A full round's page is stored (or applied) and its `wanted` ids will not be planned again
    /// this round: the state may forget them (bounded memory); `replay` and `after_apply` get
    /// what they need back.
    fn forget(&self, _state: &mut Self::State, _wanted: &[String]) {}
    /// Ops of a stored plan this state did not plan itself (pages planned before an interruption,
    /// or an approved held plan) are about to be planned on from or applied: the state learns
    /// what they write (numbers they hand out, records `after_apply` needs). Nothing by default.
    fn replay(&self, _state: &mut Self::State, _ops: &[Self::Op]) {}
}
