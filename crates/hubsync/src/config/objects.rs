//! `[[object]]` sections: which objects sync, in which direction, on which schedule, with
//! which properties and conflict rules.

use std::{collections::BTreeMap, time::Duration};

use super::{
    ConfigError,
    file::{ModeSection, ObjectSection, PropertyList},
    invalid,
};

/// One validated `[[object]]`.
#[derive(Debug, Clone)]
pub(crate) struct ObjectConfig {
    /// The object's name as HubSpot knows it (contacts, companies, a custom object…).
    pub(crate) name: String,
    /// `hubspot-to-postgres`, `postgres-to-hubspot` or `two-way`.
    pub(crate) direction: String,
    /// `None` = all properties; otherwise only these ever leave HubSpot.
    pub(crate) properties: Option<Vec<String>>,
    /// Default conflict policy of the object's fields.
    pub(crate) conflict: String,
    /// When it syncs.
    pub(crate) schedule: Schedule,
    /// Per-field overrides: field → (direction, conflict).
    pub(crate) fields: BTreeMap<String, (Option<String>, Option<String>)>,
}

/// When an object syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Webhooks and change capture in real time.
    pub(crate) realtime: bool,
    /// A polling pass at this interval.
    pub(crate) every: Option<Duration>,
}

const DIRECTIONS: [&str; 3] = ["hubspot-to-postgres", "postgres-to-hubspot", "two-way"];
const POLICIES: [&str; 4] = ["last-write-wins", "hubspot-wins", "postgres-wins", "manual"];

pub(super) fn validate(sections: Vec<ObjectSection>) -> Result<Vec<ObjectConfig>, ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(sections.len());
    for (i, s) in sections.into_iter().enumerate() {
        let key = format!("object[{i}]");
        let name = s.name.trim().to_owned();
        if name.is_empty() {
            return Err(invalid(format!("{key}.name"), "must not be empty"));
        }
        if !seen.insert(name.clone()) {
            return Err(invalid(
                format!("{key}.name"),
                format!("{name:?} is configured twice"),
            ));
        }
        let direction = one_of(
            &key,
            "direction",
            s.direction,
            "hubspot-to-postgres",
            &DIRECTIONS,
        )?;
        let conflict = one_of(&key, "conflict", s.conflict, "last-write-wins", &POLICIES)?;
        let properties = match s.properties {
            None => None,
            Some(PropertyList::Word(w)) if w == "all" => None,
            Some(PropertyList::Word(w)) => {
                return Err(invalid(
                    format!("{key}.properties"),
                    format!("{w:?}: \"all\" or a list"),
                ));
            }
            Some(PropertyList::List(list)) if list.is_empty() => {
                return Err(invalid(
                    format!("{key}.properties"),
                    "an empty list syncs nothing",
                ));
            }
            Some(PropertyList::List(list)) => Some(list),
        };
        let schedule = match s.mode {
            None => Schedule {
                realtime: true,
                every: None,
            },
            Some(ModeSection::Word(w)) if w == "realtime" => Schedule {
                realtime: true,
                every: None,
            },
            Some(ModeSection::Word(w)) => {
                return Err(invalid(
                    format!("{key}.mode"),
                    format!("{w:?}: \"realtime\" or {{ every = \"15m\" }}"),
                ));
            }
            Some(ModeSection::Table { every, realtime }) => {
                let every = every
                    .map(|e| super::duration(&format!("{key}.mode.every"), Some(e), ""))
                    .transpose()?;
                let realtime = realtime.unwrap_or(every.is_none());
                Schedule { realtime, every }
            }
        };
        let mut fields = BTreeMap::new();
        for (field, f) in s.fields {
            let fkey = format!("{key}.fields.{field}");
            let d = f
                .direction
                .map(|d| one_of(&fkey, "direction", Some(d), "", &DIRECTIONS))
                .transpose()?;
            let c = f
                .conflict
                .map(|c| one_of(&fkey, "conflict", Some(c), "", &POLICIES))
                .transpose()?;
            fields.insert(field, (d, c));
        }
        out.push(ObjectConfig {
            name,
            direction,
            properties,
            conflict,
            schedule,
            fields,
        });
    }
    Ok(out)
}

fn one_of(
    key: &str,
    field: &str,
    value: Option<String>,
    default: &str,
    allowed: &[&str],
) -> Result<String, ConfigError> {
    let v = value.unwrap_or_else(|| default.to_owned());
    if allowed.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(invalid(
            format!("{key}.{field}"),
            format!("{v:?}: expected one of {}", allowed.join(", ")),
        ))
    }
}
