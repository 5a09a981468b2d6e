//! What an Outlook contact becomes in a phonebook (SPEC §5): names, company, job title, mail
//! addresses, and every number kept as written plus its E.164 form (`default_country` for numbers
//! written without a country code). A contact without any number is kept, flagged.
//!
//! https://learn.microsoft.com/graph/api/resources/contact

use pbx365_domain::{PhoneKind, PhoneNumber, PhonebookEntry, PhonebookOwner};
use pbx365_graph::Contact;

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The phonebook entry of `c` in `owner`'s phonebook, from `mailbox` (its id left empty: the
/// planner gives it one).
pub fn entry_of(
    c: &Contact,
    owner: &PhonebookOwner,
    mailbox: &str,
    default_country: &str,
) -> PhonebookEntry {
    let first_name = text(&c.given_name).unwrap_or_default();
    let last_name = text(&c.surname).unwrap_or_default();
    let company = text(&c.company_name);
    let emails: Vec<String> = c
        .email_addresses
        .iter()
        .flatten()
        .filter_map(|e| text(&e.address))
        .collect();
    let mut numbers = Vec::new();
    let mut add = |kind: PhoneKind, raw: &str| {
        if !raw.trim().is_empty() {
            numbers.push(PhoneNumber::new(kind, raw, default_country));
        }
    };
    for n in c.business_phones.iter().flatten() {
        add(PhoneKind::Business, n);
    }
    for n in c.home_phones.iter().flatten() {
        add(PhoneKind::Home, n);
    }
    if let Some(n) = &c.mobile_phone {
        add(PhoneKind::Mobile, n);
    }
    // Outlook may leave the display name empty; the phone still needs something to show.
    let joined = format!("{first_name} {last_name}").trim().to_string();
    let display_name = text(&c.display_name)
        .or((!joined.is_empty()).then_some(joined))
        .or(company.clone())
        .or(emails.first().cloned())
        .unwrap_or_else(|| "(no name)".to_string());
    PhonebookEntry {
        id: String::new(),
        owner: owner.clone(),
        m365_id: Some(c.id.clone()),
        display_name,
        first_name,
        last_name,
        company,
        emails,
        no_number: numbers.is_empty(),
        numbers,
        job_title: text(&c.job_title),
        mailbox: Some(mailbox.to_string()),
    }
}

/// Whether two entries say the same (pbx365's id aside).
pub fn same(a: &PhonebookEntry, b: &PhonebookEntry) -> bool {
    PhonebookEntry {
        id: String::new(),
        ..a.clone()
    } == PhonebookEntry {
        id: String::new(),
        ..b.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx365_graph::mail::EmailAddress;

    fn contact(json: serde_json::Value) -> Contact {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn numbers_are_kept_as_written_and_normalised_with_the_default_country() {
        let c = contact(serde_json::json!({"id": "c1", "displayName": "Jürgen Groß",
            "givenName": "Jürgen", "surname": "Groß", "jobTitle": "Einkauf",
            "businessPhones": ["030 1234567", "+44 20 7946 0958"], "homePhones": [" "],
            "mobilePhone": "0151 23456789", "emailAddresses": [{"address": "j@x.de"}]}));
        let e = entry_of(&c, &PhonebookOwner::Company, "shared@x.de", "DE");
        assert_eq!(e.display_name, "Jürgen Groß");
        assert_eq!(e.job_title.as_deref(), Some("Einkauf"));
        assert_eq!(e.mailbox.as_deref(), Some("shared@x.de"));
        let got: Vec<(PhoneKind, &str, Option<&str>)> = e
            .numbers
            .iter()
            .map(|n| (n.kind, n.raw.as_str(), n.e164.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (PhoneKind::Business, "030 1234567", Some("+49301234567")),
                (
                    PhoneKind::Business,
                    "+44 20 7946 0958",
                    Some("+442079460958")
                ),
                (PhoneKind::Mobile, "0151 23456789", Some("+4915123456789")),
            ]
        );
        assert!(!e.no_number);
        assert_eq!(e.emails, vec!["j@x.de".to_string()]);
    }

    #[test]
    fn a_contact_without_numbers_is_kept_flagged_and_named() {
        let c = Contact {
            id: "c2".into(),
            company_name: Some("株式会社テスト".into()),
            email_addresses: Some(vec![EmailAddress {
                name: None,
                address: Some("info@test.jp".into()),
            }]),
            ..Default::default()
        };
        let e = entry_of(&c, &PhonebookOwner::Personal("200".into()), "u1", "JP");
        assert!(e.no_number && e.numbers.is_empty());
        assert_eq!(e.display_name, "株式会社テスト");
    }
}
