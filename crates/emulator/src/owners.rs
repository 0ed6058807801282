//! CRM owners (`/crm/v3/owners`): the users records can be assigned to.

/// The owners of the portal.
#[derive(Debug, Default)]
pub struct Owners {
    _private: (),
}

impl Owners {
    /// Whether an owner with this id exists (validates `hubspot_owner_id`).
    pub fn exists(&self, id: u64) -> bool {
        let _ = id;
        false
    }
}
