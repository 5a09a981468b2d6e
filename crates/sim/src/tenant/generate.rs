//! The deterministic `--users N` generator: an organisation of users, groups and mailboxes
//! derived from one seed, so the same seed always gives the same tenant. Mailboxes of generated
//! users are derived lazily (see [`generate_mailbox`]) to keep `--users 100000` small.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use super::{
    derived_id, fill_organizer, normalize_event, Contact, ContactFolder, Event, Group, Mailbox,
    Photo, Tenant, User, GENERATED_PASSWORD,
};

struct Culture {
    /// (display, ascii) given names.
    given: &'static [(&'static str, &'static str)],
    /// (display, ascii) surnames.
    family: &'static [(&'static str, &'static str)],
    /// Display name with the family name first (East Asian convention).
    family_first: bool,
    /// Separator between the two parts of the display name.
    sep: &'static str,
    lang: &'static str,
}

const CULTURES: &[Culture] = &[
    Culture {
        given: &[
            ("James", "james"),
            ("Mary", "mary"),
            ("John", "john"),
            ("Patricia", "patricia"),
            ("Robert", "robert"),
            ("Jennifer", "jennifer"),
            ("Michael", "michael"),
            ("Linda", "linda"),
            ("David", "david"),
            ("Elizabeth", "elizabeth"),
            ("Sarah", "sarah"),
            ("Thomas", "thomas"),
            ("Emily", "emily"),
            ("Daniel", "daniel"),
            ("Megan", "megan"),
            ("Adele", "adele"),
        ],
        family: &[
            ("Smith", "smith"),
            ("Johnson", "johnson"),
            ("Williams", "williams"),
            ("Brown", "brown"),
            ("Jones", "jones"),
            ("Miller", "miller"),
            ("Davis", "davis"),
            ("Wilson", "wilson"),
            ("Taylor", "taylor"),
            ("Clark", "clark"),
            ("O'Brien", "obrien"),
            ("Vance", "vance"),
        ],
        family_first: false,
        sep: " ",
        lang: "en-US",
    },
    Culture {
        given: &[
            ("Lukas", "lukas"),
            ("Anna", "anna"),
            ("Jonas", "jonas"),
            ("Lea", "lea"),
            ("Felix", "felix"),
            ("Sophie", "sophie"),
            ("Jürgen", "juergen"),
            ("Käthe", "kaethe"),
            ("Maximilian", "maximilian"),
        ],
        family: &[
            ("Müller", "mueller"),
            ("Schmidt", "schmidt"),
            ("Schneider", "schneider"),
            ("Fischer", "fischer"),
            ("Weber", "weber"),
            ("Meyer", "meyer"),
            ("Wagner", "wagner"),
            ("Becker", "becker"),
            ("Schäfer", "schaefer"),
            ("Groß", "gross"),
        ],
        family_first: false,
        sep: " ",
        lang: "de-DE",
    },
    Culture {
        given: &[
            ("Chloé", "chloe"),
            ("Léa", "lea"),
            ("Hugo", "hugo"),
            ("Zoë", "zoe"),
            ("François", "francois"),
            ("Amélie", "amelie"),
            ("Noël", "noel"),
        ],
        family: &[
            ("Dubois", "dubois"),
            ("Lefèvre", "lefevre"),
            ("Moreau", "moreau"),
            ("Girard", "girard"),
            ("Rousseau", "rousseau"),
            ("Fontaine", "fontaine"),
        ],
        family_first: false,
        sep: " ",
        lang: "fr-FR",
    },
    Culture {
        given: &[
            ("José", "jose"),
            ("María", "maria"),
            ("Lucía", "lucia"),
            ("Álvaro", "alvaro"),
            ("Sofía", "sofia"),
        ],
        family: &[
            ("García", "garcia"),
            ("Fernández", "fernandez"),
            ("López", "lopez"),
            ("Martínez", "martinez"),
            ("Sánchez", "sanchez"),
            ("Muñoz", "munoz"),
        ],
        family_first: false,
        sep: " ",
        lang: "es-ES",
    },
    Culture {
        given: &[
            ("Иван", "ivan"),
            ("Ольга", "olga"),
            ("Дмитрий", "dmitry"),
            ("Анна", "anna"),
        ],
        family: &[
            ("Петров", "petrov"),
            ("Иванова", "ivanova"),
            ("Смирнов", "smirnov"),
            ("Кузнецова", "kuznetsova"),
        ],
        family_first: false,
        sep: " ",
        lang: "ru-RU",
    },
    Culture {
        given: &[
            ("太郎", "taro"),
            ("花子", "hanako"),
            ("翔", "sho"),
            ("美咲", "misaki"),
        ],
        family: &[
            ("山田", "yamada"),
            ("佐藤", "sato"),
            ("鈴木", "suzuki"),
            ("高橋", "takahashi"),
        ],
        family_first: true,
        sep: " ",
        lang: "ja-JP",
    },
    Culture {
        given: &[("伟", "wei"), ("芳", "fang"), ("静", "jing"), ("磊", "lei")],
        family: &[("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu")],
        family_first: true,
        sep: "",
        lang: "zh-CN",
    },
    Culture {
        given: &[("민준", "minjun"), ("서연", "seoyeon"), ("지호", "jiho")],
        family: &[("김", "kim"), ("이", "lee"), ("박", "park")],
        family_first: true,
        sep: "",
        lang: "ko-KR",
    },
    Culture {
        given: &[
            ("Σοφία", "sofia"),
            ("Γιώργος", "giorgos"),
            ("Ελένη", "eleni"),
        ],
        family: &[
            ("Παπαδοπούλου", "papadopoulou"),
            ("Νικολάου", "nikolaou"),
            ("Οικονόμου", "oikonomou"),
        ],
        family_first: false,
        sep: " ",
        lang: "el-GR",
    },
    Culture {
        given: &[("محمد", "mohammed"), ("فاطمة", "fatima"), ("علي", "ali")],
        family: &[("حسن", "hassan"), ("الأحمد", "alahmad"), ("خليل", "khalil")],
        family_first: false,
        sep: " ",
        lang: "ar-AE",
    },
    Culture {
        given: &[
            ("Priya", "priya"),
            ("Arjun", "arjun"),
            ("Ananya", "ananya"),
            ("Rahul", "rahul"),
        ],
        family: &[
            ("Sharma", "sharma"),
            ("Patel", "patel"),
            ("Iyer", "iyer"),
            ("Gupta", "gupta"),
        ],
        family_first: false,
        sep: " ",
        lang: "en-IN",
    },
];

struct Office {
    location: &'static str,
    country: &'static str,
    time_zone: &'static str,
    /// Culture indexes typical for the office.
    cultures: &'static [usize],
}

const OFFICES: &[Office] = &[
    Office {
        location: "Redmond / Building 4",
        country: "US",
        time_zone: "Pacific Standard Time",
        cultures: &[0, 0, 0, 3, 10, 6],
    },
    Office {
        location: "New York / 5th Avenue",
        country: "US",
        time_zone: "Eastern Standard Time",
        cultures: &[0, 0, 3, 4],
    },
    Office {
        location: "Berlin / Alexanderplatz",
        country: "DE",
        time_zone: "W. Europe Standard Time",
        cultures: &[1, 1, 1, 4, 8],
    },
    Office {
        location: "London / Canary Wharf",
        country: "GB",
        time_zone: "GMT Standard Time",
        cultures: &[0, 0, 10, 9],
    },
    Office {
        location: "Paris / La Défense",
        country: "FR",
        time_zone: "Romance Standard Time",
        cultures: &[2, 2, 9],
    },
    Office {
        location: "Madrid / Castellana",
        country: "ES",
        time_zone: "Romance Standard Time",
        cultures: &[3, 3, 2],
    },
    Office {
        location: "Tokyo / Shinagawa",
        country: "JP",
        time_zone: "Tokyo Standard Time",
        cultures: &[5, 5, 7, 6],
    },
    Office {
        location: "Sydney / Barangaroo",
        country: "AU",
        time_zone: "AUS Eastern Standard Time",
        cultures: &[0, 6, 10],
    },
    Office {
        location: "Mumbai / BKC",
        country: "IN",
        time_zone: "India Standard Time",
        cultures: &[10, 10, 0],
    },
];

/// Business and mobile phone in the office country's usual written formats.
fn phones(country: &str, rng: &mut StdRng) -> (String, String) {
    let n4 = rng.gen_range(0..10000);
    let m = rng.gen_range(0..100000);
    let style = rng.gen_range(0..4);
    match country {
        "US" => {
            let b = if style == 0 {
                format!("(425) 555-{n4:04}")
            } else {
                format!("+1 425 555 {n4:04}")
            };
            (b, format!("+1 206-555-{:04}", m % 10000))
        }
        "DE" => {
            let b = if style == 0 {
                format!("030 {:08}", m * 37 % 100_000_000)
            } else {
                format!("+49 30 {:08}", m * 37 % 100_000_000)
            };
            (b, format!("+49 151 {:08}", m * 91 % 100_000_000))
        }
        "GB" => (
            format!("+44 20 7946 {n4:04}"),
            format!("+44 7700 900{:03}", m % 1000),
        ),
        "FR" => (
            format!("+33 1 42 {:02} {:02} {:02}", n4 / 100, n4 % 100, m % 100),
            format!("+33 6 12 {:02} {:02} {:02}", m % 100, n4 % 100, n4 / 100),
        ),
        "ES" => (
            format!("+34 91 555 {n4:04}"),
            format!("+34 612 {:03} {:03}", m % 1000, n4 % 1000),
        ),
        "JP" => (
            format!("+81 3-5555-{n4:04}"),
            format!("+81 90-1234-{:04}", m % 10000),
        ),
        "AU" => (
            format!("+61 2 5550 {n4:04}"),
            format!("+61 491 570 {:03}", m % 1000),
        ),
        _ => (
            format!("+91 22 5555 {n4:04}"),
            format!("+91 98765 {:05}", m),
        ),
    }
}

const DEPARTMENTS: &[(&str, &[&str])] = &[
    (
        "Sales",
        &[
            "Account Executive",
            "Sales Manager",
            "Inside Sales Representative",
            "VP Sales",
        ],
    ),
    (
        "Marketing",
        &[
            "Marketing Specialist",
            "Content Manager",
            "Marketing Director",
        ],
    ),
    (
        "Engineering",
        &[
            "Software Engineer",
            "Senior Software Engineer",
            "Engineering Manager",
            "QA Engineer",
        ],
    ),
    (
        "Customer Support",
        &["Support Agent", "Support Team Lead", "Support Manager"],
    ),
    ("Finance", &["Accountant", "Financial Analyst", "CFO"]),
    (
        "Human Resources",
        &["HR Generalist", "Recruiter", "HR Manager"],
    ),
    ("Legal", &["Counsel", "Paralegal"]),
    (
        "Operations",
        &[
            "Operations Analyst",
            "Facilities Manager",
            "Office Assistant",
        ],
    ),
    (
        "IT",
        &["System Administrator", "Helpdesk Technician", "IT Manager"],
    ),
    (
        "Research & Development",
        &["Research Scientist", "Lab Technician"],
    ),
];

const EU_OFFICES: &[&str] = &["DE", "GB", "FR", "ES"];

fn guid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.gen())
        .into_uuid()
        .to_string()
}

/// Index the generator gives the shared mailbox "Reception".
pub const RECEPTION_INDEX: u32 = 0;

/// Generates `n` users (index 0 is the shared mailbox "Reception"), groups and lazily-derived
/// mailboxes, deterministically from `seed`.
pub fn generate(t: &mut Tenant, n: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    t.gen_seed = Some(seed);
    let domain = t.domain.clone();
    let mut upns = std::collections::HashSet::new();
    let mut next_suffix: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut dept_members: Vec<Vec<String>> = vec![Vec::new(); DEPARTMENTS.len()];
    let mut sales_emea = Vec::new();
    let mut managers = Vec::new();
    let mut members = Vec::new();
    let mut names_seen: Vec<(usize, usize, usize)> = Vec::new();
    for i in 0..n {
        let id = guid(&mut rng);
        if i as u32 == RECEPTION_INDEX {
            let user = User {
                id,
                user_principal_name: format!("reception@{domain}"),
                display_name: Some("Reception".into()),
                mail: Some(format!("reception@{domain}")),
                business_phones: vec!["+1 425 555 0100".into()],
                office_location: Some(OFFICES[0].location.into()),
                user_type: "Member".into(),
                // Shared mailboxes are user objects whose sign-in is blocked.
                account_enabled: false,
                gen_index: Some(i as u32),
                ..Default::default()
            };
            upns.insert(user.user_principal_name.clone());
            t.insert_user(user).expect("generated ids are unique");
            continue;
        }
        let office = &OFFICES[rng.gen_range(0..OFFICES.len())];
        let mut names = (
            *office.cultures.choose(&mut rng).expect("non-empty"),
            rng.gen_range(0..16usize),
            rng.gen_range(0..16usize),
        );
        // Make sure a small organisation has a duplicate display name too (the 9th person
        // is named like the 2nd).
        if i == 9 {
            if let Some(first) = names_seen.get(1) {
                names = *first;
            }
        }
        if names_seen.len() < 2 {
            names_seen.push(names);
        }
        let culture = &CULTURES[names.0];
        let (given, given_ascii) = culture.given[names.1 % culture.given.len()];
        let (family, family_ascii) = culture.family[names.2 % culture.family.len()];
        let display = if culture.family_first {
            format!("{family}{}{given}", culture.sep)
        } else {
            format!("{given}{}{family}", culture.sep)
        };
        let roll: f64 = rng.gen();
        let guest = roll < 0.03;
        let disabled = (0.03..0.06).contains(&roll);
        let (dept_idx, titles) = {
            let d = rng.gen_range(0..DEPARTMENTS.len());
            (d, DEPARTMENTS[d].1)
        };
        let title = *titles.choose(&mut rng).expect("non-empty");
        let base = format!("{given_ascii}.{family_ascii}");
        // Remember the next free suffix per name so 100,000 users stay linear.
        let k_ref = next_suffix.entry(base.clone()).or_insert(1u32);
        let mut k = *k_ref;
        let mut local = if k == 1 {
            base.clone()
        } else {
            format!("{base}{k}")
        };
        let upn = loop {
            let candidate = if guest {
                format!("{local}_fabrikam.example#EXT#@{domain}")
            } else {
                format!("{local}@{domain}")
            };
            if upns.insert(candidate.to_ascii_lowercase()) {
                *k_ref = k + 1;
                break candidate;
            }
            k += 1;
            local = format!("{base}{k}");
        };
        let (business, mobile) = phones(office.country, &mut rng);
        let has_business = rng.gen_bool(0.9);
        let has_mobile = rng.gen_bool(0.7);
        let has_mail = rng.gen_bool(0.98);
        let has_photo = rng.gen_bool(0.85);
        let user = if guest {
            User {
                id: id.clone(),
                user_principal_name: upn,
                display_name: Some(format!("{display} (Fabrikam)")),
                given_name: Some(given.into()),
                surname: Some(family.into()),
                mail: Some(format!("{local}@fabrikam.example")),
                user_type: "Guest".into(),
                account_enabled: true,
                gen_index: Some(i as u32),
                ..Default::default()
            }
        } else {
            User {
                id: id.clone(),
                mail: has_mail.then(|| upn.clone()),
                user_principal_name: upn,
                display_name: Some(display),
                given_name: Some(given.into()),
                surname: Some(family.into()),
                mobile_phone: has_mobile.then_some(mobile),
                business_phones: if has_business { vec![business] } else { vec![] },
                job_title: Some(title.into()),
                department: Some(DEPARTMENTS[dept_idx].0.into()),
                office_location: Some(office.location.into()),
                preferred_language: Some(culture.lang.into()),
                user_type: "Member".into(),
                account_enabled: !disabled,
                password: Some(GENERATED_PASSWORD.into()),
                photo: has_photo.then(|| Photo::generated(seed ^ (i as u64) << 8)),
                gen_index: Some(i as u32),
                ..Default::default()
            }
        };
        if !guest {
            members.push(id.clone());
            if DEPARTMENTS[dept_idx].0 == "Sales" && EU_OFFICES.contains(&office.country) {
                sales_emea.push(id.clone());
            } else {
                dept_members[dept_idx].push(id.clone());
            }
            if title.contains("Manager")
                || title.contains("Director")
                || title.starts_with("VP")
                || title == "CFO"
            {
                managers.push(id.clone());
            }
        }
        t.insert_user(user)
            .expect("generated ids and UPNs are unique");
    }
    if n == 0 {
        return;
    }
    let add_group =
        |t: &mut Tenant, rng: &mut StdRng, name: &str, desc: &str, members: Vec<String>| {
            let id = guid(rng);
            let nick: String = name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            t.insert_group(Group {
                id: id.clone(),
                display_name: name.into(),
                description: Some(desc.into()),
                mail: Some(format!("{}@{domain}", nick.to_lowercase())),
                mail_nickname: Some(nick),
                security_enabled: true,
                mail_enabled: true,
                members,
            });
            id
        };
    add_group(
        t,
        &mut rng,
        "All Company",
        "Everyone in the organisation",
        members,
    );
    let emea = add_group(
        t,
        &mut rng,
        "Sales EMEA",
        "Sales team in Europe (nested in Sales)",
        sales_emea,
    );
    for (d, list) in dept_members.into_iter().enumerate() {
        let mut list = list;
        if DEPARTMENTS[d].0 == "Sales" {
            list.push(emea.clone());
        }
        add_group(
            t,
            &mut rng,
            DEPARTMENTS[d].0,
            &format!("{} department", DEPARTMENTS[d].0),
            list,
        );
    }
    let leaders = add_group(
        t,
        &mut rng,
        "Leadership",
        "Directors and VPs",
        managers.iter().take(5).cloned().collect(),
    );
    let mut mgr = managers;
    mgr.push(leaders);
    add_group(
        t,
        &mut rng,
        "Managers",
        "All people managers (Leadership nested)",
        mgr,
    );
}

const COMPANIES: &[&str] = &[
    "Fabrikam",
    "Northwind Traders",
    "Adventure Works",
    "Tailspin Toys",
    "Wide World Importers",
    "Litware",
    "Proseware",
    "Café Zürich GmbH",
];
const CONTACT_NAMES: &[(&str, &str)] = &[
    ("Alex", "Wilber"),
    ("Diego", "Siciliani"),
    ("Isaiah", "Langer"),
    ("Johanna", "Lorenz"),
    ("Lidia", "Holloway"),
    ("Nestor", "Wilke"),
    ("Pradeep", "Gupta"),
    ("Grady", "Archie"),
    ("Irvin", "Sayers"),
    ("Lynne", "Robbins"),
    ("Ольга", "Соколова"),
    ("Hélène", "Côté"),
];

fn gen_contact(rng: &mut StdRng, uid: &str, n: usize, folder_id: &str) -> Contact {
    let (g, s) = *CONTACT_NAMES.choose(rng).expect("non-empty");
    let company = *COMPANIES.choose(rng).expect("non-empty");
    let slug: String = company
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let mut props = Map::new();
    props.insert("displayName".into(), json!(format!("{g} {s}")));
    props.insert("givenName".into(), json!(g));
    props.insert("surname".into(), json!(s));
    props.insert("companyName".into(), json!(company));
    props.insert(
        "jobTitle".into(),
        json!(
            [
                "Buyer",
                "Account Manager",
                "CEO",
                "Technician",
                "Consultant"
            ][n % 5]
        ),
    );
    props.insert(
        "emailAddresses".into(),
        json!([{"name": format!("{g} {s}"), "address": format!("contact{n}@{slug}.example")}]),
    );
    props.insert(
        "businessPhones".into(),
        json!([format!(
            "+1 555 01{:02} {:04}",
            n % 100,
            rng.gen_range(0..10000)
        )]),
    );
    if rng.gen_bool(0.6) {
        props.insert(
            "mobilePhone".into(),
            json!(format!("+49 170 {:07}", rng.gen_range(0..10_000_000))),
        );
    }
    if rng.gen_bool(0.2) {
        props.insert(
            "homePhones".into(),
            json!([format!("+44 20 7946 {:04}", rng.gen_range(0..10000))]),
        );
    }
    Contact {
        id: derived_id(uid, &format!("contact-{n}")),
        folder_id: folder_id.into(),
        props,
        created: "2024-01-15T09:00:00Z".into(),
        modified: "2024-01-15T09:00:00Z".into(),
        change_key: format!("gen{n}"),
    }
}

fn dtz(dt: chrono::NaiveDateTime, tz: &str) -> Value {
    json!({"dateTime": crate::tz::fmt_local(dt), "timeZone": tz})
}

/// Derives the initial mailbox of generated user `idx` (contacts, a child folder, events in
/// the current weeks).
pub fn generate_mailbox(seed: u64, idx: u32, user: &User) -> Mailbox {
    use chrono::{Datelike, Duration, NaiveTime};
    let uid = &user.id;
    let mut rng = StdRng::seed_from_u64(
        seed.wrapping_mul(0x9E37_79B9) ^ (idx as u64).wrapping_mul(0x85EB_CA6B),
    );
    let mut mb = Mailbox::new(derived_id(uid, "contacts"));
    let reception = idx == RECEPTION_INDEX;
    let child_name = if reception { "Emergency" } else { "Suppliers" };
    let child_id = derived_id(uid, &format!("folder-{child_name}"));
    let (n_default, n_child) = if reception {
        (25, 5)
    } else if user.user_type == "Guest" {
        (0, 0)
    } else {
        (rng.gen_range(0..6), rng.gen_range(0..3))
    };
    if n_child > 0 || reception {
        mb.folders.push(ContactFolder {
            id: child_id.clone(),
            display_name: child_name.into(),
            parent_folder_id: mb.default_folder_id.clone(),
        });
    }
    for n in 0..n_default {
        let c = gen_contact(&mut rng, uid, n, &mb.default_folder_id.clone());
        mb.contacts.insert(c.id.clone(), c);
    }
    for n in 0..n_child {
        let c = gen_contact(&mut rng, uid, 100 + n, &child_id);
        mb.contacts.insert(c.id.clone(), c);
    }
    if user.user_type == "Guest" {
        return mb;
    }
    let tz = OFFICES
        .iter()
        .find(|o| Some(o.location) == user.office_location.as_deref())
        .map(|o| o.time_zone)
        .unwrap_or("UTC");
    let today = chrono::Utc::now().date_naive();
    let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64);
    let at = |d: chrono::NaiveDate, h: u32, m: u32| {
        d.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("valid time"))
    };
    let mut events: Vec<Map<String, Value>> = Vec::new();
    let mut ev = |subject: &str,
                  start: Value,
                  end: Value,
                  show_as: &str,
                  all_day: bool,
                  recurrence: Option<Value>| {
        let mut m = Map::new();
        m.insert("subject".into(), json!(subject));
        m.insert("start".into(), start);
        m.insert("end".into(), end);
        m.insert("isAllDay".into(), json!(all_day));
        m.insert("showAs".into(), json!(show_as));
        m.insert("sensitivity".into(), json!("normal"));
        m.insert("isCancelled".into(), json!(false));
        m.insert(
            "location".into(),
            json!({"displayName": user.office_location.clone().unwrap_or_default()}),
        );
        m.insert(
            "organizer".into(),
            json!({"emailAddress": {"name": user.display_name, "address": user.mail}}),
        );
        if let Some(r) = recurrence {
            m.insert("recurrence".into(), r);
        }
        events.push(m);
    };
    if rng.gen_bool(0.6) {
        let start = monday - Duration::days(28);
        ev(
            "Daily stand-up",
            dtz(at(start, 9, 0), tz),
            dtz(at(start, 9, 15), tz),
            "busy",
            false,
            Some(json!({
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"], "firstDayOfWeek": "monday"},
                "range": {"type": "noEnd", "startDate": start.format("%Y-%m-%d").to_string(), "recurrenceTimeZone": tz}
            })),
        );
    }
    let d = monday + Duration::days(rng.gen_range(0..5));
    let h = rng.gen_range(10..16);
    ev(
        "Customer call",
        dtz(at(d, h, 0), tz),
        dtz(at(d, h + 1, 0), tz),
        "busy",
        false,
        None,
    );
    let d = monday + Duration::days(rng.gen_range(0..5));
    ev(
        "Focus time",
        dtz(at(d, 13, 0), tz),
        dtz(at(d, 15, 0), tz),
        "tentative",
        false,
        None,
    );
    if rng.gen_bool(0.15) {
        let d = monday + Duration::days(rng.gen_range(0..10));
        ev(
            "Vacation",
            dtz(at(d, 0, 0), tz),
            dtz(at(d + Duration::days(3), 0, 0), tz),
            "oof",
            true,
            None,
        );
    }
    if rng.gen_bool(0.2) {
        let fri = monday + Duration::days(4) - Duration::days(14);
        ev(
            "Working from home",
            dtz(at(fri, 0, 0), tz),
            dtz(at(fri + Duration::days(1), 0, 0), tz),
            "workingElsewhere",
            true,
            Some(json!({
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["friday"], "firstDayOfWeek": "monday"},
                "range": {"type": "numbered", "startDate": fri.format("%Y-%m-%d").to_string(), "numberOfOccurrences": 8}
            })),
        );
    }
    for (n, mut props) in events.into_iter().enumerate() {
        let _ = normalize_event(&mut props);
        fill_organizer(&mut props, user);
        let id = derived_id(uid, &format!("event-{n}"));
        mb.events.insert(
            id.clone(),
            Event {
                id,
                props,
                created: "2024-01-15T09:00:00Z".into(),
                modified: "2024-01-15T09:00:00Z".into(),
                change_key: format!("gen{n}"),
            },
        );
    }
    mb
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant::new(super::super::new_id(), "contoso.example".into())
    }

    #[test]
    fn generator_is_deterministic_and_varied() {
        let mut a = tenant();
        generate(&mut a, 500, 42);
        let mut b = tenant();
        generate(&mut b, 500, 42);
        let ids_a: Vec<_> = a.users.keys().cloned().collect();
        let ids_b: Vec<_> = b.users.keys().cloned().collect();
        assert_eq!(ids_a, ids_b);
        assert_eq!(a.users.len(), 500);
        let guests = a.users.values().filter(|u| u.user_type == "Guest").count();
        let disabled = a.users.values().filter(|u| !u.account_enabled).count();
        assert!((3..40).contains(&guests), "guests {guests}");
        assert!((3..40).contains(&disabled), "disabled {disabled}");
        assert!(a
            .users
            .values()
            .any(|u| u.display_name.as_deref().is_some_and(|d| !d.is_ascii())));
        assert!(a.find_user("reception@contoso.example").is_some());
        let mut names: Vec<_> = a
            .users
            .values()
            .filter_map(|u| u.display_name.clone())
            .collect();
        names.sort();
        names.dedup();
        assert!(names.len() < 500, "some display names repeat");
        assert!(a
            .groups
            .values()
            .any(|g| g.members.iter().any(|m| a.groups.contains_key(m))));
    }

    #[test]
    fn even_ten_users_include_two_with_the_same_display_name() {
        let mut t = tenant();
        generate(&mut t, 10, 7);
        let mut names: Vec<_> = t
            .users
            .values()
            .filter_map(|u| u.display_name.clone())
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert!(names.len() < n, "{names:?}");
    }

    #[test]
    fn reception_mailbox_has_contacts_in_two_folders() {
        let mut t = tenant();
        generate(&mut t, 10, 1);
        let id = t.user_id("reception@contoso.example").unwrap();
        let mb = t.mailbox(&id);
        assert_eq!(mb.folders.len(), 1);
        assert_eq!(mb.contacts.len(), 30);
    }
}
