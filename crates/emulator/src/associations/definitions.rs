//! Association type definitions: HubSpot's own type ids (hubspot-api.md §11.2), user-defined
//! labels (§11.5) and the default (unlabeled) type of every object-type pair.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::state::ObjectTypeId;

/// `associationCategory` of an association type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssociationCategory {
    /// Types HubSpot ships (unlabeled, Primary, parent/child…).
    HubspotDefined,
    /// Labels created by users (or default types of custom-object pairs).
    UserDefined,
    /// Types created by integrators.
    IntegratorDefined,
}

impl AssociationCategory {
    /// The wire string (`HUBSPOT_DEFINED`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HubspotDefined => "HUBSPOT_DEFINED",
            Self::UserDefined => "USER_DEFINED",
            Self::IntegratorDefined => "INTEGRATOR_DEFINED",
        }
    }
}

/// One association type: category plus type id (`{associationCategory, associationTypeId}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssociationKind {
    /// The category.
    pub category: AssociationCategory,
    /// The type id (e.g. 279).
    pub type_id: u32,
}

impl AssociationKind {
    /// A HubSpot-defined kind.
    pub const fn hubspot(type_id: u32) -> Self {
        Self {
            category: AssociationCategory::HubspotDefined,
            type_id,
        }
    }
}

/// The definition of one directed association type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationDefinition {
    /// The source object type.
    pub from_type: ObjectTypeId,
    /// The target object type.
    pub to_type: ObjectTypeId,
    /// Category and type id.
    pub kind: AssociationKind,
    /// The label (`Primary`, a user label); `None` for unlabeled types.
    pub label: Option<String>,
    /// The v3 / webhook name (`contact_to_company_unlabeled`, a label's internal name).
    pub name: String,
    /// The type of the same link seen from the other side.
    pub inverse: AssociationKind,
    /// The pair's default (unlabeled) type.
    pub is_default: bool,
    /// A primary-company type (a record has at most one).
    pub is_primary: bool,
}

/// How a built-in type behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Default,
    Primary,
    Labelled,
}

/// Standard object type ids with the singular names HubSpot uses in type names and messages.
const STANDARD_TYPES: &[(u32, &str)] = &[
    (1, "contact"),
    (2, "company"),
    (3, "deal"),
    (5, "ticket"),
    (7, "product"),
    (8, "line_item"),
    (14, "quote"),
    (27, "task"),
    (46, "note"),
    (47, "meeting"),
    (48, "call"),
    (49, "email"),
];

/// The singular name of a standard object type id, if it is one.
pub fn singular_name(object_type: ObjectTypeId) -> Option<&'static str> {
    if object_type.meta != 0 {
        return None;
    }
    STANDARD_TYPES
        .iter()
        .find(|(n, _)| *n == object_type.number)
        .map(|(_, name)| *name)
}

/// A standard (HubSpot-defined) object type id `0-N`.
const fn standard(number: u32) -> ObjectTypeId {
    ObjectTypeId { meta: 0, number }
}

/// HubSpot-defined types: (from, to, type id, inverse id, label, role).
/// (from type number, to type number, type id, inverse id, label, role).
type BuiltIn = (u32, u32, u32, u32, Option<&'static str>, Role);

const BUILT_IN: &[BuiltIn] = &[
    (1, 2, 279, 280, None, Role::Default),
    (1, 2, 1, 2, Some("Primary"), Role::Primary),
    (2, 1, 280, 279, None, Role::Default),
    (2, 1, 2, 1, Some("Primary"), Role::Primary),
    (3, 1, 3, 4, None, Role::Default),
    (1, 3, 4, 3, None, Role::Default),
    (3, 2, 341, 342, None, Role::Default),
    (3, 2, 5, 6, Some("Primary"), Role::Primary),
    (2, 3, 342, 341, None, Role::Default),
    (2, 3, 6, 5, Some("Primary"), Role::Primary),
    (1, 5, 15, 16, None, Role::Default),
    (5, 1, 16, 15, None, Role::Default),
    (5, 2, 339, 340, None, Role::Default),
    (5, 2, 26, 25, Some("Primary"), Role::Primary),
    (2, 5, 340, 339, None, Role::Default),
    (2, 5, 25, 26, Some("Primary"), Role::Primary),
    (3, 5, 27, 28, None, Role::Default),
    (5, 3, 28, 27, None, Role::Default),
    (2, 2, 450, 450, None, Role::Default),
    (2, 2, 13, 14, Some("Child Company"), Role::Labelled),
    (2, 2, 14, 13, Some("Parent Company"), Role::Labelled),
    (1, 1, 449, 449, None, Role::Default),
    (3, 3, 451, 451, None, Role::Default),
    (5, 5, 452, 452, None, Role::Default),
    (3, 8, 19, 20, None, Role::Default),
    (8, 3, 20, 19, None, Role::Default),
    // Quotes (68 and 69 inferred from HubSpot's odd/even pairing; the rest from the SDK enum).
    (3, 14, 63, 64, None, Role::Default),
    (14, 3, 64, 63, None, Role::Default),
    (14, 8, 67, 68, None, Role::Default),
    (8, 14, 68, 67, None, Role::Default),
    (14, 1, 69, 70, None, Role::Default),
    (1, 14, 70, 69, None, Role::Default),
    (14, 2, 71, 72, None, Role::Default),
    (2, 14, 72, 71, None, Role::Default),
    // Engagements: contact/company/deal/ticket → note/call/email/meeting/task and back.
    (1, 46, 201, 202, None, Role::Default),
    (2, 46, 189, 190, None, Role::Default),
    (3, 46, 213, 214, None, Role::Default),
    (5, 46, 227, 228, None, Role::Default),
    (1, 48, 193, 194, None, Role::Default),
    (2, 48, 181, 182, None, Role::Default),
    (3, 48, 205, 206, None, Role::Default),
    (5, 48, 219, 220, None, Role::Default),
    (1, 49, 197, 198, None, Role::Default),
    (2, 49, 185, 186, None, Role::Default),
    (3, 49, 209, 210, None, Role::Default),
    (5, 49, 223, 224, None, Role::Default),
    (1, 47, 199, 200, None, Role::Default),
    (2, 47, 187, 188, None, Role::Default),
    (3, 47, 211, 212, None, Role::Default),
    (5, 47, 225, 226, None, Role::Default),
    (1, 27, 203, 204, None, Role::Default),
    (2, 27, 191, 192, None, Role::Default),
    (3, 27, 215, 216, None, Role::Default),
    (5, 27, 229, 230, None, Role::Default),
];

/// The first id given to user-defined types (well clear of HubSpot's own ids).
const FIRST_USER_TYPE_ID: u32 = 1000;

/// The engagement types, whose inverse rows are generated from the table above.
const ENGAGEMENT_TYPES: &[u32] = &[46, 48, 49, 47, 27];

/// Every association type definition of the portal.
#[derive(Debug, Clone)]
pub struct Definitions {
    by_kind: HashMap<AssociationKind, AssociationDefinition>,
    /// Kinds per (from, to) pair, in display order.
    by_pair: HashMap<(ObjectTypeId, ObjectTypeId), Vec<AssociationKind>>,
    next_user_id: u32,
}

impl Default for Definitions {
    fn default() -> Self {
        let mut defs = Self {
            by_kind: HashMap::new(),
            by_pair: HashMap::new(),
            next_user_id: FIRST_USER_TYPE_ID,
        };
        for &(from, to, id, inverse, label, role) in BUILT_IN {
            let (from, to) = (standard(from), standard(to));
            defs.add_built_in(from, to, id, inverse, label, role);
            if ENGAGEMENT_TYPES.contains(&to.number) {
                defs.add_built_in(to, from, inverse, id, None, Role::Default);
            }
        }
        defs
    }
}

/// The v3 type name of a built-in type (`contact_to_company`, `…_unlabeled`).
fn built_in_name(
    from: ObjectTypeId,
    to: ObjectTypeId,
    label: Option<&str>,
    role: Role,
    pair_has_primary: bool,
) -> String {
    let from_name = singular_name(from).unwrap_or_default();
    let to_name = singular_name(to).unwrap_or_default();
    match (role, label) {
        (Role::Labelled, Some("Child Company")) => "parent_to_child_company".to_owned(),
        (Role::Labelled, Some("Parent Company")) => "child_to_parent_company".to_owned(),
        (Role::Default, _) if pair_has_primary => format!("{from_name}_to_{to_name}_unlabeled"),
        _ => format!("{from_name}_to_{to_name}"),
    }
}

impl Definitions {
    fn add_built_in(
        &mut self,
        from: ObjectTypeId,
        to: ObjectTypeId,
        id: u32,
        inverse: u32,
        label: Option<&str>,
        role: Role,
    ) {
        let has_primary = BUILT_IN.iter().any(|&(f, t, _, _, _, r)| {
            standard(f) == from && standard(t) == to && r == Role::Primary
        });
        let def = AssociationDefinition {
            from_type: from,
            to_type: to,
            kind: AssociationKind::hubspot(id),
            label: label.map(str::to_owned),
            name: built_in_name(from, to, label, role, has_primary),
            inverse: AssociationKind::hubspot(inverse),
            is_default: role == Role::Default,
            is_primary: role == Role::Primary,
        };
        self.insert(def);
    }

    fn insert(&mut self, def: AssociationDefinition) {
        let pair = (def.from_type, def.to_type);
        let kinds = self.by_pair.entry(pair).or_default();
        if !kinds.contains(&def.kind) {
            kinds.push(def.kind);
        }
        self.by_kind.insert(def.kind, def);
    }

    fn allocate_user_id(&mut self) -> AssociationKind {
        let id = self.next_user_id;
        self.next_user_id += 1;
        AssociationKind {
            category: AssociationCategory::UserDefined,
            type_id: id,
        }
    }

    /// Makes sure the pair (and its inverse) has a default type: object types without
    /// HubSpot-defined types between them (custom objects) get a user-defined unlabeled pair.
    /// `names` are the singular names of `from` and `to` (for the v3 type name).
    pub fn ensure_pair(&mut self, from: ObjectTypeId, to: ObjectTypeId, names: (&str, &str)) {
        if self.default_kind(from, to).is_some() {
            return;
        }
        let forward = self.allocate_user_id();
        let backward = if from == to {
            forward
        } else {
            self.allocate_user_id()
        };
        let (from_name, to_name) = names;
        self.insert(AssociationDefinition {
            from_type: from,
            to_type: to,
            kind: forward,
            label: None,
            name: format!("{from_name}_to_{to_name}"),
            inverse: backward,
            is_default: true,
            is_primary: false,
        });
        if from != to {
            self.insert(AssociationDefinition {
                from_type: to,
                to_type: from,
                kind: backward,
                label: None,
                name: format!("{to_name}_to_{from_name}"),
                inverse: forward,
                is_default: true,
                is_primary: false,
            });
        }
    }

    /// The definition of a kind.
    pub fn get(&self, kind: AssociationKind) -> Option<&AssociationDefinition> {
        self.by_kind.get(&kind)
    }

    /// The definition of a kind if it belongs to the pair `from → to`.
    pub fn get_for_pair(
        &self,
        from: ObjectTypeId,
        to: ObjectTypeId,
        kind: AssociationKind,
    ) -> Option<&AssociationDefinition> {
        self.get(kind)
            .filter(|d| d.from_type == from && d.to_type == to)
    }

    /// The pair's default (unlabeled) kind.
    pub fn default_kind(&self, from: ObjectTypeId, to: ObjectTypeId) -> Option<AssociationKind> {
        self.pair(from, to).find(|d| d.is_default).map(|d| d.kind)
    }

    /// The pair's primary kind, if the pair has one.
    pub fn primary_kind(&self, from: ObjectTypeId, to: ObjectTypeId) -> Option<AssociationKind> {
        self.pair(from, to).find(|d| d.is_primary).map(|d| d.kind)
    }

    /// Every definition of the pair `from → to`, in display order.
    pub fn pair(
        &self,
        from: ObjectTypeId,
        to: ObjectTypeId,
    ) -> impl Iterator<Item = &AssociationDefinition> + '_ {
        self.by_pair
            .get(&(from, to))
            .into_iter()
            .flatten()
            .filter_map(|kind| self.by_kind.get(kind))
    }

    /// The kind of the pair named `name` (a v3 type name such as `contact_to_company`, or a
    /// type id).
    pub fn by_name(
        &self,
        from: ObjectTypeId,
        to: ObjectTypeId,
        name: &str,
    ) -> Option<AssociationKind> {
        let id: Option<u32> = name.parse().ok();
        self.pair(from, to)
            .find(|d| d.name.eq_ignore_ascii_case(name) || Some(d.kind.type_id) == id)
            .map(|d| d.kind)
    }

    /// Creates a user-defined label for `from → to` (and its inverse). Returns the new kinds,
    /// forward first.
    /// `names` as for [`Self::ensure_pair`].
    pub fn create_label(
        &mut self,
        (from, to): (ObjectTypeId, ObjectTypeId),
        names: (&str, &str),
        name: &str,
        label: &str,
        inverse_label: Option<&str>,
    ) -> Vec<AssociationKind> {
        self.ensure_pair(from, to, names);
        let forward = self.allocate_user_id();
        let single = from == to && inverse_label.is_none();
        let backward = if single {
            forward
        } else {
            self.allocate_user_id()
        };
        self.insert(AssociationDefinition {
            from_type: from,
            to_type: to,
            kind: forward,
            label: Some(label.to_owned()),
            name: name.to_owned(),
            inverse: backward,
            is_default: false,
            is_primary: false,
        });
        if single {
            return vec![forward];
        }
        self.insert(AssociationDefinition {
            from_type: to,
            to_type: from,
            kind: backward,
            label: Some(inverse_label.unwrap_or(label).to_owned()),
            name: format!("{name}_inverse"),
            inverse: forward,
            is_default: false,
            is_primary: false,
        });
        vec![forward, backward]
    }

    /// Renames a user-defined label (and its inverse when given). False when the kind is not
    /// a user-defined type of the pair.
    pub fn update_label(
        &mut self,
        from: ObjectTypeId,
        to: ObjectTypeId,
        kind: AssociationKind,
        label: &str,
        inverse_label: Option<&str>,
    ) -> bool {
        let Some(def) = self.by_kind.get_mut(&kind) else {
            return false;
        };
        if def.from_type != from
            || def.to_type != to
            || def.kind.category == AssociationCategory::HubspotDefined
        {
            return false;
        }
        def.label = Some(label.to_owned());
        let inverse = def.inverse;
        if let (Some(inverse_label), Some(inv)) = (inverse_label, self.by_kind.get_mut(&inverse))
            && inv.kind != kind
        {
            inv.label = Some(inverse_label.to_owned());
        }
        true
    }

    /// Deletes a user-defined label and its inverse; returns both kinds, or `None` when the
    /// kind is not a deletable label of the pair.
    pub fn delete_label(
        &mut self,
        from: ObjectTypeId,
        to: ObjectTypeId,
        kind: AssociationKind,
    ) -> Option<[AssociationKind; 2]> {
        let def = self.get_for_pair(from, to, kind)?;
        if def.kind.category == AssociationCategory::HubspotDefined || def.is_default {
            return None;
        }
        let inverse = def.inverse;
        for k in [kind, inverse] {
            if let Some(d) = self.by_kind.remove(&k)
                && let Some(list) = self.by_pair.get_mut(&(d.from_type, d.to_type))
            {
                list.retain(|x| *x != k);
            }
        }
        Some([kind, inverse])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> ObjectTypeId {
        ObjectTypeId::parse(text).unwrap_or(standard(0))
    }

    #[test]
    fn built_in_types_carry_hubspot_ids_and_names() {
        let defs = Definitions::default();
        assert_eq!(
            defs.default_kind(t("0-1"), t("0-2")),
            Some(AssociationKind::hubspot(279))
        );
        assert_eq!(
            defs.primary_kind(t("0-1"), t("0-2")),
            Some(AssociationKind::hubspot(1))
        );
        assert_eq!(
            defs.primary_kind(t("0-3"), t("0-2")),
            Some(AssociationKind::hubspot(5))
        );
        assert_eq!(
            defs.primary_kind(t("0-5"), t("0-2")),
            Some(AssociationKind::hubspot(26))
        );
        assert_eq!(
            defs.default_kind(t("0-3"), t("0-1")),
            Some(AssociationKind::hubspot(3))
        );
        let unlabeled = defs
            .get(AssociationKind::hubspot(279))
            .map(|d| d.name.as_str());
        assert_eq!(unlabeled, Some("contact_to_company_unlabeled"));
        let primary = defs
            .get(AssociationKind::hubspot(1))
            .map(|d| d.name.as_str());
        assert_eq!(primary, Some("contact_to_company"));
        assert_eq!(
            defs.get(AssociationKind::hubspot(3))
                .map(|d| d.name.as_str()),
            Some("deal_to_contact")
        );
        assert_eq!(
            defs.default_kind(t("0-3"), t("0-14")),
            Some(AssociationKind::hubspot(63))
        );
        assert_eq!(
            defs.get(AssociationKind::hubspot(202))
                .map(|d| d.inverse.type_id),
            Some(201)
        );
    }

    #[test]
    fn every_built_in_inverse_points_back() {
        let defs = Definitions::default();
        for def in defs.by_kind.values() {
            let inverse = defs.get(def.inverse).map(|d| d.inverse);
            assert_eq!(inverse, Some(def.kind), "{def:?}");
        }
    }

    #[test]
    fn labels_pair_and_delete() {
        let mut defs = Definitions::default();
        let kinds = defs.create_label(
            (standard(1), standard(2)),
            ("contact", "company"),
            "decision_maker",
            "Decision maker",
            Some("Has decision maker"),
        );
        assert_eq!(kinds.len(), 2);
        assert_eq!(
            defs.get(kinds[1]).and_then(|d| d.label.clone()).as_deref(),
            Some("Has decision maker")
        );
        assert!(
            defs.delete_label(standard(2), standard(1), kinds[0])
                .is_none()
        );
        assert_eq!(
            defs.delete_label(standard(1), standard(2), kinds[0]),
            Some([kinds[0], kinds[1]])
        );
        assert!(defs.get(kinds[1]).is_none());
        assert_eq!(defs.pair(t("0-1"), t("0-2")).count(), 2);
    }

    #[test]
    fn custom_pairs_get_a_user_defined_default() {
        let mut defs = Definitions::default();
        defs.ensure_pair(t("2-7"), t("0-1"), ("car", "contact"));
        let forward = defs.default_kind(t("2-7"), t("0-1"));
        let backward = defs.default_kind(t("0-1"), t("2-7"));
        assert!(forward.is_some() && backward.is_some());
        assert_eq!(
            forward.map(|k| k.category),
            Some(AssociationCategory::UserDefined)
        );
    }
}
