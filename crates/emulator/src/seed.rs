//! Seeded, realistic, reproducible data: contacts, companies, deals and tickets with owners,
//! pipeline stages and associations (contact→company primary, deal→company/contact,
//! ticket→contact/company), created/modified times spread over 2021-01-01 … 2026-11-01.
//! Every 50th contact shares one "bulk import" modification millisecond, so at scale more than
//! 10,000 records share a timestamp (the case that defeats naive incremental search).
//!
//! The same [`SeedConfig`] always gives the same records, ids and timestamps. Records are built
//! directly (no validation, no events) for speed.

use std::fmt::Write as _;

use rand::{RngExt, SeedableRng, rngs::StdRng};

use crate::SeedConfig;
use crate::associations::AssociationKind;
use crate::catalog::{
    DEAL_STAGES, DEAL_TYPES, INDUSTRIES, LEAD_STATUSES, LIFECYCLE_STAGES, TICKET_CATEGORIES,
    TICKET_PRIORITIES, TICKET_STAGES,
};
use crate::events::ChangeSource;
use crate::properties::PropId;
use crate::records::{Record, Values, iso_millis};
use crate::state::{Crm, ObjectTypeId};

/// Start of the seeded time window (2021-01-01T00:00:00Z).
pub const WINDOW_START_MS: i64 = 1_609_459_200_000;
/// End of the seeded time window (2026-11-01T00:00:00Z).
pub const WINDOW_END_MS: i64 = 1_793_491_200_000;
/// The shared modification time of the "bulk import" contacts (2025-06-01T12:00:00Z).
pub const BULK_IMPORT_MS: i64 = 1_748_779_200_000;

const FIRST: &[&str] = &[
    "Ann", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Keiko",
    "Liam", "Maya", "Noah", "Olivia", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Uma", "Victor",
    "Wen", "Xavier", "Yara", "Zoe", "Amir", "Bianca", "Chen", "Dara", "Emil", "Fatima", "Goran",
    "Hana", "Ivan", "Julia", "Kofi", "Lena", "Marco", "Nadia",
];
const LAST: &[&str] = &[
    "Smith",
    "Garcia",
    "Müller",
    "Rossi",
    "Nguyen",
    "Okafor",
    "Kowalski",
    "Johansson",
    "Silva",
    "Tanaka",
    "Dubois",
    "Novak",
    "Haddad",
    "Kim",
    "Larsen",
    "Moreau",
    "Petrov",
    "Quispe",
    "Rahman",
    "Schmidt",
    "Tremblay",
    "Ueda",
    "Varga",
    "Walsh",
    "Yilmaz",
    "Zhang",
    "O'Brien",
    "de Vries",
    "Ahmed",
    "Becker",
];
const COMPANY_A: &[&str] = &[
    "Acme",
    "Blue",
    "Cedar",
    "Delta",
    "Evergreen",
    "Falcon",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Keystone",
    "Lumen",
    "Maple",
    "North",
    "Orbit",
    "Pioneer",
    "Quartz",
    "River",
    "Summit",
    "Vertex",
];
const COMPANY_B: &[&str] = &[
    "Logistics",
    "Analytics",
    "Foods",
    "Health",
    "Robotics",
    "Energy",
    "Labs",
    "Media",
    "Systems",
    "Partners",
    "Works",
    "Retail",
    "Capital",
    "Software",
    "Studios",
];
const CITIES: &[(&str, &str)] = &[
    ("Berlin", "Germany"),
    ("Lisbon", "Portugal"),
    ("Boston", "United States"),
    ("Austin", "United States"),
    ("Toronto", "Canada"),
    ("Dublin", "Ireland"),
    ("Lyon", "France"),
    ("Osaka", "Japan"),
    ("São Paulo", "Brazil"),
    ("Nairobi", "Kenya"),
    ("Sydney", "Australia"),
    ("Warsaw", "Poland"),
];
const TITLES: &[&str] = &[
    "CEO",
    "CTO",
    "Head of Sales",
    "Account Manager",
    "Marketing Lead",
    "Engineer",
    "Buyer",
    "Operations Manager",
    "CFO",
    "Product Manager",
];
const PRODUCTS: &[&str] = &[
    "Platform",
    "Renewal",
    "Expansion",
    "Pilot",
    "Support plan",
    "Licences",
];
const TICKET_SUBJECTS: &[&str] = &[
    "Cannot log in",
    "Invoice question",
    "Feature request: export",
    "Sync is slow",
    "Password reset",
    "Data looks wrong",
    "Upgrade plan",
    "API error 500",
];

/// Fills `crm` with the configured number of records (owners first, when there are none).
pub fn seed(crm: &mut Crm, config: &SeedConfig) {
    let total = config.contacts + config.companies + config.deals + config.tickets;
    if total == 0 {
        return;
    }
    if crm.owners.all().is_empty() {
        crm.owners.seed(12, config.value);
    }
    let mut owners: Vec<String> = crm.owners.all().iter().map(|o| o.id.to_string()).collect();
    if owners.is_empty() {
        owners.push(String::new());
    }
    let mut rng = StdRng::seed_from_u64(config.value);
    let companies = seed_companies(crm, &mut rng, config.companies, &owners);
    let contacts = seed_contacts(crm, &mut rng, config.contacts, &owners, &companies);
    seed_deals(crm, &mut rng, config.deals, &owners, &companies, &contacts);
    seed_tickets(
        crm,
        &mut rng,
        config.tickets,
        &owners,
        &companies,
        &contacts,
    );
}

/// Random `(created, modified)` inside the window.
fn times(rng: &mut StdRng) -> (i64, i64) {
    let created = rng.random_range(WINDOW_START_MS..WINDOW_END_MS);
    let modified = rng.random_range(created..WINDOW_END_MS.max(created + 1));
    (created, modified)
}

fn pick<'a, T>(rng: &mut StdRng, list: &'a [T]) -> &'a T {
    &list[rng.random_range(0..list.len())]
}

/// Property ids of one type by name (missing names map to `None`).
fn ids(crm: &Crm, ty: ObjectTypeId, names: &[&str]) -> Vec<Option<PropId>> {
    let table = crm.table(ty);
    names
        .iter()
        .map(|n| table.and_then(|t| t.props.id(n)))
        .collect()
}

/// Inserts a record built from `(prop, value)` pairs.
fn insert(
    crm: &mut Crm,
    ty: ObjectTypeId,
    (created, modified): (i64, i64),
    pairs: &[(Option<PropId>, &str)],
) -> u64 {
    let id = crm.next_record_id();
    let values = Values::from_pairs(pairs.iter().filter_map(|(p, v)| p.map(|p| (p, *v))));
    let record = Record {
        id,
        created,
        modified,
        archived_at: None,
        values,
        history: None,
        source: ChangeSource::Import,
    };
    if let Some(table) = crm.table_mut(ty) {
        table.store.put(record);
    }
    id
}

/// Appends the lower-case ASCII letters and digits of `name`.
fn push_slug(out: &mut String, name: &str) {
    out.extend(
        name.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase()),
    );
}

fn link(crm: &mut Crm, from: (ObjectTypeId, u64), to: (ObjectTypeId, u64), kinds: &[u32]) {
    let kinds: Vec<AssociationKind> = kinds.iter().map(|k| AssociationKind::hubspot(*k)).collect();
    let _ = crm.associations.associate(from, to, &kinds);
}

fn seed_companies(
    crm: &mut Crm,
    rng: &mut StdRng,
    n: usize,
    owners: &[String],
) -> Vec<(u64, String)> {
    let p = ids(
        crm,
        ObjectTypeId::COMPANY,
        &[
            "name",
            "domain",
            "website",
            "industry",
            "city",
            "country",
            "numberofemployees",
            "annualrevenue",
            "phone",
            "hubspot_owner_id",
            "lifecyclestage",
        ],
    );
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{} {}", pick(rng, COMPANY_A), pick(rng, COMPANY_B));
        let domain = format!("{}{i}.example.com", name.replace(' ', "").to_lowercase());
        let website = format!("https://{domain}");
        let (city, country) = *pick(rng, CITIES);
        let employees = rng.random_range(2..20_000u32).to_string();
        let revenue = (rng.random_range(10..50_000u64) * 10_000).to_string();
        let phone = format!("+1 555 {:04}", rng.random_range(0..10_000u32));
        let owner = pick(rng, owners).clone();
        let industry = pick(rng, INDUSTRIES).0;
        let stage = pick(rng, LIFECYCLE_STAGES).0;
        let t = times(rng);
        let values = [
            (p[0], name.as_str()),
            (p[1], &domain),
            (p[2], &website),
            (p[3], industry),
            (p[4], city),
            (p[5], country),
            (p[6], &employees),
            (p[7], &revenue),
            (p[8], &phone),
            (p[9], &owner),
            (p[10], stage),
        ];
        let id = insert(crm, ObjectTypeId::COMPANY, t, &values);
        out.push((id, name));
    }
    out
}

fn seed_contacts(
    crm: &mut Crm,
    rng: &mut StdRng,
    n: usize,
    owners: &[String],
    companies: &[(u64, String)],
) -> Vec<u64> {
    let p = ids(
        crm,
        ObjectTypeId::CONTACT,
        &[
            "firstname",
            "lastname",
            "email",
            "phone",
            "company",
            "jobtitle",
            "city",
            "country",
            "lifecyclestage",
            "hs_lead_status",
            "hubspot_owner_id",
            "hs_email_optout",
        ],
    );
    if let Some(table) = crm.table_mut(ObjectTypeId::CONTACT) {
        table.store.reserve(n);
    }
    let mut out = Vec::with_capacity(n);
    let mut email = String::new();
    for i in 0..n {
        let first = *pick(rng, FIRST);
        let last = *pick(rng, LAST);
        email.clear();
        push_slug(&mut email, first);
        email.push('.');
        push_slug(&mut email, last);
        let _ = write!(email, "{i}@example.com");
        let phone = format!("+1 555 {:04}", rng.random_range(0..10_000u32));
        let (city, country) = *pick(rng, CITIES);
        let company = (!companies.is_empty() && rng.random_bool(0.8))
            .then(|| &companies[i % companies.len()]);
        let title = *pick(rng, TITLES);
        let stage = pick(rng, LIFECYCLE_STAGES).0;
        let status = pick(rng, LEAD_STATUSES).0;
        let owner = pick(rng, owners).as_str();
        let optout = if rng.random_bool(0.1) {
            "true"
        } else {
            "false"
        };
        let (created, mut modified) = times(rng);
        if i % 50 == 7 {
            modified = BULK_IMPORT_MS.max(created);
        }
        let values = [
            (p[0], first),
            (p[1], last),
            (p[2], email.as_str()),
            (p[3], &phone),
            (p[4], company.map_or("", |c| c.1.as_str())),
            (p[5], title),
            (p[6], city),
            (p[7], country),
            (p[8], stage),
            (p[9], status),
            (p[10], owner),
            (p[11], optout),
        ];
        let id = insert(crm, ObjectTypeId::CONTACT, (created, modified), &values);
        if let Some((cid, _)) = company {
            link(
                crm,
                (ObjectTypeId::CONTACT, id),
                (ObjectTypeId::COMPANY, *cid),
                &[1],
            );
        }
        out.push(id);
    }
    out
}

fn seed_deals(
    crm: &mut Crm,
    rng: &mut StdRng,
    n: usize,
    owners: &[String],
    companies: &[(u64, String)],
    contacts: &[u64],
) {
    let p = ids(
        crm,
        ObjectTypeId::DEAL,
        &[
            "dealname",
            "amount",
            "closedate",
            "pipeline",
            "dealstage",
            "dealtype",
            "hubspot_owner_id",
        ],
    );
    for i in 0..n {
        let company =
            (!companies.is_empty()).then(|| &companies[rng.random_range(0..companies.len())]);
        let name = format!(
            "{} - {}",
            company.map_or("Direct", |c| c.1.as_str()),
            pick(rng, PRODUCTS)
        );
        let amount = (rng.random_range(1..2_000u32) * 50).to_string();
        let (created, modified) = times(rng);
        let close = iso_millis(created + rng.random_range(0..180i64) * 86_400_000);
        let stage = *pick(rng, DEAL_STAGES);
        let kind = pick(rng, DEAL_TYPES).0;
        let owner = pick(rng, owners).as_str();
        let values = [
            (p[0], name.as_str()),
            (p[1], &amount),
            (p[2], &close),
            (p[3], "default"),
            (p[4], stage),
            (p[5], kind),
            (p[6], owner),
        ];
        let id = insert(crm, ObjectTypeId::DEAL, (created, modified), &values);
        if let Some((cid, _)) = company {
            link(
                crm,
                (ObjectTypeId::DEAL, id),
                (ObjectTypeId::COMPANY, *cid),
                &[5],
            );
        }
        if !contacts.is_empty() {
            let contact = contacts[(i * 7) % contacts.len()];
            link(
                crm,
                (ObjectTypeId::DEAL, id),
                (ObjectTypeId::CONTACT, contact),
                &[],
            );
        }
    }
}

fn seed_tickets(
    crm: &mut Crm,
    rng: &mut StdRng,
    n: usize,
    owners: &[String],
    companies: &[(u64, String)],
    contacts: &[u64],
) {
    let p = ids(
        crm,
        ObjectTypeId::TICKET,
        &[
            "subject",
            "content",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_priority",
            "hs_ticket_category",
            "hubspot_owner_id",
        ],
    );
    for i in 0..n {
        let subject = *pick(rng, TICKET_SUBJECTS);
        let content = format!("{subject}. Reported through the portal (ticket {i}).");
        let stage = *pick(rng, TICKET_STAGES);
        let priority = pick(rng, TICKET_PRIORITIES).0;
        let category = pick(rng, TICKET_CATEGORIES).0;
        let owner = pick(rng, owners).as_str();
        let t = times(rng);
        let values = [
            (p[0], subject),
            (p[1], content.as_str()),
            (p[2], "0"),
            (p[3], stage),
            (p[4], priority),
            (p[5], category),
            (p[6], owner),
        ];
        let id = insert(crm, ObjectTypeId::TICKET, t, &values);
        if !contacts.is_empty() {
            let contact = contacts[(i * 13) % contacts.len()];
            link(
                crm,
                (ObjectTypeId::TICKET, id),
                (ObjectTypeId::CONTACT, contact),
                &[],
            );
        }
        if !companies.is_empty() {
            let company = companies[(i * 3) % companies.len()].0;
            link(
                crm,
                (ObjectTypeId::TICKET, id),
                (ObjectTypeId::COMPANY, company),
                &[26],
            );
        }
    }
}
