//! PostgreSQL identifiers for whatever names HubSpot sends, and SQL quoting.
//!
//! HubSpot property and object names are usually tame (`firstname`, `hs_lead_status`), but
//! custom ones can hold upper case, spaces, quotes, unicode or SQL fragments, and some
//! built-in names exceed PostgreSQL's 63-byte identifier limit (PostgreSQL would silently
//! truncate them, and two long names could collide). The rule here is deterministic and
//! injective:
//!
//! * a **plain** name — `^[a-z_][a-z0-9_]*$`, at most 63 bytes, not one of hubsync's own
//!   column names, and not ending in what looks like a hash suffix (`__` + 8 hex digits) —
//!   is used unchanged;
//! * any other name becomes its sanitised form (lower case, every run of other characters
//!   replaced by one `_`, a `p_` prefix if it would start with a digit or be empty),
//!   truncated so that the result fits, followed by `__` and the first 8 hex digits of the
//!   SHA-256 of the original name.
//!
//! Plain names never end in a hash suffix and hashed names always do, so the two families
//! never meet; two hashed names only meet on a 32-bit hash collision *and* an equal prefix.
//! Even that case is resolved, deterministically, by [`unique_identifier`], which the table
//! mapping uses together with the catalog (the catalog, not this function, is the source of
//! truth for a column's name once it exists).
//!
//! Identifiers are always quoted in generated SQL ([`quote_ident`]), so SQL keywords such as
//! `order` or `select` are legal column names and are kept as HubSpot spells them.

use sha2::{Digest, Sha256};

/// PostgreSQL's identifier limit (`NAMEDATALEN - 1`), in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Length of the hex hash suffix appended to names that are not plain.
const HASH_HEX_LEN: usize = 8;

/// The separator in front of the hash suffix.
const HASH_SEPARATOR: &str = "__";

/// Column names hubsync itself puts in every object table; a property with one of these
/// names is mapped to a hashed column name instead.
pub const SYSTEM_COLUMNS: &[&str] = &[
    "hubsync_row_id",
    "hs_object_id",
    "custom_properties",
    "hubspot_created_at",
    "hubspot_updated_at",
    "synced_at",
    "archived_at",
    "merged_into",
];

/// The identifier for an arbitrary name (a table, or a junction table): the name itself when
/// it is plain, else its sanitised, truncated form with a hash suffix. Always non-empty, at
/// most [`MAX_IDENTIFIER_BYTES`] bytes, made of `[a-z0-9_]` only.
pub fn identifier(name: &str) -> String {
    if is_plain(name) {
        name.to_owned()
    } else {
        hashed(name, name)
    }
}

/// The column name for a HubSpot property name: like [`identifier`], but hubsync's own
/// [`SYSTEM_COLUMNS`] are never returned for a property.
pub fn column_identifier(property: &str) -> String {
    if SYSTEM_COLUMNS.contains(&property) {
        hashed(property, property)
    } else {
        identifier(property)
    }
}

/// A column or table name for `name` that is not in `taken`: [`identifier`]'s answer when
/// free, else hashed variants of `name#2`, `name#3`, … until one is free. Deterministic for
/// a given `taken` set (callers put hubsync's [`SYSTEM_COLUMNS`] in it for columns).
pub fn unique_identifier(name: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let first = identifier(name);
    if !taken(&first) {
        return first;
    }
    let mut n: u64 = 2;
    loop {
        let candidate = hashed(name, &format!("{name}#{n}"));
        if !taken(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

/// Quotes an identifier for SQL text (`"a""b"`), whatever it contains.
pub fn quote_ident(name: &str) -> String {
    postgres_protocol::escape::escape_identifier(name)
}

/// Quotes a string literal for SQL text (used where parameters are not allowed, e.g.
/// `COMMENT ON`).
pub fn quote_literal(value: &str) -> String {
    postgres_protocol::escape::escape_literal(value)
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// The singular form of an object name, for foreign-key style column names
/// (`contacts` → `contact`, so `contact_id`). HubSpot's standard objects are known; any
/// other name (a custom object) is used as it is, because guessing English plurals of
/// user-chosen names is wrong too often.
pub fn singular(object: &str) -> &str {
    const KNOWN: &[(&str, &str)] = &[
        ("contacts", "contact"),
        ("companies", "company"),
        ("deals", "deal"),
        ("tickets", "ticket"),
        ("products", "product"),
        ("line_items", "line_item"),
        ("quotes", "quote"),
        ("calls", "call"),
        ("emails", "email"),
        ("meetings", "meeting"),
        ("notes", "note"),
        ("tasks", "task"),
        ("communications", "communication"),
        ("leads", "lead"),
        ("orders", "order"),
        ("carts", "cart"),
        ("invoices", "invoice"),
        ("payments", "payment"),
        ("subscriptions", "subscription"),
        ("goals", "goal"),
        ("services", "service"),
        ("courses", "course"),
        ("listings", "listing"),
        ("appointments", "appointment"),
        ("projects", "project"),
        ("users", "user"),
        ("discounts", "discount"),
        ("fees", "fee"),
        ("taxes", "tax"),
        ("feedback_submissions", "feedback_submission"),
        ("marketing_events", "marketing_event"),
    ];
    KNOWN
        .iter()
        .find(|(plural, _)| *plural == object)
        .map_or(object, |(_, one)| one)
}

/// Whether `name` can be used as an identifier unchanged.
fn is_plain(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    bytes.len() <= MAX_IDENTIFIER_BYTES
        && (first.is_ascii_lowercase() || *first == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        && !looks_hashed(name)
}

/// Whether `name` ends like a hashed identifier (`__` + 8 lower-case hex digits).
fn looks_hashed(name: &str) -> bool {
    let suffix_len = HASH_SEPARATOR.len() + HASH_HEX_LEN;
    if name.len() < suffix_len {
        return false;
    }
    let (_, suffix) = name.split_at(name.len() - suffix_len);
    suffix.starts_with(HASH_SEPARATOR)
        && suffix[HASH_SEPARATOR.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Sanitised form of `display` + `__` + hash of `hash_input`.
fn hashed(display: &str, hash_input: &str) -> String {
    let digest = Sha256::digest(hash_input.as_bytes());
    let hash = hex::encode(digest);
    let suffix = format!("{HASH_SEPARATOR}{}", &hash[..HASH_HEX_LEN]);
    let mut base = sanitize(display);
    base.truncate(MAX_IDENTIFIER_BYTES - suffix.len());
    let base = base.trim_end_matches('_');
    format!("{base}{suffix}")
}

/// Lower case; runs of characters outside `[a-z0-9]` become one `_`; a `p_` prefix when the
/// result would be empty or start with a digit. ASCII only, so byte truncation is safe.
fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            out.push(ch);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    match trimmed.bytes().next() {
        None => "p".to_owned(),
        Some(b) if b.is_ascii_digit() => format!("p_{trimmed}"),
        Some(_) => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn valid(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= MAX_IDENTIFIER_BYTES
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    #[test]
    fn plain_names_are_kept() {
        for name in [
            "email",
            "firstname",
            "hs_lead_status",
            "order",
            "select",
            "_x1",
        ] {
            assert_eq!(identifier(name), name);
            assert_eq!(column_identifier(name), name);
        }
    }

    #[test]
    fn hostile_names_are_mapped() {
        let cases = [
            "First Name",
            "a\"b",
            "\"; drop table contacts; --",
            "prénom",
            "名前",
            "",
            "123abc",
            "UPPER",
        ];
        for name in cases {
            let id = identifier(name);
            assert!(valid(&id), "{name:?} -> {id:?}");
            assert!(looks_hashed(&id), "{name:?} -> {id:?}");
        }
        assert!(identifier("First Name").starts_with("first_name__"));
        assert!(identifier("123abc").starts_with("p_123abc__"));
        assert!(identifier("名前").starts_with("p__"));
    }

    #[test]
    fn long_names_are_truncated_with_a_hash() {
        let long = "hs_line_item_global_term_hs_recurring_billing_period_and_then_some_more";
        let a = identifier(long);
        let b = identifier(&format!("{long}_x"));
        assert!(a.len() <= MAX_IDENTIFIER_BYTES);
        assert_ne!(a, b);
        assert!(a.starts_with("hs_line_item_global_term"));
    }

    #[test]
    fn system_columns_are_not_given_to_properties() {
        for name in SYSTEM_COLUMNS {
            let id = column_identifier(name);
            assert_ne!(&id, name);
            assert!(valid(&id));
        }
        assert_eq!(identifier("archived_at"), "archived_at");
    }

    #[test]
    fn names_that_look_hashed_are_hashed_again() {
        let fake = identifier("First Name");
        assert_ne!(identifier(&fake), fake);
    }

    #[test]
    fn unique_identifier_avoids_taken_names() {
        let taken = ["email".to_owned(), column_identifier("email#x")];
        let id = unique_identifier("email", &|c| taken.iter().any(|t| t == c));
        assert_ne!(id, "email");
        assert!(valid(&id));
        assert_eq!(
            id,
            unique_identifier("email", &|c| taken.iter().any(|t| t == c))
        );
    }

    #[test]
    fn singular_names() {
        assert_eq!(singular("companies"), "company");
        assert_eq!(singular("contacts"), "contact");
        assert_eq!(singular("pets"), "pets");
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("hubspot", "contacts"), "\"hubspot\".\"contacts\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    proptest! {
        #[test]
        fn always_valid_and_deterministic(name in any::<String>()) {
            let id = column_identifier(&name);
            prop_assert!(valid(&id), "{:?} -> {:?}", name, id);
            prop_assert_eq!(&id, &column_identifier(&name));
        }

        #[test]
        fn injective(a in "[ -~é名]{0,80}", b in "[ -~é名]{0,80}") {
            if a != b {
                prop_assert_ne!(column_identifier(&a), column_identifier(&b));
            }
        }

        #[test]
        fn injective_on_near_names(base in "[a-z_]{50,70}", extra in "[a-zA-Z ]{1,3}") {
            let other = format!("{base}{extra}");
            prop_assert_ne!(column_identifier(&base), column_identifier(&other));
        }
    }
}
