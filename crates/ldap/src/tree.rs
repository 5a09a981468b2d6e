//! The directory tree served over LDAP and how a search walks it: the base entry, `ou=company`
//! and `ou=extensions` under it, one `inetOrgPerson` per card, the filters desk phones send
//! (RFC 4511 §4.5.1.7, with three-valued logic) and the attributes a search asks for.

use ldap3_proto::proto::{
    LdapFilter, LdapPartialAttribute, LdapSearchResultEntry, LdapSearchScope, LdapSubstringFilter,
};
use pbx365_domain::directory::DirectoryCard;
use pbx365_domain::phonebook::{dial_forms, to_e164};
use pbx365_domain::PhoneKind;

/// How an attribute's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// caseIgnoreMatch: case and runs of spaces do not count.
    Text,
    /// telephoneNumberMatch: spaces and `- ( ) / .` do not count, and a number equals another
    /// written differently with the same E.164 value.
    Phone,
}

/// One attribute of an entry: its name as served and its values, with what they are compared by.
#[derive(Debug, Clone)]
struct Attr {
    name: &'static str,
    syntax: Syntax,
    values: Vec<String>,
    /// Per value, the strings a filter value is compared with (lowercased text; phone forms).
    keys: Vec<Vec<String>>,
}

/// One entry of the tree.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its DN as served.
    pub dn: String,
    /// Normalised DN (lowercase, no spaces around `,` and `=`).
    pub ndn: String,
    /// Depth below the base DN (0: the base).
    pub depth: usize,
    attrs: Vec<Attr>,
}

/// Normalises a DN for comparison (see `pbx365_app::directory::normalize_dn`).
pub fn normalize_dn(dn: &str) -> String {
    pbx365_app::directory::normalize_dn(dn)
}

fn text_key(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn phone_key(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !"-()/.".contains(*c))
        .collect::<String>()
        .to_lowercase()
}

/// A value for a phone's one-line display.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Entry {
    fn new(dn: String, depth: usize) -> Self {
        Entry {
            ndn: normalize_dn(&dn),
            dn,
            depth,
            attrs: Vec::new(),
        }
    }

    fn text(mut self, name: &'static str, values: Vec<String>) -> Self {
        let values: Vec<String> = values
            .into_iter()
            .map(|v| one_line(&v))
            .filter(|v| !v.is_empty())
            .collect();
        if !values.is_empty() {
            let keys = values.iter().map(|v| vec![text_key(v)]).collect();
            self.attrs.push(Attr {
                name,
                syntax: Syntax::Text,
                values,
                keys,
            });
        }
        self
    }

    fn phones(
        mut self,
        name: &'static str,
        values: Vec<(String, Option<String>)>,
        country: &str,
    ) -> Self {
        if values.is_empty() {
            return self;
        }
        let keys = values
            .iter()
            .map(|(raw, e164)| {
                let mut k = vec![phone_key(raw)];
                if let Some(e) = e164.clone().or_else(|| to_e164(raw, country)) {
                    k.extend(dial_forms(&e));
                }
                k.dedup();
                k
            })
            .collect();
        self.attrs.push(Attr {
            name,
            syntax: Syntax::Phone,
            values: values.into_iter().map(|(raw, _)| raw).collect(),
            keys,
        });
        self
    }

    fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The entry as a search result with the attributes `wanted` (RFC 4511 §4.5.1.8: none or
    /// `*` all user attributes, `1.1` none).
    pub fn result(&self, wanted: &[String], types_only: bool) -> LdapSearchResultEntry {
        let all = wanted.is_empty() || wanted.iter().any(|w| w == "*");
        let attributes = self
            .attrs
            .iter()
            .filter(|a| all || wanted.iter().any(|w| w.eq_ignore_ascii_case(a.name)))
            .map(|a| LdapPartialAttribute {
                atype: a.name.to_string(),
                vals: if types_only {
                    Vec::new()
                } else {
                    a.values.iter().map(|v| v.as_bytes().to_vec()).collect()
                },
            })
            .collect();
        LdapSearchResultEntry {
            dn: self.dn.clone(),
            attributes,
        }
    }
}

/// The whole tree under one base DN, in the order searches return it.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The base DN as configured.
    pub base: String,
    /// Normalised base DN.
    pub nbase: String,
    /// Every entry: the base, the two `ou`s, then the people.
    pub entries: Vec<Entry>,
}

const PERSON: [&str; 4] = ["top", "person", "organizationalPerson", "inetOrgPerson"];

impl Tree {
    /// The tree of `cards` under `base`; numbers written without a country code are compared
    /// in `country`.
    pub fn build(base: &str, cards: &[DirectoryCard], country: &str) -> Tree {
        let first_rdn_value = base
            .split(',')
            .next()
            .and_then(|r| r.split_once('='))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let mut entries = vec![Entry::new(base.to_string(), 0)
            .text(
                "objectClass",
                vec!["top".into(), "dcObject".into(), "organization".into()],
            )
            .text("o", vec!["pbx365".into()])
            .text("dc", vec![first_rdn_value])];
        for ou in ["company", "extensions"] {
            entries.push(
                Entry::new(format!("ou={ou},{base}"), 1)
                    .text(
                        "objectClass",
                        vec!["top".into(), "organizationalUnit".into()],
                    )
                    .text("ou", vec![ou.into()]),
            );
        }
        for c in cards {
            let (dn, uid) = match &c.extension {
                Some(x) => (format!("uid={x},ou=extensions,{base}"), x.clone()),
                None => {
                    let id = c.uid.trim_start_matches("company-").to_string();
                    (format!("uid={id},ou=company,{base}"), id)
                }
            };
            let numbers = |kinds: &[PhoneKind]| -> Vec<(String, Option<String>)> {
                c.numbers
                    .iter()
                    .filter(|n| kinds.contains(&n.kind))
                    .map(|n| (n.raw.clone(), n.e164.clone()))
                    .collect()
            };
            let mut office: Vec<(String, Option<String>)> =
                c.extension.iter().map(|x| (x.clone(), None)).collect();
            office.extend(numbers(&[PhoneKind::Business, PhoneKind::Other]));
            let sn = if c.last_name.trim().is_empty() {
                c.display_name.clone()
            } else {
                c.last_name.clone()
            };
            entries.push(
                Entry::new(dn, 2)
                    .text(
                        "objectClass",
                        PERSON.iter().map(|s| s.to_string()).collect(),
                    )
                    .text("uid", vec![uid])
                    .text("cn", vec![c.display_name.clone()])
                    .text("displayName", vec![c.display_name.clone()])
                    .text("sn", vec![sn])
                    .text("givenName", vec![c.first_name.clone()])
                    .phones("telephoneNumber", office, country)
                    .phones("mobile", numbers(&[PhoneKind::Mobile]), country)
                    .phones("homePhone", numbers(&[PhoneKind::Home]), country)
                    .text("mail", c.emails.clone())
                    .text("o", c.company.iter().cloned().collect()),
            );
        }
        Tree {
            base: base.to_string(),
            nbase: normalize_dn(base),
            entries,
        }
    }

    /// The entries in scope of a search from `base` (None: no such object).
    pub fn in_scope(&self, base: &str, scope: &LdapSearchScope) -> Option<Vec<&Entry>> {
        let nbase = normalize_dn(base);
        let Some(anchor) = self.entries.iter().find(|e| e.ndn == nbase) else {
            // A search from above our base (e.g. "" or "dc=example" over "dc=pbx365,dc=example")
            // sees the whole tree in a subtree scope.
            let above = nbase.is_empty() || self.nbase.ends_with(&format!(",{nbase}"));
            return match scope {
                LdapSearchScope::Subtree | LdapSearchScope::Children if above => {
                    Some(self.entries.iter().collect())
                }
                _ => None,
            };
        };
        let under = |e: &&Entry| e.ndn.ends_with(&format!(",{nbase}"));
        Some(match scope {
            LdapSearchScope::Base => vec![anchor],
            LdapSearchScope::OneLevel => self
                .entries
                .iter()
                .filter(|e| under(e) && e.depth == anchor.depth + 1)
                .collect(),
            LdapSearchScope::Subtree => self
                .entries
                .iter()
                .filter(|e| e.ndn == nbase || under(e))
                .collect(),
            LdapSearchScope::Children => self.entries.iter().filter(under).collect(),
        })
    }
}

/// The result of a filter on an entry (RFC 4511 §4.5.1.7: TRUE, FALSE or Undefined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    /// Matches.
    True,
    /// Does not match.
    False,
    /// Cannot be decided (unknown attribute, unsupported matching rule).
    Undefined,
}

impl From<bool> for Tri {
    fn from(b: bool) -> Self {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// Whether `entry` matches `filter`.
pub fn matches(entry: &Entry, filter: &LdapFilter) -> Tri {
    match filter {
        LdapFilter::And(fs) => {
            let mut out = Tri::True;
            for f in fs {
                match matches(entry, f) {
                    Tri::False => return Tri::False,
                    Tri::Undefined => out = Tri::Undefined,
                    Tri::True => {}
                }
            }
            out
        }
        LdapFilter::Or(fs) => {
            let mut out = Tri::False;
            for f in fs {
                match matches(entry, f) {
                    Tri::True => return Tri::True,
                    Tri::Undefined => out = Tri::Undefined,
                    Tri::False => {}
                }
            }
            out
        }
        LdapFilter::Not(f) => match matches(entry, f) {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Undefined => Tri::Undefined,
        },
        LdapFilter::Present(a) => entry.attr(a).is_some().into(),
        LdapFilter::Equality(a, v) | LdapFilter::Approx(a, v) => compare(entry, a, |attr, keys| {
            // A number's keys hold every form it may be written in (see `Entry::phones`).
            let want = key_of(attr.syntax, v);
            keys.contains(&want)
        }),
        LdapFilter::Substring(a, sub) => compare(entry, a, |attr, keys| {
            keys.iter().any(|k| substring(k, sub, attr.syntax))
        }),
        LdapFilter::GreaterOrEqual(a, v) => {
            compare(entry, a, |attr, keys| keys[0] >= key_of(attr.syntax, v))
        }
        LdapFilter::LessOrEqual(a, v) => {
            compare(entry, a, |attr, keys| keys[0] <= key_of(attr.syntax, v))
        }
        LdapFilter::Extensible(_) => Tri::Undefined,
    }
}

fn key_of(syntax: Syntax, v: &str) -> String {
    match syntax {
        Syntax::Text => text_key(v),
        Syntax::Phone => phone_key(v),
    }
}

/// Applies `test` to each value's keys of attribute `a`; Undefined when the entry has no such
/// attribute type in its schema (we know only the attributes we serve).
fn compare(entry: &Entry, a: &str, test: impl Fn(&Attr, &[String]) -> bool) -> Tri {
    match entry.attr(a) {
        Some(attr) => attr.keys.iter().any(|keys| test(attr, keys)).into(),
        None if KNOWN.iter().any(|k| k.eq_ignore_ascii_case(a)) => Tri::False,
        None => Tri::Undefined,
    }
}

/// Attribute types of our schema; a filter on another one is Undefined.
const KNOWN: [&str; 14] = [
    "objectClass",
    "cn",
    "sn",
    "givenName",
    "displayName",
    "uid",
    "telephoneNumber",
    "mobile",
    "homePhone",
    "mail",
    "o",
    "ou",
    "dc",
    "facsimileTelephoneNumber",
];

fn substring(value: &str, sub: &LdapSubstringFilter, syntax: Syntax) -> bool {
    let mut rest = value;
    if let Some(i) = &sub.initial {
        let i = key_of(syntax, i);
        match rest.strip_prefix(i.as_str()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    for any in &sub.any {
        let any = key_of(syntax, any);
        match rest.find(any.as_str()) {
            Some(pos) => rest = &rest[pos + any.len()..],
            None => return false,
        }
    }
    match &sub.final_ {
        Some(f) => rest.ends_with(key_of(syntax, f).as_str()),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::parse_ldap_filter_str;
    use pbx365_domain::PhoneNumber;

    fn tree() -> Tree {
        let card =
            |uid: &str, name: &str, first: &str, last: &str, ext: Option<&str>, mobile: &str| {
                DirectoryCard {
                    uid: uid.into(),
                    display_name: name.into(),
                    first_name: first.into(),
                    last_name: last.into(),
                    company: Some("Contoso".into()),
                    emails: vec![format!("{first}@contoso.example").to_lowercase()],
                    extension: ext.map(str::to_string),
                    numbers: vec![PhoneNumber {
                        kind: PhoneKind::Mobile,
                        raw: mobile.into(),
                        e164: to_e164(mobile, "DE"),
                    }],
                }
            };
        Tree::build(
            "dc=pbx365,dc=example",
            &[
                card(
                    "company-a1",
                    "Anna Berg",
                    "Anna",
                    "Berg",
                    None,
                    "+49 170 1234567",
                ),
                card(
                    "ext-201",
                    "Bernd Clausen",
                    "Bernd",
                    "Clausen",
                    Some("201"),
                    "0171 7654321",
                ),
            ],
            "DE",
        )
    }

    fn hits(filter: &str) -> Vec<String> {
        let t = tree();
        let f = parse_ldap_filter_str(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        t.in_scope("dc=pbx365,dc=example", &LdapSearchScope::Subtree)
            .unwrap()
            .into_iter()
            .filter(|e| matches(e, &f) == Tri::True)
            .map(|e| e.dn.clone())
            .collect()
    }

    #[test]
    fn the_filters_desk_phones_send() {
        // Yealink's default name filter, Snom's, Grandstream's and Fanvil's shapes.
        assert_eq!(
            hits("(|(cn=ann*)(sn=ann*))"),
            ["uid=a1,ou=company,dc=pbx365,dc=example"]
        );
        assert_eq!(
            hits("(&(objectClass=person)(|(cn=*ERN*)(givenName=*ern*)))").len(),
            1
        );
        assert_eq!(
            hits("(|(telephoneNumber=201)(mobile=201))"),
            ["uid=201,ou=extensions,dc=pbx365,dc=example"]
        );
        // The same mobile number written three ways.
        for n in ["+491701234567", "+49-170-1234567", "01701234567"] {
            assert_eq!(hits(&format!("(mobile={n})")).len(), 1, "{n}");
        }
        assert_eq!(hits("(mobile=0171*)").len(), 1);
        assert_eq!(
            hits("(&(objectClass=inetOrgPerson)(telephoneNumber=*))").len(),
            1
        );
        assert_eq!(hits("(objectClass=inetOrgPerson)").len(), 2);
        assert_eq!(hits("(!(givenName=anna))").len(), 4);
        // Unknown attribute: Undefined, and NOT of Undefined is still not a match.
        assert!(hits("(nosuchattr=x)").is_empty());
        assert!(hits("(!(nosuchattr=x))").is_empty());
    }

    #[test]
    fn scopes_walk_the_tree() {
        let t = tree();
        let count = |base: &str, scope| t.in_scope(base, &scope).map(|v| v.len());
        assert_eq!(
            count("dc=pbx365,dc=example", LdapSearchScope::Base),
            Some(1)
        );
        assert_eq!(
            count("DC=pbx365, DC=example", LdapSearchScope::OneLevel),
            Some(2)
        );
        assert_eq!(
            count("ou=company,dc=pbx365,dc=example", LdapSearchScope::OneLevel),
            Some(1)
        );
        assert_eq!(count("dc=example", LdapSearchScope::Subtree), Some(5));
        assert_eq!(count("dc=other", LdapSearchScope::Subtree), None);
    }
}
