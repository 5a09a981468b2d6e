//! Calendars: a mailbox's events in a time window (`calendarView`, series expanded) and
//! free/busy of many addresses at once (`getSchedule`), both with times in UTC.
//!
//! https://learn.microsoft.com/graph/api/resources/event · https://learn.microsoft.com/graph/api/user-list-calendarview ·
//! https://learn.microsoft.com/graph/api/calendar-getschedule · https://learn.microsoft.com/graph/outlook-get-free-busy-schedule

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::GraphError;
use crate::transport::request::query_value;
use crate::transport::{BatchRequest, GraphClient, GraphRequest, ODataPage, Removed};

/// The event properties pbx365 reads.
const EVENT_SELECT: &str = "id,subject,showAs,start,end,isAllDay,isCancelled,type,sensitivity";

/// Most addresses in one `getSchedule` call.
pub const SCHEDULE_LIMIT: usize = 20;

/// `dateTimeTimeZone`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    /// e.g. `2019-03-15T12:00:00.0000000`.
    pub date_time: String,
    /// e.g. `UTC`.
    pub time_zone: Option<String>,
}

/// A calendar event (calendarView item).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Id.
    pub id: String,
    /// Subject.
    pub subject: Option<String>,
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`, `unknown`.
    pub show_as: Option<String>,
    /// Start.
    pub start: Option<DateTimeTimeZone>,
    /// End (exclusive).
    pub end: Option<DateTimeTimeZone>,
    /// All-day (floating midnight to midnight).
    pub is_all_day: Option<bool>,
    /// Cancelled.
    pub is_cancelled: Option<bool>,
    /// `singleInstance`, `occurrence`, `exception`, `seriesMaster`.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// `normal`, `private`, …
    pub sensitivity: Option<String>,
    /// Present on delta items for removed events.
    #[serde(rename = "@removed", skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

/// One item of a getSchedule answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleItem {
    /// Free/busy status (casing varies: compare case-insensitively).
    pub status: Option<String>,
    /// Start.
    pub start: Option<DateTimeTimeZone>,
    /// End.
    pub end: Option<DateTimeTimeZone>,
    /// Subject, if sharing allows.
    pub subject: Option<String>,
    /// Private, if sharing allows.
    pub is_private: Option<bool>,
}

/// `freeBusyError`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FreeBusyError {
    /// Message.
    pub message: Option<String>,
    /// Response code.
    pub response_code: Option<String>,
}

/// `scheduleInformation` for one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleInformation {
    /// The address asked for.
    #[serde(default)]
    pub schedule_id: String,
    /// One digit per interval: 0 free, 1 tentative, 2 busy, 3 oof, 4 workingElsewhere.
    pub availability_view: Option<String>,
    /// The items.
    #[serde(default)]
    pub schedule_items: Vec<ScheduleItem>,
    /// Set when the address could not be resolved.
    pub error: Option<FreeBusyError>,
}

/// Times in the answer in UTC, whatever the mailbox's time zone.
fn in_utc(req: GraphRequest, mailbox: &str) -> GraphRequest {
    req.mailbox(mailbox)
        .header("Prefer", "outlook.timezone=\"UTC\"")
}

/// Events between two instants (ISO 8601) of `mailbox`'s default calendar, series expanded.
pub fn calendar_view_request(mailbox: &str, start: &str, end: &str) -> GraphRequest {
    let url = format!(
        "{}/calendarView?startDateTime={}&endDateTime={}&$top=100&$select={EVENT_SELECT}",
        super::users::path(mailbox),
        query_value(start),
        query_value(end)
    );
    in_utc(GraphRequest::get(url), mailbox)
}

/// Free/busy of up to [`SCHEDULE_LIMIT`] addresses, asked through `mailbox`.
pub fn schedule_request(
    mailbox: &str,
    schedules: &[String],
    start: &DateTimeTimeZone,
    end: &DateTimeTimeZone,
    interval_minutes: u32,
) -> GraphRequest {
    let body = serde_json::json!({
        "schedules": schedules, "startTime": start, "endTime": end,
        "availabilityViewInterval": interval_minutes.clamp(5, 1440)
    });
    let url = format!("{}/calendar/getSchedule", super::users::path(mailbox));
    in_utc(GraphRequest::with_json(Method::POST, url, body), mailbox)
}

/// Where a calendarView delta read of one mailbox starts: a new round over a window (both
/// instants ISO 8601) or a saved delta link (absolute, as Graph gives it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarRead {
    /// A new delta round over `[start, end]`.
    Window {
        /// Window start.
        start: String,
        /// Window end.
        end: String,
    },
    /// Changes since the saved delta link.
    Since(String),
}

/// The outcome of one mailbox's calendarView delta read: every item of the round (removed
/// ones carry `@removed`), and the link for the next round.
#[derive(Debug, Clone)]
pub struct CalendarDelta {
    /// Whether this was a new round (the items are the whole window, not changes).
    pub full: bool,
    /// The items.
    pub items: Vec<Event>,
    /// The delta link for the next read.
    pub delta_link: String,
}

/// The first URL of a calendarView delta round (`$select` is not allowed on delta).
pub fn calendar_view_delta_path(mailbox: &str, start: &str, end: &str) -> String {
    format!(
        "{}/calendarView/delta?startDateTime={}&endDateTime={}",
        super::users::path(mailbox),
        query_value(start),
        query_value(end)
    )
}

/// Times in UTC and large pages, as one `Prefer` header (a `$batch` sub-request has one map).
const DELTA_PREFER: &str = "outlook.timezone=\"UTC\", odata.maxpagesize=100";

impl GraphClient {
    /// Events between two instants (ISO 8601), series expanded, times in UTC.
    pub async fn calendar_view(
        &self,
        mailbox: &str,
        start: &str,
        end: &str,
    ) -> Result<Vec<Event>, GraphError> {
        self.get_all(calendar_view_request(mailbox, start, end))
            .await
    }

    /// calendarView delta reads of many mailboxes at once through `$batch` (20 per HTTP
    /// request; pages after the first are read in further batches), one answer per `(key,
    /// read)` in order. A mailbox's failure (e.g. an expired link: [`GraphError::DeltaExpired`])
    /// is its own answer and does not stop the others.
    /// https://learn.microsoft.com/graph/api/event-delta · https://learn.microsoft.com/graph/json-batching
    pub async fn calendar_deltas(
        &self,
        reads: Vec<(String, String, CalendarRead)>,
    ) -> Result<Vec<(String, Result<CalendarDelta, GraphError>)>, GraphError> {
        // (key, url, full, items so far); answered ones leave the pending list.
        let mut pending: Vec<(String, String, bool, Vec<Event>)> = reads
            .into_iter()
            .map(|(key, mailbox, read)| match read {
                CalendarRead::Window { start, end } => {
                    let url = calendar_view_delta_path(&mailbox, &start, &end);
                    (key, url, true, Vec::new())
                }
                CalendarRead::Since(link) => (
                    key,
                    self.relative_path(&link).to_string(),
                    false,
                    Vec::new(),
                ),
            })
            .collect();
        let mut out = Vec::new();
        while !pending.is_empty() {
            let requests = pending
                .iter()
                .enumerate()
                .map(|(i, (_, url, _, _))| {
                    let mut r = BatchRequest::get(i.to_string(), url.clone());
                    r.headers.insert("Prefer".into(), DELTA_PREFER.into());
                    r
                })
                .collect();
            let answers = self.batch(requests).await?;
            let mut next = Vec::new();
            for ((key, url, full, mut items), answer) in pending.into_iter().zip(answers) {
                if let Some(err) = answer.error(&url) {
                    out.push((key, Err(err)));
                    continue;
                }
                let page: ODataPage<Event> = match answer.body.map(serde_json::from_value) {
                    Some(Ok(p)) => p,
                    _ => {
                        let err = GraphError::BadResponse(format!("{url}: not a page of events"));
                        out.push((key, Err(err)));
                        continue;
                    }
                };
                items.extend(page.value);
                match (page.next_link, page.delta_link) {
                    (Some(n), _) => {
                        next.push((key, self.relative_path(&n).to_string(), full, items))
                    }
                    (None, Some(delta_link)) => out.push((
                        key,
                        Ok(CalendarDelta {
                            full,
                            items,
                            delta_link,
                        }),
                    )),
                    (None, None) => out.push((
                        key,
                        Err(GraphError::BadResponse(format!(
                            "{url}: a delta page without nextLink or deltaLink"
                        ))),
                    )),
                }
            }
            pending = next;
        }
        Ok(out)
    }

    /// Free/busy of any number of addresses (`getSchedule`, asked through `mailbox`,
    /// [`SCHEDULE_LIMIT`] per call).
    pub async fn get_schedule(
        &self,
        mailbox: &str,
        schedules: &[String],
        start: &DateTimeTimeZone,
        end: &DateTimeTimeZone,
        interval_minutes: u32,
    ) -> Result<Vec<ScheduleInformation>, GraphError> {
        let mut out = Vec::new();
        for chunk in schedules.chunks(SCHEDULE_LIMIT) {
            let req = schedule_request(mailbox, chunk, start, end, interval_minutes);
            let page: ODataPage<ScheduleInformation> = self.send(req).await?.json()?;
            out.extend(page.value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_view_encodes_instants_and_asks_for_utc() {
        let req = calendar_view_request(
            "Ann@x.com",
            "2026-01-01T00:00:00+01:00",
            "2026-01-02T00:00:00Z",
        );
        assert!(
            req.url.starts_with(
                "/users/Ann@x.com/calendarView?startDateTime=2026%2D01%2D01T00%3A00%3A00%2B01%3A00&"
            ),
            "{}",
            req.url
        );
        assert_eq!(req.mailbox.as_deref(), Some("ann@x.com"));
        assert!(req
            .headers
            .contains(&("Prefer".into(), "outlook.timezone=\"UTC\"".into())));
    }
}
