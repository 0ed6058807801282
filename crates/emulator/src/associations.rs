//! Associations between CRM records (HubSpot's v4 model): typed, directed links with their
//! inverse, HubSpot-defined and user-defined (labelled) association types, primary-company
//! semantics, and the v3 `associations` expansion used by object reads.
//!
//! Object types are identified by their objectTypeId string (`"0-1"`, `"2-123"`).

/// All associations of the CRM and the association type definitions.
#[derive(Debug, Default)]
pub struct AssociationStore {
    _private: (),
}

/// One entry of the v3 `associations` expansion on an object read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3AssociationRef {
    /// The associated record's id.
    pub id: u64,
    /// The v3 type name, e.g. `contact_to_company` or `contact_to_company_unlabeled`.
    pub type_name: String,
}

impl AssociationStore {
    /// Removes every association of the record (hard delete, GDPR delete).
    pub fn remove_object(&mut self, object_type: &str, id: u64) {
        let _ = (object_type, id);
    }

    /// Moves every association of `loser_id` onto `winner_id` (merge).
    pub fn repoint(&mut self, object_type: &str, loser_id: u64, winner_id: u64) {
        let _ = (object_type, loser_id, winner_id);
    }

    /// The v3 expansion of one record's associations to one target type.
    pub fn expand_v3(&self, from_type: &str, from_id: u64, to_type: &str) -> Vec<V3AssociationRef> {
        let _ = (from_type, from_id, to_type);
        Vec::new()
    }
}
