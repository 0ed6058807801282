//! Associations between CRM records (HubSpot's v4 model, hubspot-api.md §11): typed, directed
//! links stored with their inverse, HubSpot-defined and user-defined (labelled) association
//! types, primary-company semantics (§11.6), and the v3 `associations` expansion used by object
//! reads (§16.5).
//!
//! Every link carries its pair's default (unlabeled) type; labels (Primary, user labels) sit on
//! top of it, and removing the unlabeled type removes the whole link (§11.4).

// Route helpers return `Result<_, ApiError>` like every handler; the error is the response.
#![allow(clippy::result_large_err)]

mod batch;
mod definitions;
mod kind_set;
mod labels;
mod routes;
mod v3;

use std::collections::HashMap;

pub use definitions::{
    AssociationCategory, AssociationDefinition, AssociationKind, Definitions, singular_name,
};
pub use routes::routes;

use kind_set::KindSet;

use crate::state::ObjectTypeId;

/// The company object type, the "one" side of every primary association.
const COMPANY: ObjectTypeId = ObjectTypeId::COMPANY;

/// One end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Node {
    object_type: ObjectTypeId,
    id: u64,
}

impl From<(ObjectTypeId, u64)> for Node {
    fn from((object_type, id): (ObjectTypeId, u64)) -> Self {
        Self { object_type, id }
    }
}

/// The link from one record to one target, with every type it carries (sorted).
#[derive(Debug, Clone)]
struct Edge {
    to: Node,
    kinds: KindSet,
}

/// Why an association write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssociationError {
    /// The type does not belong to the object-type pair.
    #[error("association type {category}/{type_id} is not valid between these object types")]
    InvalidType {
        /// The category sent.
        category: &'static str,
        /// The type id sent.
        type_id: u32,
    },
    /// A record cannot be associated with itself.
    #[error("Object {0} cannot be associated to itself ({0})")]
    SelfAssociation(u64),
}

/// One added or removed association type between two records (one direction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationChange {
    /// Source record type.
    pub from_type: ObjectTypeId,
    /// Source record id.
    pub from_id: u64,
    /// Target record type.
    pub to_type: ObjectTypeId,
    /// Target record id.
    pub to_id: u64,
    /// The type added or removed.
    pub kind: AssociationKind,
    /// The type's name upper-cased (`CONTACT_TO_COMPANY`), as webhooks carry it.
    pub type_name: String,
    /// True when removed.
    pub removed: bool,
    /// True for a primary type.
    pub primary: bool,
}

/// One entry of the v3 `associations` expansion on an object read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3AssociationRef {
    /// The associated record's id.
    pub id: u64,
    /// The v3 type name, e.g. `contact_to_company` or `contact_to_company_unlabeled`.
    pub type_name: String,
}

/// All associations of the CRM and the association type definitions.
#[derive(Debug, Clone, Default)]
pub struct AssociationStore {
    definitions: Definitions,
    /// Outgoing links per record, sorted by target.
    edges: HashMap<Node, Vec<Edge>>,
}

impl AssociationStore {
    /// The association type definitions.
    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    /// The association type definitions, for label changes.
    pub fn definitions_mut(&mut self) -> &mut Definitions {
        &mut self.definitions
    }

    /// Makes sure `from → to` has types (custom-object pairs get a default unlabeled type).
    pub fn ensure_pair(&mut self, from: ObjectTypeId, to: ObjectTypeId, names: (&str, &str)) {
        self.definitions.ensure_pair(from, to, names);
    }

    /// The kinds between two records (empty when not associated).
    pub fn kinds_between(
        &self,
        from_type: ObjectTypeId,
        from_id: u64,
        to_type: ObjectTypeId,
        to_id: u64,
    ) -> &[AssociationKind] {
        let from = Node::from((from_type, from_id));
        let to = Node::from((to_type, to_id));
        self.edges
            .get(&from)
            .and_then(|list| {
                list.binary_search_by(|e| e.to.cmp(&to))
                    .ok()
                    .map(|i| &list[i])
            })
            .map_or(&[], |e| e.kinds.as_slice())
    }

    /// The targets of type `to_type` of one record, ascending by id, starting after `after`.
    pub fn targets(
        &self,
        from_type: ObjectTypeId,
        from_id: u64,
        to_type: ObjectTypeId,
        after: Option<u64>,
    ) -> impl Iterator<Item = (u64, &[AssociationKind])> + '_ {
        let from = Node::from((from_type, from_id));
        let list = self.edges.get(&from).map_or(&[][..], Vec::as_slice);
        let start = match after {
            Some(after) => Node {
                object_type: to_type,
                id: after.saturating_add(1),
            },
            None => Node {
                object_type: to_type,
                id: 0,
            },
        };
        let begin = list.partition_point(|e| e.to < start);
        list[begin..]
            .iter()
            .take_while(move |e| e.to.object_type == to_type)
            .filter(move |e| after.is_none_or(|a| e.to.id > a))
            .map(|e| (e.to.id, e.kinds.as_slice()))
    }

    /// How many links the store holds (one per direction).
    pub fn link_count(&self) -> usize {
        self.edges.values().map(Vec::len).sum()
    }

    /// The primary company of a contact, deal or ticket.
    pub fn primary_company(&self, from_type: ObjectTypeId, from_id: u64) -> Option<u64> {
        let primary = self.definitions.primary_kind(from_type, COMPANY)?;
        self.targets(from_type, from_id, COMPANY, None)
            .find(|(_, kinds)| kinds.contains(&primary))
            .map(|(id, _)| id)
    }

    /// Adds `kinds` (plus the pair's unlabeled type) between two records, both directions.
    /// A new primary company demotes the previous one (§11.6). Returns what changed.
    pub fn associate(
        &mut self,
        (from_type, from_id): (ObjectTypeId, u64),
        (to_type, to_id): (ObjectTypeId, u64),
        kinds: &[AssociationKind],
    ) -> Result<Vec<AssociationChange>, AssociationError> {
        if from_type == to_type && from_id == to_id {
            return Err(AssociationError::SelfAssociation(from_id));
        }
        for kind in kinds {
            if self
                .definitions
                .get_for_pair(from_type, to_type, *kind)
                .is_none()
            {
                return Err(AssociationError::InvalidType {
                    category: kind.category.as_str(),
                    type_id: kind.type_id,
                });
            }
        }
        let mut wanted: Vec<AssociationKind> = Vec::with_capacity(kinds.len() + 1);
        if let Some(default) = self.definitions.default_kind(from_type, to_type) {
            wanted.push(default);
        }
        wanted.extend_from_slice(kinds);
        let from = Node::from((from_type, from_id));
        let to = Node::from((to_type, to_id));
        let mut changes = Vec::new();
        for kind in wanted {
            let Some(def) = self.definitions.get(kind).cloned() else {
                continue;
            };
            let inverse_primary = self
                .definitions
                .get(def.inverse)
                .is_some_and(|d| d.is_primary);
            if def.is_primary || inverse_primary {
                let (owner, company) = if from_type == COMPANY {
                    (to, from)
                } else {
                    (from, to)
                };
                changes.extend(self.demote_primary(owner, company.id));
            }
            if self.insert_kind(from, to, kind) {
                changes.push(self.change(from, to, kind, false));
            }
            if self.insert_kind(to, from, def.inverse) {
                changes.push(self.change(to, from, def.inverse, false));
            }
        }
        Ok(changes)
    }

    /// Creates the default association: the unlabeled type, plus Primary when the
    /// contact/deal/ticket has no primary company yet (the first company becomes primary).
    pub fn associate_default(
        &mut self,
        from: (ObjectTypeId, u64),
        to: (ObjectTypeId, u64),
    ) -> Result<Vec<AssociationChange>, AssociationError> {
        let mut kinds = Vec::new();
        if let Some(primary) = self.definitions.primary_kind(from.0, to.0) {
            let owner = if from.0 == COMPANY { to } else { from };
            if self.primary_company(owner.0, owner.1).is_none() {
                kinds.push(primary);
            }
        }
        self.associate(from, to, &kinds)
    }

    /// Removes every type between two records (both directions).
    pub fn remove_pair(
        &mut self,
        (from_type, from_id): (ObjectTypeId, u64),
        (to_type, to_id): (ObjectTypeId, u64),
    ) -> Vec<AssociationChange> {
        let from = Node::from((from_type, from_id));
        let to = Node::from((to_type, to_id));
        let mut changes = Vec::new();
        for (a, b) in [(from, to), (to, from)] {
            for kind in self.take_edge(a, b) {
                changes.push(self.change(a, b, kind, true));
            }
        }
        changes
    }

    /// Removes only `kinds` between two records; removing the unlabeled type removes the
    /// whole link (§11.4 `batch/labels/archive`).
    pub fn remove_kinds(
        &mut self,
        from: (ObjectTypeId, u64),
        to: (ObjectTypeId, u64),
        kinds: &[AssociationKind],
    ) -> Vec<AssociationChange> {
        let default = self.definitions.default_kind(from.0, to.0);
        if kinds.iter().any(|k| Some(*k) == default) {
            return self.remove_pair(from, to);
        }
        let a = Node::from(from);
        let b = Node::from(to);
        let mut changes = Vec::new();
        for kind in kinds {
            let Some(inverse) = self.definitions.get(*kind).map(|d| d.inverse) else {
                continue;
            };
            if self.remove_kind(a, b, *kind) {
                changes.push(self.change(a, b, *kind, true));
            }
            if self.remove_kind(b, a, inverse) {
                changes.push(self.change(b, a, inverse, true));
            }
        }
        changes
    }

    /// Removes one type from every link that carries it (a deleted label).
    pub fn remove_kind_everywhere(&mut self, kind: AssociationKind) {
        for list in self.edges.values_mut() {
            for edge in list.iter_mut() {
                edge.kinds.remove(kind);
            }
            list.retain(|e| !e.kinds.is_empty());
        }
        self.edges.retain(|_, list| !list.is_empty());
    }

    /// Removes every association of the record (hard delete, GDPR delete).
    pub fn remove_object(&mut self, object_type: ObjectTypeId, id: u64) -> Vec<AssociationChange> {
        let node = Node { object_type, id };
        let targets: Vec<Node> = self
            .edges
            .get(&node)
            .map(|l| l.iter().map(|e| e.to).collect())
            .unwrap_or_default();
        let mut changes = Vec::new();
        for target in targets {
            changes.extend(self.remove_pair((object_type, id), (target.object_type, target.id)));
        }
        changes
    }

    /// Moves every association of `loser_id` onto `winner_id` (merge). Links between the two
    /// records disappear; the winner keeps its own primary company.
    pub fn repoint(
        &mut self,
        object_type: ObjectTypeId,
        loser_id: u64,
        winner_id: u64,
    ) -> Vec<AssociationChange> {
        let loser = Node {
            object_type,
            id: loser_id,
        };
        let edges = self.edges.get(&loser).cloned().unwrap_or_default();
        let mut changes = self.remove_object(object_type, loser_id);
        for edge in edges {
            if edge.to.object_type == object_type && edge.to.id == winner_id {
                continue;
            }
            let mut kinds = edge.kinds.as_slice().to_vec();
            if object_type != COMPANY && self.primary_company(object_type, winner_id).is_some() {
                kinds.retain(|k| !self.definitions.get(*k).is_some_and(|d| d.is_primary));
            }
            if let Ok(added) = self.associate(
                (object_type, winner_id),
                (edge.to.object_type, edge.to.id),
                &kinds,
            ) {
                changes.extend(added);
            }
        }
        changes
    }

    /// The v3 expansion of one record's associations to one target type: one entry per
    /// (target, type), so a primary company appears twice (§16.5).
    pub fn expand_v3(
        &self,
        from_type: ObjectTypeId,
        from_id: u64,
        to_type: ObjectTypeId,
    ) -> Vec<V3AssociationRef> {
        let mut out = Vec::new();
        for (id, kinds) in self.targets(from_type, from_id, to_type, None) {
            for kind in kinds {
                if let Some(def) = self.definitions.get(*kind) {
                    out.push(V3AssociationRef {
                        id,
                        type_name: def.name.clone(),
                    });
                }
            }
        }
        out
    }

    /// Forgets every association (type definitions, labels included, stay).
    pub fn clear(&mut self) {
        self.edges.clear();
    }

    fn demote_primary(&mut self, owner: Node, keep_company: u64) -> Vec<AssociationChange> {
        let Some(primary) = self.definitions.primary_kind(owner.object_type, COMPANY) else {
            return Vec::new();
        };
        let old: Vec<u64> = self
            .targets(owner.object_type, owner.id, COMPANY, None)
            .filter(|(id, kinds)| *id != keep_company && kinds.contains(&primary))
            .map(|(id, _)| id)
            .collect();
        let mut changes = Vec::new();
        for company in old {
            changes.extend(self.remove_kinds(
                (owner.object_type, owner.id),
                (COMPANY, company),
                &[primary],
            ));
        }
        changes
    }

    /// Adds one kind to the link `a → b`; false when it was already there.
    fn insert_kind(&mut self, a: Node, b: Node, kind: AssociationKind) -> bool {
        let list = self.edges.entry(a).or_default();
        match list.binary_search_by(|e| e.to.cmp(&b)) {
            Ok(i) => list[i].kinds.insert(kind),
            Err(i) => {
                list.insert(
                    i,
                    Edge {
                        to: b,
                        kinds: KindSet::one(kind),
                    },
                );
                true
            }
        }
    }

    /// Removes one kind from `a → b` (dropping the link when it was the last); false when absent.
    fn remove_kind(&mut self, a: Node, b: Node, kind: AssociationKind) -> bool {
        let Some(list) = self.edges.get_mut(&a) else {
            return false;
        };
        let Ok(i) = list.binary_search_by(|e| e.to.cmp(&b)) else {
            return false;
        };
        let removed = list[i].kinds.remove(kind);
        if list[i].kinds.is_empty() {
            list.remove(i);
        }
        if list.is_empty() {
            self.edges.remove(&a);
        }
        removed
    }

    /// Removes the whole link `a → b`, returning its kinds.
    fn take_edge(&mut self, a: Node, b: Node) -> Vec<AssociationKind> {
        let Some(list) = self.edges.get_mut(&a) else {
            return Vec::new();
        };
        let Ok(i) = list.binary_search_by(|e| e.to.cmp(&b)) else {
            return Vec::new();
        };
        let edge = list.remove(i);
        if list.is_empty() {
            self.edges.remove(&a);
        }
        edge.kinds.as_slice().to_vec()
    }

    fn change(&self, a: Node, b: Node, kind: AssociationKind, removed: bool) -> AssociationChange {
        let def = self.definitions.get(kind);
        AssociationChange {
            from_type: a.object_type,
            from_id: a.id,
            to_type: b.object_type,
            to_id: b.id,
            kind,
            type_name: def.map(|d| d.name.to_ascii_uppercase()).unwrap_or_default(),
            removed,
            primary: def.is_some_and(|d| d.is_primary),
        }
    }
}

#[cfg(test)]
mod tests;
