//! An extension's profile as presence (SPEC §8): the PIDF document (RFC 3863) Kamailio's
//! presence server hands to phones that watch the extension (`SUBSCRIBE`, `Event: presence`).
//!
//! Phones read two things: the basic status (`open`: reachable, `closed`: offline) and the
//! RPID activity (RFC 4480: `busy`, `away`, `meal`, …) with a note for people. The mapping:
//!
//! | profile | basic | activity | note |
//! |---|---|---|---|
//! | `available` | open | — | Available |
//! | `lunch` | open | `meal` | Lunch |
//! | `away` | open | `away` | Away |
//! | `business_trip` | open | `away` | Business trip |
//! | `dnd` | open | `busy` | Do not disturb |
//! | disabled or deleted | closed | — | Unavailable |
//!
//! `lunch` reads as available with a note: calls to it ring (SPEC §8), so a watcher should see
//! someone reachable, and phones that do not know `meal` show plain "online".

use pbx365_domain::directory::xml_escape;
use pbx365_domain::Profile;
use std::str::FromStr;

/// What a watcher of an extension is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// An enabled extension in this profile.
    Profile(Profile),
    /// A disabled or deleted extension: offline.
    Gone,
}

impl Presence {
    /// The presence of an extension in the stored `profile` (an unknown text reads as
    /// available, like the routing, which rings for anything it does not know).
    pub fn of_stored(profile: &str) -> Presence {
        Presence::Profile(Profile::from_str(profile).unwrap_or_default())
    }

    /// (basic status, RPID activity, note).
    fn parts(self) -> (&'static str, Option<&'static str>, &'static str) {
        match self {
            Presence::Profile(Profile::Available) => ("open", None, "Available"),
            Presence::Profile(Profile::Lunch) => ("open", Some("meal"), "Lunch"),
            Presence::Profile(Profile::Away) => ("open", Some("away"), "Away"),
            Presence::Profile(Profile::BusinessTrip) => ("open", Some("away"), "Business trip"),
            Presence::Profile(Profile::Dnd) => ("open", Some("busy"), "Do not disturb"),
            Presence::Gone => ("closed", None, "Unavailable"),
        }
    }

    /// The PIDF document for `entity` (`sip:101@pbx.example.com`), on one line.
    pub fn pidf(self, entity: &str) -> String {
        let (basic, activity, note) = self.parts();
        let entity = xml_escape(entity);
        let activities = activity
            .map(|a| format!("<rpid:activities><rpid:{a}/></rpid:activities>"))
            .unwrap_or_default();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
             xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
             xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{entity}\">\
             <tuple id=\"pbx365\"><status><basic>{basic}</basic></status><note>{note}</note></tuple>\
             <dm:person id=\"pbx365-person\">{activities}<dm:note>{note}</dm:note></dm:person>\
             </presence>"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnd_reads_busy_away_and_business_trip_read_away_and_lunch_stays_reachable() {
        let doc = |p: &str| Presence::of_stored(p).pidf("sip:102@pbx.example.com");
        let dnd = doc("dnd");
        assert!(dnd.contains("<basic>open</basic>") && dnd.contains("<rpid:busy/>"));
        assert!(dnd.contains("<dm:note>Do not disturb</dm:note>"));
        assert!(dnd.contains("entity=\"sip:102@pbx.example.com\""));
        for away in ["away", "business_trip"] {
            assert!(doc(away).contains("<rpid:away/>"), "{away}");
        }
        let lunch = doc("lunch");
        assert!(lunch.contains("<basic>open</basic>") && lunch.contains("<rpid:meal/>"));
        let available = doc("available");
        assert!(available.contains("<basic>open</basic>") && !available.contains("activities"));
        let gone = Presence::Gone.pidf("sip:102@pbx.example.com");
        assert!(gone.contains("<basic>closed</basic>"));
        assert!(!dnd.contains('\n'), "one line");
    }

    #[test]
    fn the_entity_is_escaped() {
        let doc = Presence::of_stored("available").pidf("sip:1\"<&@x");
        assert!(doc.contains("entity=\"sip:1&quot;&lt;&amp;@x\""), "{doc}");
    }
}
