//! The in-memory CRM: object types (standard and custom), their record stores, and the
//! associations, owners and pipelines that live beside them. One [`Crm`] per emulator, behind
//! a `RwLock` in [`crate::AppState`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Serialize, Serializer};

use crate::associations::AssociationStore;
use crate::catalog;
use crate::owners::Owners;
use crate::pipelines::Pipelines;
use crate::properties::PropertyRegistry;
use crate::records::ObjectStore;
use crate::schemas::CustomSchema;

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

/// One object type: its metadata, property definitions, records, and merge aliases.
#[derive(Debug)]
pub struct ObjectTable {
    /// Metadata.
    pub kind: ObjectKind,
    /// Property definitions and groups.
    pub props: PropertyRegistry,
    /// The records.
    pub store: ObjectStore,
    /// Custom object schema (custom types only).
    pub schema: Option<CustomSchema>,
    /// Merged-away id → surviving id.
    pub aliases: HashMap<u64, u64>,
}

impl ObjectTable {
    /// A table with no records.
    pub fn new(kind: ObjectKind, props: PropertyRegistry, schema: Option<CustomSchema>) -> Self {
        let mut store = ObjectStore::default();
        for (id, def) in props.iter() {
            if def.has_unique_value {
                store.add_unique(id);
            }
        }
        Self {
            kind,
            props,
            store,
            schema,
            aliases: HashMap::new(),
        }
    }

    /// Follows merge aliases to the surviving id.
    pub fn canonical_id(&self, id: u64) -> u64 {
        let mut id = id;
        for _ in 0..64 {
            match self.aliases.get(&id) {
                Some(next) => id = *next,
                None => break,
            }
        }
        id
    }
}

/// The whole CRM of one emulated portal.
#[derive(Debug)]
pub struct Crm {
    /// The portal (hub) id shown in URLs and webhook payloads.
    pub portal_id: u32,
    tables: BTreeMap<ObjectTypeId, ObjectTable>,
    names: HashMap<String, ObjectTypeId>,
    next_id: u64,
    next_custom_type: u32,
    /// Emails blocked by GDPR deletes (lower-case).
    pub gdpr_blocklist: HashSet<String>,
    /// Associations between records (owned by the associations module).
    pub associations: AssociationStore,
    /// Owners (users records can be assigned to).
    pub owners: Owners,
    /// Deal and ticket pipelines with their stages.
    pub pipelines: Pipelines,
}

/// First record id handed out: above 2^32, so clients that keep ids in 32 bits fail early.
pub const FIRST_RECORD_ID: u64 = 5_000_000_001;

impl Crm {
    /// An empty CRM with the four standard object types.
    pub fn new(portal_id: u32) -> Self {
        let mut crm = Self {
            portal_id,
            tables: BTreeMap::new(),
            names: HashMap::new(),
            next_id: FIRST_RECORD_ID,
            next_custom_type: 1_000_001,
            gdpr_blocklist: HashSet::new(),
            associations: AssociationStore::default(),
            owners: Owners::default(),
            pipelines: Pipelines::default(),
        };
        for kind in standard_kinds() {
            let props =
                catalog::standard_registry(kind.id, kind.modified_property).unwrap_or_default();
            crm.register(ObjectTable::new(kind, props, None));
        }
        crm
    }

    /// Adds an object type (replacing one with the same id) and the names it answers to.
    pub fn register(&mut self, table: ObjectTable) {
        let kind = &table.kind;
        let id = kind.id;
        self.names.insert(kind.name.to_lowercase(), id);
        self.names.insert(kind.singular.to_lowercase(), id);
        if let Some(fqn) = &kind.fully_qualified_name {
            self.names.insert(fqn.to_lowercase(), id);
        }
        self.tables.insert(id, table);
    }

    /// Removes a custom object type entirely.
    pub fn unregister(&mut self, id: ObjectTypeId) -> Option<ObjectTable> {
        let table = self.tables.remove(&id)?;
        self.names.retain(|_, v| *v != id);
        Some(table)
    }

    /// A fresh custom object type id (`2-N`).
    pub fn next_custom_type_id(&mut self) -> ObjectTypeId {
        let id = ObjectTypeId {
            meta: 2,
            number: self.next_custom_type,
        };
        self.next_custom_type += 1;
        id
    }

    /// A fresh record id (unique across all types).
    pub fn next_record_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Resolves a path's `{objectType}`: plural or singular name, `M-N` id, or a custom
    /// object's name / fully-qualified name. `None` when the portal has no such type.
    pub fn resolve_type(&self, name_or_id: &str) -> Option<ObjectTypeId> {
        if let Some(id) = ObjectTypeId::parse(name_or_id) {
            return self.tables.contains_key(&id).then_some(id);
        }
        self.names.get(&name_or_id.to_lowercase()).copied()
    }

    /// The metadata of a registered type.
    pub fn kind(&self, id: ObjectTypeId) -> Option<&ObjectKind> {
        self.tables.get(&id).map(|t| &t.kind)
    }

    /// Every registered type.
    pub fn tables(&self) -> impl Iterator<Item = &ObjectTable> {
        self.tables.values()
    }

    /// One type's table.
    pub fn table(&self, id: ObjectTypeId) -> Option<&ObjectTable> {
        self.tables.get(&id)
    }

    /// One type's table, mutable.
    pub fn table_mut(&mut self, id: ObjectTypeId) -> Option<&mut ObjectTable> {
        self.tables.get_mut(&id)
    }

    /// True when a live (not archived) record with this id exists.
    pub fn exists(&self, object_type: ObjectTypeId, id: u64) -> bool {
        self.tables
            .get(&object_type)
            .is_some_and(|t| t.store.live(id).is_some())
    }

    /// Forgets every record and association (keeps types and property definitions).
    pub fn clear_data(&mut self) {
        for table in self.tables.values_mut() {
            table.store.clear();
            table.aliases.clear();
        }
        self.associations.clear();
        self.gdpr_blocklist.clear();
    }
}

fn standard_kinds() -> Vec<ObjectKind> {
    let more = catalog::MORE_TYPES
        .iter()
        .map(|(number, name, singular, defaults, _, _)| {
            ObjectKind::standard(
                ObjectTypeId {
                    meta: 0,
                    number: *number,
                },
                name,
                singular,
                defaults,
            )
        });
    let mut kinds = vec![
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
    ];
    kinds.extend(more);
    kinds
}
