//! Calendars: a mailbox's events in a time window (`calendarView`, series expanded) and
//! free/busy of many addresses at once (`getSchedule`), both with times in UTC.
//!
//! https://learn.microsoft.com/graph/api/resources/event · https://learn.microsoft.com/graph/api/user-list-calendarview ·
//! https://learn.microsoft.com/graph/api/calendar-getschedule · https://learn.microsoft.com/graph/outlook-get-free-busy-schedule

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::GraphError;
use crate::transport::request::query_value;
use crate::transport::{GraphClient, GraphRequest, ODataPage, Removed};

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
