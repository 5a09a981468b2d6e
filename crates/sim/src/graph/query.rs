//! Query options on directory collections (`/users`, `/groups`, member lists): `$filter`,
//! `$search`, `$orderby`, `$count` and the `ConsistencyLevel: eventual` rules of advanced
//! queries. Options the sim does not support fail as Graph fails them (400), never silently.
//!
//! Docs: https://learn.microsoft.com/graph/aad-advanced-queries ·
//! https://learn.microsoft.com/graph/filter-query-parameter ·
//! https://learn.microsoft.com/graph/search-query-parameter ·
//! https://learn.microsoft.com/graph/api/user-list (examples).

use std::cmp::Ordering;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::{graph_error, Query};
use crate::tenant::{Group, User};

/// What a directory resource allows in query options.
pub struct Schema {
    /// `User` or `Group` (in error messages).
    pub resource: &'static str,
    /// Properties `$filter` accepts (canonical spelling).
    pub filterable: &'static [&'static str],
    /// String-collection properties `any()` accepts.
    pub collections: &'static [&'static str],
    /// Properties `$orderby` accepts without an advanced query.
    pub sortable: &'static [&'static str],
    /// Properties `$search` accepts.
    pub searchable: &'static [&'static str],
}

/// Users: https://learn.microsoft.com/graph/api/resources/user (property table, "Supports $filter").
pub const USERS: Schema = Schema {
    resource: "User",
    filterable: &[
        "id",
        "userPrincipalName",
        "displayName",
        "givenName",
        "surname",
        "mail",
        "mobilePhone",
        "jobTitle",
        "department",
        "officeLocation",
        "preferredLanguage",
        "userType",
        "accountEnabled",
    ],
    collections: &["businessPhones"],
    sortable: &["displayName", "userPrincipalName"],
    searchable: &[
        "displayName",
        "givenName",
        "surname",
        "mail",
        "userPrincipalName",
    ],
};

/// Groups: https://learn.microsoft.com/graph/api/resources/group.
pub const GROUPS: Schema = Schema {
    resource: "Group",
    filterable: &[
        "id",
        "displayName",
        "description",
        "mail",
        "mailNickname",
        "mailEnabled",
        "securityEnabled",
    ],
    collections: &["groupTypes"],
    sortable: &["displayName"],
    searchable: &["displayName", "description", "mail"],
};

/// A directory object the query options can look into.
pub trait Filterable {
    /// The value of a property (`Null` when unset).
    fn prop(&self, name: &str) -> Value;
}

impl Filterable for User {
    fn prop(&self, name: &str) -> Value {
        self.get(name)
    }
}

impl Filterable for Group {
    fn prop(&self, name: &str) -> Value {
        self.to_json().remove(name).unwrap_or(Value::Null)
    }
}

// ----- $filter ------------------------------------------------------------------------------

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `prop eq value` (strings compare case-insensitively, as the directory does).
    Eq(String, Value),
    /// `prop ne value` (advanced query).
    Ne(String, Value),
    /// `startswith(prop,'x')`.
    StartsWith(String, String),
    /// `endswith(prop,'x')` (advanced query).
    EndsWith(String, String),
    /// `prop in ('a','b')`.
    In(String, Vec<Value>),
    /// `prop/any(x:x eq 'v')`, or with `startswith(x,'v')` when the flag is set (advanced).
    Any(String, String, bool),
}

impl Filter {
    /// Parses the subset of OData `$filter` the sim supports for `schema`; the error is Graph's
    /// message.
    pub fn parse(s: &str, schema: &'static Schema) -> Result<Filter, String> {
        let toks = tokenize(s)?;
        let mut p = Parser {
            toks,
            pos: 0,
            schema,
        };
        let f = p.or()?;
        if p.pos != p.toks.len() {
            return Err(format!(
                "Invalid filter clause: syntax error at position {}.",
                p.pos
            ));
        }
        Ok(f)
    }

    /// The operator that makes this an advanced query (needs `ConsistencyLevel: eventual` and
    /// `$count=true`), if any.
    pub fn advanced_operator(&self) -> Option<&'static str> {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.advanced_operator().or_else(|| b.advanced_operator())
            }
            Filter::Ne(..) => Some("ne"),
            Filter::EndsWith(..) => Some("endsWith"),
            Filter::Any(_, _, true) => Some("startsWith"),
            _ => None,
        }
    }

    /// Evaluates against an object.
    pub fn matches(&self, o: &impl Filterable) -> bool {
        fn eq(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
                _ => a == b,
            }
        }
        let text = |p: &str| o.prop(p).as_str().map(str::to_lowercase);
        match self {
            Filter::And(a, b) => a.matches(o) && b.matches(o),
            Filter::Or(a, b) => a.matches(o) || b.matches(o),
            Filter::Eq(p, v) => eq(&o.prop(p), v),
            Filter::Ne(p, v) => !eq(&o.prop(p), v),
            Filter::In(p, vs) => {
                let cur = o.prop(p);
                vs.iter().any(|v| eq(&cur, v))
            }
            Filter::StartsWith(p, x) => text(p).is_some_and(|s| s.starts_with(&x.to_lowercase())),
            Filter::EndsWith(p, x) => text(p).is_some_and(|s| s.ends_with(&x.to_lowercase())),
            Filter::Any(p, x, prefix) => o.prop(p).as_array().is_some_and(|items| {
                items.iter().filter_map(Value::as_str).any(|item| {
                    let (item, x) = (item.to_lowercase(), x.to_lowercase());
                    if *prefix {
                        item.starts_with(&x)
                    } else {
                        item == x
                    }
                })
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Colon,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            ':' => Some(Tok::Colon),
            _ => None,
        };
        if c.is_whitespace() {
            i += 1;
        } else if let Some(t) = single {
            out.push(t);
            i += 1;
        } else if c == '\'' {
            let mut v = String::new();
            i += 1;
            loop {
                if i >= chars.len() {
                    return Err("Invalid filter clause: unterminated string literal.".into());
                }
                if chars[i] == '\'' {
                    if i + 1 < chars.len() && chars[i + 1] == '\'' {
                        v.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                v.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Str(v));
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && !"(),':".contains(chars[i]) {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    schema: &'static Schema,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), String> {
        if self.next() == Some(t.clone()) {
            Ok(())
        } else {
            Err(format!("Invalid filter clause: expected {t:?}."))
        }
    }
    fn or(&mut self) -> Result<Filter, String> {
        let mut l = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            let r = self.and()?;
            l = Filter::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Filter, String> {
        let mut l = self.term()?;
        while self.peek_kw("and") {
            self.pos += 1;
            let r = self.term()?;
            l = Filter::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn unsupported(&self, name: &str) -> String {
        format!(
            "Unsupported or invalid query filter clause specified for property '{name}' of resource '{}'.",
            self.schema.resource
        )
    }
    fn canonical(list: &[&str], name: &str) -> Option<String> {
        list.iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .map(|p| p.to_string())
    }
    fn prop(&self, name: &str) -> Result<String, String> {
        Self::canonical(self.schema.filterable, name).ok_or_else(|| self.unsupported(name))
    }
    fn literal(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Value::String(s)),
            Some(Tok::Ident(s)) if s == "true" => Ok(Value::Bool(true)),
            Some(Tok::Ident(s)) if s == "false" => Ok(Value::Bool(false)),
            Some(Tok::Ident(s)) if s == "null" => Ok(Value::Null),
            _ => Err("Invalid filter clause: expected a literal.".into()),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            _ => Err("Invalid filter clause: expected a string.".into()),
        }
    }
    /// `startswith(prop,'x')` / `endswith(prop,'x')` after the function name.
    fn string_function(&mut self) -> Result<(String, String), String> {
        self.expect(Tok::LParen)?;
        let prop = match self.next() {
            Some(Tok::Ident(p)) => self.prop(&p)?,
            _ => return Err("Invalid filter clause: expected a property.".into()),
        };
        self.expect(Tok::Comma)?;
        let v = self.string()?;
        self.expect(Tok::RParen)?;
        Ok((prop, v))
    }
    /// `coll/any(x:x eq 'v')` or `coll/any(x:startswith(x,'v'))`.
    fn any(&mut self, collection: &str) -> Result<Filter, String> {
        let prop = Self::canonical(self.schema.collections, collection)
            .ok_or_else(|| self.unsupported(collection))?;
        self.expect(Tok::LParen)?;
        let var = match self.next() {
            Some(Tok::Ident(v)) => v,
            _ => return Err("Invalid filter clause: expected a lambda variable.".into()),
        };
        self.expect(Tok::Colon)?;
        let is_var = |t: &Option<Tok>| matches!(t, Some(Tok::Ident(v)) if *v == var);
        let f = match self.next() {
            Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("startswith") => {
                self.expect(Tok::LParen)?;
                if !is_var(&self.next()) {
                    return Err(self.unsupported(&prop));
                }
                self.expect(Tok::Comma)?;
                let v = self.string()?;
                self.expect(Tok::RParen)?;
                Filter::Any(prop, v, true)
            }
            t if is_var(&t) => {
                if !self.peek_kw("eq") {
                    return Err(self.unsupported(&prop));
                }
                self.pos += 1;
                Filter::Any(prop, self.string()?, false)
            }
            _ => return Err(self.unsupported(&prop)),
        };
        self.expect(Tok::RParen)?;
        Ok(f)
    }
    fn term(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Tok::LParen) => {
                let f = self.or()?;
                self.expect(Tok::RParen)?;
                Ok(f)
            }
            Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("startswith") => {
                let (p, v) = self.string_function()?;
                Ok(Filter::StartsWith(p, v))
            }
            Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("endswith") => {
                let (p, v) = self.string_function()?;
                Ok(Filter::EndsWith(p, v))
            }
            Some(Tok::Ident(p)) if p.to_ascii_lowercase().ends_with("/any") => {
                self.any(&p[..p.len() - 4])
            }
            Some(Tok::Ident(p)) => {
                let prop = self.prop(&p)?;
                match self.next() {
                    Some(Tok::Ident(op)) if op.eq_ignore_ascii_case("eq") => {
                        Ok(Filter::Eq(prop, self.literal()?))
                    }
                    Some(Tok::Ident(op)) if op.eq_ignore_ascii_case("ne") => {
                        Ok(Filter::Ne(prop, self.literal()?))
                    }
                    Some(Tok::Ident(op)) if op.eq_ignore_ascii_case("in") => {
                        self.expect(Tok::LParen)?;
                        let mut vals = vec![self.literal()?];
                        while self.toks.get(self.pos) == Some(&Tok::Comma) {
                            self.pos += 1;
                            vals.push(self.literal()?);
                        }
                        self.expect(Tok::RParen)?;
                        Ok(Filter::In(prop, vals))
                    }
                    _ => Err(self.unsupported(&p)),
                }
            }
            _ => Err("Invalid filter clause".into()),
        }
    }
}

// ----- $search ------------------------------------------------------------------------------

/// A parsed `$search`: `"prop:term"` clauses joined by `AND` / `OR` (left to right).
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    first: (String, String),
    rest: Vec<(bool, String, String)>,
}

impl Search {
    /// Parses `"displayName:wa" OR "displayName:ad"`; the error is Graph's message.
    pub fn parse(s: &str, schema: &'static Schema) -> Result<Search, String> {
        let mut clauses = Vec::new();
        let mut ops = Vec::new();
        let mut rest = s.trim();
        loop {
            let inner = rest
                .strip_prefix('"')
                .and_then(|r| r.split_once('"'))
                .ok_or_else(|| "Syntax error: character '\"' expected in $search.".to_string())?;
            let (clause, after) = inner;
            let (prop, term) = clause.split_once(':').ok_or_else(|| {
                format!("Invalid search clause '{clause}': expected \"property:value\".")
            })?;
            let prop = Parser::canonical(schema.searchable, prop.trim()).ok_or_else(|| {
                format!(
                    "Search on property '{prop}' of resource '{}' is not supported.",
                    schema.resource
                )
            })?;
            clauses.push((prop, term.trim().to_lowercase()));
            rest = after.trim_start();
            if rest.is_empty() {
                break;
            }
            let (op, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            match op {
                "AND" => ops.push(true),
                "OR" => ops.push(false),
                _ => return Err(format!("Syntax error: unexpected '{op}' in $search.")),
            }
            rest = tail.trim_start();
        }
        let mut it = clauses.into_iter();
        let first = it.next().expect("at least one clause");
        let rest = ops
            .into_iter()
            .zip(it)
            .map(|(and, (p, t))| (and, p, t))
            .collect();
        Ok(Search { first, rest })
    }

    /// Whether a word of the property starts with the term (the directory tokenises
    /// `displayName` etc. into words, https://learn.microsoft.com/graph/search-query-parameter).
    pub fn matches(&self, o: &impl Filterable) -> bool {
        let hit = |(p, t): &(String, String)| {
            o.prop(p).as_str().is_some_and(|v| {
                v.to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .any(|w| w.starts_with(t.as_str()))
                    || v.to_lowercase().starts_with(t.as_str())
            })
        };
        let mut acc = hit(&self.first);
        for (and, p, t) in &self.rest {
            let h = hit(&(p.clone(), t.clone()));
            acc = if *and { acc && h } else { acc || h };
        }
        acc
    }
}

// ----- the whole query ----------------------------------------------------------------------

/// The query options of a directory collection request, checked.
#[derive(Debug, Default)]
pub struct DirectoryQuery {
    /// `$filter`.
    pub filter: Option<Filter>,
    /// `$search`.
    pub search: Option<Search>,
    /// `$orderby`: property and descending.
    pub order_by: Option<(String, bool)>,
    /// `$count=true`.
    pub count: bool,
}

fn unsupported_query(msg: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", msg)
}

/// The query options directory collections know (https://learn.microsoft.com/graph/api/user-list,
/// https://learn.microsoft.com/graph/api/group-list).
pub const COLLECTION_OPTIONS: &[&str] = &[
    "select",
    "filter",
    "top",
    "count",
    "search",
    "orderby",
    "skiptoken",
];

/// The query options a `/$count` segment takes.
pub const COUNT_OPTIONS: &[&str] = &["filter", "search"];

/// Refuses query options outside `allowed` (names without `$`) with Graph's 400, so that an
/// option the sim does not implement never passes silently.
pub fn refuse_unknown_options(q: &Query, allowed: &[&str]) -> Result<(), Response> {
    match q.options().find(|o| !allowed.contains(&o.as_str())) {
        Some(o) => Err(unsupported_query(&format!(
            "Query option '${o}' is not supported for this request."
        ))),
        None => Ok(()),
    }
}

impl DirectoryQuery {
    /// The request's query string with its options checked against `allowed` and `schema`.
    pub fn read(
        uri: &axum::http::Uri,
        headers: &HeaderMap,
        schema: &'static Schema,
        allowed: &[&str],
    ) -> Result<(Query, DirectoryQuery), Response> {
        let q = Query::from_uri(uri);
        refuse_unknown_options(&q, allowed)?;
        let dq = DirectoryQuery::parse(&q, headers, schema)?;
        Ok((q, dq))
    }

    /// Reads and checks `$filter`, `$search`, `$orderby` and `$count` against `schema` and the
    /// `ConsistencyLevel` header (https://learn.microsoft.com/graph/aad-advanced-queries).
    pub fn parse(
        q: &Query,
        headers: &HeaderMap,
        schema: &'static Schema,
    ) -> Result<DirectoryQuery, Response> {
        let eventual = headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
        let count = match q.get("count") {
            None => false,
            Some(c) if c.eq_ignore_ascii_case("true") => true,
            Some(c) if c.eq_ignore_ascii_case("false") => false,
            Some(c) => {
                return Err(graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    &format!("Invalid value '{c}' for $count: expected true or false."),
                ))
            }
        };
        if count && !eventual {
            // `$count` on directory objects is an advanced query.
            return Err(graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "$count is not currently supported.",
            ));
        }
        let search = match q.get("search") {
            None => None,
            Some(_) if !eventual => {
                return Err(unsupported_query(
                    "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
                ))
            }
            Some(s) => Some(Search::parse(s, schema).map_err(|m| unsupported_query(&m))?),
        };
        let filter = match q.get("filter") {
            None => None,
            Some(f) => Some(Filter::parse(f, schema).map_err(|m| unsupported_query(&m))?),
        };
        let advanced = eventual && count;
        if let Some(op) = filter.as_ref().and_then(Filter::advanced_operator) {
            if !advanced {
                return Err(unsupported_query(&format!(
                    "Operator '{op}' is not supported because the required parameters might be missing. Try adding $count with a value of true and set the ConsistencyLevel header to eventual."
                )));
            }
        }
        let order_by = match q.get("orderby") {
            None => None,
            Some(o) => {
                let mut parts = o.split_whitespace();
                let prop = parts.next().unwrap_or_default();
                let desc = match parts.next() {
                    None => false,
                    Some(d) if d.eq_ignore_ascii_case("asc") => false,
                    Some(d) if d.eq_ignore_ascii_case("desc") => true,
                    Some(_) => {
                        return Err(unsupported_query(
                            "Sorting not supported for current query.",
                        ))
                    }
                };
                let list = if advanced {
                    schema.filterable
                } else {
                    schema.sortable
                };
                // `$orderby` with `$filter` is an advanced query.
                let ok = parts.next().is_none() && (filter.is_none() || advanced);
                match Parser::canonical(list, prop).filter(|_| ok) {
                    Some(p) => Some((p, desc)),
                    None => {
                        return Err(unsupported_query(
                            "Sorting not supported for current query.",
                        ))
                    }
                }
            }
        };
        Ok(DirectoryQuery {
            filter,
            search,
            order_by,
            count,
        })
    }

    /// Whether `o` passes `$filter` and `$search`.
    pub fn matches(&self, o: &impl Filterable) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(o))
            && self.search.as_ref().is_none_or(|s| s.matches(o))
    }

    /// Sorts by `$orderby` (strings case-insensitively, unset values last).
    pub fn sort<T: Filterable>(&self, items: &mut [&T]) {
        let Some((p, desc)) = &self.order_by else {
            return;
        };
        let key = |o: &T| o.prop(p).as_str().map(str::to_lowercase);
        items.sort_by(|a, b| {
            let o = match (key(a), key(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if *desc {
                o.reverse()
            } else {
                o
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_parses_the_documented_basic_queries() {
        let f = Filter::parse("userType eq 'Member' and accountEnabled eq true", &USERS).unwrap();
        let mut u = User {
            user_type: "Member".into(),
            account_enabled: true,
            display_name: Some("Adele Vance".into()),
            business_phones: vec!["+44 20 7946 0000".into()],
            ..Default::default()
        };
        assert!(f.matches(&u));
        u.account_enabled = false;
        assert!(!f.matches(&u));
        let f = Filter::parse("startswith(displayName,'ad')", &USERS).unwrap();
        assert!(f.matches(&u));
        assert!(Filter::parse("skills eq 'x'", &USERS).is_err());
        assert_eq!(
            Filter::parse("userType ne 'Guest'", &USERS)
                .unwrap()
                .advanced_operator(),
            Some("ne")
        );
        let f = Filter::parse("businessPhones/any(p:startswith(p, '+44'))", &USERS).unwrap();
        assert!(f.matches(&u));
        assert_eq!(f.advanced_operator(), Some("startsWith"));
        let f = Filter::parse("endswith(displayName,'vance')", &USERS).unwrap();
        assert!(f.matches(&u));
    }

    #[test]
    fn search_matches_words_that_start_with_the_term() {
        let s = Search::parse("\"displayName:wa\" OR \"displayName:ad\"", &USERS).unwrap();
        let u = |n: &str| User {
            display_name: Some(n.into()),
            ..Default::default()
        };
        assert!(s.matches(&u("Oscar Ward")));
        assert!(s.matches(&u("Adele Vance")));
        assert!(!s.matches(&u("Bob Baker")));
        assert!(Search::parse("displayName:wa", &USERS).is_err());
    }
}
