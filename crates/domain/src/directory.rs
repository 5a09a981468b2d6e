//! The directory desk phones read: the company phonebook plus the enabled extensions, as one
//! list of cards, and its exports (Yealink/Fanvil remote XML phonebook, vCard 3.0/4.0, CSV).
//! Pure text; every format escapes what its syntax reserves, so any name survives a parser.

use crate::{Extension, PhoneKind, PhoneNumber, PhonebookEntry};

/// One person or place a desk phone lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryCard {
    /// Stable and unique: `company-{entry id}` or `ext-{number}`.
    pub uid: String,
    /// Name shown.
    pub display_name: String,
    /// Given name.
    pub first_name: String,
    /// Surname.
    pub last_name: String,
    /// Company (phonebook entries only).
    pub company: Option<String>,
    /// Mail addresses.
    pub emails: Vec<String>,
    /// The extension number, for cards of extensions.
    pub extension: Option<String>,
    /// Phone numbers as written (with E.164 where known).
    pub numbers: Vec<PhoneNumber>,
}

impl DirectoryCard {
    /// The numbers of one kind, as written.
    pub fn numbers_of(&self, kind: PhoneKind) -> impl Iterator<Item = &str> {
        self.numbers
            .iter()
            .filter(move |n| n.kind == kind)
            .map(|n| n.raw.as_str())
    }
}

/// The cards of the company phonebook and of the enabled extensions, ordered by name
/// (case-insensitive), then by uid.
pub fn cards(company: &[PhonebookEntry], extensions: &[Extension]) -> Vec<DirectoryCard> {
    let mut out: Vec<DirectoryCard> = company
        .iter()
        .map(|e| DirectoryCard {
            uid: format!("company-{}", e.id),
            display_name: e.display_name.clone(),
            first_name: e.first_name.clone(),
            last_name: e.last_name.clone(),
            company: e.company.clone(),
            emails: e.emails.clone(),
            extension: None,
            numbers: e.numbers.clone(),
        })
        .collect();
    out.extend(extensions.iter().filter(|x| x.enabled).map(|x| {
        let mut numbers = Vec::new();
        let mut push = |kind, raw: &Option<String>| {
            if let Some(raw) = raw.as_deref().filter(|r| !r.trim().is_empty()) {
                numbers.push(PhoneNumber {
                    kind,
                    raw: raw.trim().to_string(),
                    e164: None,
                });
            }
        };
        push(PhoneKind::Business, &x.outbound_caller_id);
        push(PhoneKind::Mobile, &x.mobile);
        DirectoryCard {
            uid: format!("ext-{}", x.number.as_str()),
            display_name: x.display_name.clone(),
            first_name: x.first_name.clone(),
            last_name: x.last_name.clone(),
            company: None,
            emails: x.email.iter().cloned().collect(),
            extension: Some(x.number.as_str().to_string()),
            numbers,
        }
    }));
    out.sort_by(|a, b| {
        a.display_name
            .to_lowercase()
            .cmp(&b.display_name.to_lowercase())
            .then_with(|| a.uid.cmp(&b.uid))
    });
    out
}

/// Text for one line of a phone's screen: line breaks, tabs and other control characters become
/// a space (XML 1.0 cannot carry most of them, and a phone shows one line).
fn one_line(s: &str) -> String {
    let spaced: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// XML character data / attribute value with the five reserved characters escaped (and line
/// breaks and other control characters turned into single spaces: XML 1.0 forbids most of them).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in one_line(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// The Yealink remote XML phonebook (`YealinkIPPhoneDirectory`, also read by Fanvil phones):
/// one `DirectoryEntry` per card, its numbers as `Telephone` elements labelled by kind, the
/// extension first.
pub fn yealink_xml(cards: &[DirectoryCard]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<YealinkIPPhoneDirectory>\n");
    for c in cards {
        out.push_str("  <DirectoryEntry>\n    <Name>");
        out.push_str(&xml_escape(&c.display_name));
        out.push_str("</Name>\n");
        let ext = c.extension.iter().map(|n| ("Extension", n.as_str()));
        let numbers = c
            .numbers
            .iter()
            .map(|n| (kind_label(n.kind), n.raw.as_str()));
        for (label, number) in ext.chain(numbers) {
            out.push_str(&format!(
                "    <Telephone label=\"{label}\">{}</Telephone>\n",
                xml_escape(number)
            ));
        }
        out.push_str("  </DirectoryEntry>\n");
    }
    out.push_str("</YealinkIPPhoneDirectory>\n");
    out
}

fn kind_label(kind: PhoneKind) -> &'static str {
    match kind {
        PhoneKind::Business => "Office",
        PhoneKind::Mobile => "Mobile",
        PhoneKind::Home => "Home",
        PhoneKind::Other => "Other",
    }
}

/// vCard version of [`vcards`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcardVersion {
    /// RFC 2426, what most phones and address books import.
    V3,
    /// RFC 6350.
    V4,
}

/// A vCard text value (RFC 6350 §3.4, RFC 2426 §4): backslash, comma, semicolon and line breaks
/// escaped; other control characters dropped.
fn vcard_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 6350 §3.2) without splitting a UTF-8 sequence.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// Every card as a vCard (CRLF line ends, folded lines, escaped text).
pub fn vcards(cards: &[DirectoryCard], version: VcardVersion) -> String {
    let mut out = String::new();
    for c in cards {
        let mut lines = vec![
            "BEGIN:VCARD".to_string(),
            match version {
                VcardVersion::V3 => "VERSION:3.0".to_string(),
                VcardVersion::V4 => "VERSION:4.0".to_string(),
            },
            format!("UID:{}", vcard_text(&c.uid)),
            format!("FN:{}", vcard_text(&c.display_name)),
            format!(
                "N:{};{};;;",
                vcard_text(&c.last_name),
                vcard_text(&c.first_name)
            ),
        ];
        if let Some(o) = &c.company {
            lines.push(format!("ORG:{}", vcard_text(o)));
        }
        let typed = |kind: PhoneKind| match (version, kind) {
            (VcardVersion::V3, PhoneKind::Business) => "WORK,VOICE",
            (VcardVersion::V3, PhoneKind::Mobile) => "CELL,VOICE",
            (VcardVersion::V3, PhoneKind::Home) => "HOME,VOICE",
            (VcardVersion::V3, PhoneKind::Other) => "VOICE",
            (VcardVersion::V4, PhoneKind::Business) => "work,voice",
            (VcardVersion::V4, PhoneKind::Mobile) => "cell,voice",
            (VcardVersion::V4, PhoneKind::Home) => "home,voice",
            (VcardVersion::V4, PhoneKind::Other) => "voice",
        };
        if let Some(x) = &c.extension {
            lines.push(format!(
                "TEL;TYPE={}:{}",
                typed(PhoneKind::Business),
                vcard_text(x)
            ));
        }
        for n in &c.numbers {
            lines.push(format!("TEL;TYPE={}:{}", typed(n.kind), vcard_text(&n.raw)));
        }
        for e in &c.emails {
            lines.push(format!("EMAIL;TYPE=INTERNET:{}", vcard_text(e)));
        }
        lines.push("END:VCARD".to_string());
        for l in lines {
            fold(&l, &mut out);
        }
    }
    out
}

/// The CSV header of [`csv`].
pub const CSV_HEADER: [&str; 10] = [
    "display_name",
    "first_name",
    "last_name",
    "company",
    "extension",
    "business",
    "mobile",
    "home",
    "other",
    "email",
];

/// One CSV field (RFC 4180): quoted when it holds a quote, comma, semicolon or line break.
/// Text that a spreadsheet would run as a formula (`= + - @` first) gets a leading `'`; numbers
/// are digits and `+ - ( ) / . * #` only and are kept as written.
fn csv_field(s: &str, text: bool) -> String {
    let s = if text && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains(['"', ',', ';', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The cards as CSV (UTF-8, CRLF, a header row); several numbers of a kind or several mail
/// addresses are joined by `, ` inside their field.
pub fn csv(cards: &[DirectoryCard]) -> String {
    let mut out = CSV_HEADER.join(",");
    out.push_str("\r\n");
    for c in cards {
        let join = |kind| c.numbers_of(kind).collect::<Vec<_>>().join(", ");
        let row = [
            csv_field(&c.display_name, true),
            csv_field(&c.first_name, true),
            csv_field(&c.last_name, true),
            csv_field(c.company.as_deref().unwrap_or_default(), true),
            csv_field(c.extension.as_deref().unwrap_or_default(), false),
            csv_field(&join(PhoneKind::Business), false),
            csv_field(&join(PhoneKind::Mobile), false),
            csv_field(&join(PhoneKind::Home), false),
            csv_field(&join(PhoneKind::Other), false),
            csv_field(&c.emails.join(", "), true),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(name: &str) -> DirectoryCard {
        DirectoryCard {
            uid: "company-1".into(),
            display_name: name.into(),
            first_name: "A".into(),
            last_name: name.into(),
            company: Some("X & Y".into()),
            emails: vec!["a@b.example".into()],
            extension: None,
            numbers: vec![PhoneNumber {
                kind: PhoneKind::Mobile,
                raw: "+49 170 1".into(),
                e164: None,
            }],
        }
    }

    #[test]
    fn xml_escapes_reserved_characters_and_flattens_lines() {
        let xml = yealink_xml(&[card("A&B <C> \"D\" 'E'\nF")]);
        assert!(
            xml.contains("<Name>A&amp;B &lt;C&gt; &quot;D&quot; &apos;E&apos; F</Name>"),
            "{xml}"
        );
        assert!(xml.contains("<Telephone label=\"Mobile\">+49 170 1</Telephone>"));
    }

    #[test]
    fn vcard_escapes_and_folds_without_splitting_characters() {
        let long = "😀".repeat(40);
        let v = vcards(&[card(&format!("a,b;c\\d\ne{long}"))], VcardVersion::V3);
        assert!(v.contains("FN:a\\,b\\;c\\\\d\\ne"), "{v}");
        for line in v.split("\r\n") {
            assert!(line.len() <= 75, "{line}");
        }
        assert!(v.starts_with("BEGIN:VCARD\r\nVERSION:3.0\r\n"));
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let c = csv(&[card("=SUM(1,2) \"q\"")]);
        assert!(c.contains("\"'=SUM(1,2) \"\"q\"\"\""), "{c}");
        assert!(c.contains(",+49 170 1,"), "{c}");
    }
}
