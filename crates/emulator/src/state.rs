//! The in-memory CRM: object types (standard and custom), their record stores, and the
//! associations, owners and pipelines that live beside them. One [`Crm`] per emulator, behind
//! a `RwLock` in [`crate::AppState`].

use std::collections::HashMap;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::associations::AssociationStore;
use crate::owners::Owners;
use crate::pipelines::Pipelines;

/// An object type id such as `0-1` (contacts) or `2-123456` (a custom object).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectTypeId {
    /// `0` for HubSpot-defined types, `2` for custom objects.
    pub meta: u8,
    /// The number after the dash.
    pub number: u32,
}

impl ObjectTypeId {
    /// Contacts (`0-1`).
    pub const CONTACT: Self = Self { meta: 0, number: 1 };
    /// Companies (`0-2`).
    pub const COMPANY: Self = Self { meta: 0, number: 2 };
    /// Deals (`0-3`).
    pub const DEAL: Self = Self { meta: 0, number: 3 };
    /// Tickets (`0-5`).
    pub const TICKET: Self = Self { meta: 0, number: 5 };

    /// Parses `M-N`.
    pub fn parse(text: &str) -> Option<Self> {
        let (meta, number) = text.split_once('-')?;
        Some(Self {
            meta: meta.parse().ok()?,
            number: number.parse().ok()?,
        })
    }

    /// True for custom objects (`2-N`).
    pub fn is_custom(self) -> bool {
        self.meta == 2
    }
}

impl fmt::Display for ObjectTypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.meta, self.number)
    }
}

impl Serialize for ObjectTypeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What the emulator knows about one object type.
#[derive(Debug, Clone)]
pub struct ObjectKind {
    /// Its id.
    pub id: ObjectTypeId,
    /// Plural API name (`contacts`, or a custom object's `name`).
    pub name: String,
    /// Singular name (`contact`; for custom objects the name itself).
    pub singular: String,
    /// `fullyQualifiedName` for custom objects (`p{portal}_{name}`).
    pub fully_qualified_name: Option<String>,
    /// The last-modified property (`lastmodifieddate` for contacts, else `hs_lastmodifieddate`).
    pub modified_property: &'static str,
    /// Properties returned when a read names none.
    pub default_properties: Vec<String>,
}

impl ObjectKind {
    fn standard(id: ObjectTypeId, name: &str, singular: &str, defaults: &[&str]) -> Self {
        Self {
            id,
            name: name.to_owned(),
            singular: singular.to_owned(),
            fully_qualified_name: None,
            modified_property: if id == ObjectTypeId::CONTACT {
                "lastmodifieddate"
            } else {
                "hs_lastmodifieddate"
            },
            default_properties: defaults.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The upper-case singular used in some messages (`CONTACT`).
    pub fn upper_singular(&self) -> String {
        self.singular.to_uppercase()
    }
}

/// The whole CRM of one emulated portal.
#[derive(Debug)]
pub struct Crm {
    /// The portal (hub) id shown in URLs and webhook payloads.
    pub portal_id: u32,
    kinds: Vec<ObjectKind>,
    names: HashMap<String, ObjectTypeId>,
    /// Associations between records (owned by the associations module).
    pub associations: AssociationStore,
    /// Owners (users records can be assigned to).
    pub owners: Owners,
    /// Deal and ticket pipelines with their stages.
    pub pipelines: Pipelines,
}

impl Crm {
    /// An empty CRM with the four standard object types.
    pub fn new(portal_id: u32) -> Self {
        let mut crm = Self {
            portal_id,
            kinds: Vec::new(),
            names: HashMap::new(),
            associations: AssociationStore::default(),
            owners: Owners::default(),
            pipelines: Pipelines::default(),
        };
        for kind in standard_kinds() {
            crm.register_kind(kind);
        }
        crm
    }

    /// Adds an object type and the names it answers to.
    pub fn register_kind(&mut self, kind: ObjectKind) {
        let id = kind.id;
        self.names.insert(kind.name.to_lowercase(), id);
        self.names.insert(kind.singular.to_lowercase(), id);
        if let Some(fqn) = &kind.fully_qualified_name {
            self.names.insert(fqn.to_lowercase(), id);
        }
        self.kinds.retain(|k| k.id != id);
        self.kinds.push(kind);
    }

    /// Resolves a path's `{objectType}`: plural or singular name, `M-N` id, or a custom
    /// object's name / fully-qualified name. `None` when the portal has no such type.
    pub fn resolve_type(&self, name_or_id: &str) -> Option<ObjectTypeId> {
        if let Some(id) = ObjectTypeId::parse(name_or_id) {
            return self.kind(id).map(|k| k.id);
        }
        self.names.get(&name_or_id.to_lowercase()).copied()
    }

    /// The metadata of a registered type.
    pub fn kind(&self, id: ObjectTypeId) -> Option<&ObjectKind> {
        self.kinds.iter().find(|k| k.id == id)
    }

    /// Every registered type.
    pub fn kinds(&self) -> &[ObjectKind] {
        &self.kinds
    }

    /// True when a live (not archived) record with this id exists.
    pub fn exists(&self, object_type: ObjectTypeId, id: u64) -> bool {
        let _ = (object_type, id);
        false
    }
}

fn standard_kinds() -> Vec<ObjectKind> {
    vec![
        ObjectKind::standard(
            ObjectTypeId::CONTACT,
            "contacts",
            "contact",
            &["firstname", "lastname", "email"],
        ),
        ObjectKind::standard(
            ObjectTypeId::COMPANY,
            "companies",
            "company",
            &["name", "domain"],
        ),
        ObjectKind::standard(
            ObjectTypeId::DEAL,
            "deals",
            "deal",
            &["dealname", "amount", "closedate", "pipeline", "dealstage"],
        ),
        ObjectKind::standard(
            ObjectTypeId::TICKET,
            "tickets",
            "ticket",
            &[
                "content",
                "hs_pipeline",
                "hs_pipeline_stage",
                "hs_ticket_category",
                "hs_ticket_priority",
                "subject",
            ],
        ),
    ]
}
