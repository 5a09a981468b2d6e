//! Mail templates: built-in files compiled into the binary, each overridable by a file of the
//! same name in `{data_dir}/mail-templates/` (`NAME.txt`: a `Subject:` line, a blank line, the
//! text body; `NAME.html`: the HTML body). Placeholders are `{{name}}`; values are escaped in
//! the HTML body.

use pbx365_domain::outbox::fill_template;
use std::path::Path;

/// The built-in templates: (name, text file, HTML file).
pub const BUILT_IN: &[(&str, &str, &str)] = &[
    (
        "test",
        include_str!("../../mail-templates/test.txt"),
        include_str!("../../mail-templates/test.html"),
    ),
    (
        "sync_held",
        include_str!("../../mail-templates/sync_held.txt"),
        include_str!("../../mail-templates/sync_held.html"),
    ),
    (
        "sync_failed",
        include_str!("../../mail-templates/sync_failed.txt"),
        include_str!("../../mail-templates/sync_failed.html"),
    ),
    (
        "consent_lost",
        include_str!("../../mail-templates/consent_lost.txt"),
        include_str!("../../mail-templates/consent_lost.html"),
    ),
    (
        "certificate_expiry",
        include_str!("../../mail-templates/certificate_expiry.txt"),
        include_str!("../../mail-templates/certificate_expiry.html"),
    ),
    (
        "welcome",
        include_str!("../../mail-templates/welcome.txt"),
        include_str!("../../mail-templates/welcome.html"),
    ),
];

/// The folder under the data directory whose files override the built-in templates.
pub const OVERRIDE_DIR: &str = "mail-templates";

/// A filled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Fills template `name` (an override in `data_dir` when there is one) with `vars`.
pub fn render(data_dir: &Path, name: &str, vars: &[(&str, String)]) -> Rendered {
    let (_, text, html) = BUILT_IN
        .iter()
        .find(|(n, _, _)| *n == name)
        .copied()
        .unwrap_or(("", "Subject: pbx365\n\n", ""));
    let dir = data_dir.join(OVERRIDE_DIR);
    let read = |file: String, built_in: &str| {
        std::fs::read_to_string(dir.join(file)).unwrap_or_else(|_| built_in.to_string())
    };
    let text = read(format!("{name}.txt"), text);
    let html = read(format!("{name}.html"), html);
    let (subject, body) = split_subject(&text);
    Rendered {
        subject: fill_template(subject, vars, false)
            .replace(['\r', '\n'], " ")
            .trim()
            .to_string(),
        text: fill_template(body, vars, false),
        html: fill_template(&html, vars, true),
    }
}

/// `Subject: …` on the first line, then the body after one blank line.
fn split_subject(text: &str) -> (&str, &str) {
    match text.strip_prefix("Subject:") {
        Some(rest) => match rest.split_once('\n') {
            Some((subject, body)) => (subject.trim(), body.strip_prefix('\n').unwrap_or(body)),
            None => (rest.trim(), ""),
        },
        None => ("pbx365", text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_template_has_a_subject_and_fills_its_placeholders() {
        let dir = tempfile::tempdir().unwrap();
        for (name, _, _) in BUILT_IN {
            let r = render(dir.path(), name, &[]);
            assert!(!r.subject.is_empty() && r.subject != "pbx365", "{name}");
            assert!(!r.text.starts_with('\n'), "{name}");
        }
    }

    #[test]
    fn a_file_in_the_data_directory_overrides_the_built_in_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(OVERRIDE_DIR)).unwrap();
        std::fs::write(
            dir.path().join(OVERRIDE_DIR).join("test.txt"),
            "Subject: Hello {{sender}}\n\nBody <{{sender}}>",
        )
        .unwrap();
        let r = render(dir.path(), "test", &[("sender", "a&b".into())]);
        assert_eq!(r.subject, "Hello a&b");
        assert_eq!(r.text, "Body <a&b>");
        assert!(
            r.html.contains("a&amp;b"),
            "the HTML stays built in and escaped"
        );
    }
}
