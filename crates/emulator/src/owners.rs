//! CRM owners (`/crm/v3/owners`, hubspot-api.md §13): the users records can be assigned to
//! through `hubspot_owner_id`. Seedable; read-only over the public API.

// Route helpers return `Result<_, ApiError>` like every handler; the error is the response.
#![allow(clippy::result_large_err)]

use axum::{
    Router,
    extract::{Path, Query, State},
    response::{IntoResponse, Response},
    routing::get,
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState, payload::read_crm};

/// One owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Owner id (the value of `hubspot_owner_id`).
    pub id: u64,
    /// The user's email.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The HubSpot user id behind the owner.
    pub user_id: u64,
    /// Creation time (ISO-8601 with milliseconds).
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
    /// Deactivated owners are archived.
    pub archived: bool,
}

impl Owner {
    /// The owner as `/crm/v3/owners` returns it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
            "teams": [],
        })
    }
}

/// The owners of the portal, ascending by id.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    owners: Vec<Owner>,
}

/// First names and last names seeded owners are built from.
const FIRST_NAMES: &[&str] = &[
    "Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo",
];
const LAST_NAMES: &[&str] = &["Martin", "Okafor", "Schmidt", "Tanaka", "Rossi", "Novak"];
/// Ids of seeded owners start here (HubSpot's are 8–9 digit numbers).
const FIRST_OWNER_ID: u64 = 70_000_001;

impl Owners {
    /// Whether an active owner with this id exists (validates `hubspot_owner_id`).
    pub fn exists(&self, id: u64) -> bool {
        self.get(id).is_some_and(|o| !o.archived)
    }

    /// The owner with this id.
    pub fn get(&self, id: u64) -> Option<&Owner> {
        self.owners
            .binary_search_by_key(&id, |o| o.id)
            .ok()
            .map(|i| &self.owners[i])
    }

    /// Every owner (active and archived), ascending by id.
    pub fn all(&self) -> &[Owner] {
        &self.owners
    }

    /// Adds or replaces an owner.
    pub fn insert(&mut self, owner: Owner) {
        match self.owners.binary_search_by_key(&owner.id, |o| o.id) {
            Ok(i) => self.owners[i] = owner,
            Err(i) => self.owners.insert(i, owner),
        }
    }

    /// Adds `count` generated owners; the same `seed` gives the same owners.
    pub fn seed(&mut self, count: usize, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x6f77_6e65_7273);
        let start = self.owners.last().map_or(FIRST_OWNER_ID, |o| o.id + 1);
        for n in 0..count as u64 {
            let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
            let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
            let created = format!("2021-0{}-1{}T09:30:00.000Z", 1 + n % 9, n % 10);
            self.insert(Owner {
                id: start + n,
                email: format!("{}.{}{}@example.com", first, last, n).to_ascii_lowercase(),
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                user_id: 9_000_000 + start + n - FIRST_OWNER_ID,
                created_at: created.clone(),
                updated_at: created,
                archived: false,
            });
        }
    }
}

/// Owner routes (public API; the caller adds authentication).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/crm/v3/owners", get(list))
        .route("/crm/v3/owners/", get(list))
        .route("/crm/v3/owners/{owner_id}", get(read_one))
}

/// Query of the owners list.
#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
    email: Option<String>,
    archived: Option<String>,
}

/// Default and largest page of the owners list.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;

fn flag(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = match query.limit.as_deref().filter(|l| !l.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::validation(format!("Invalid limit: {text}")))?
            .clamp(1, MAX_LIMIT),
    };
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::validation(format!("Invalid after: {text}")))?,
    };
    let archived = flag(query.archived.as_deref());
    let crm = read_crm(&state);
    let matching: Vec<&Owner> = crm
        .owners
        .all()
        .iter()
        .filter(|o| o.archived == archived)
        .filter(|o| {
            query
                .email
                .as_deref()
                .is_none_or(|e| o.email.eq_ignore_ascii_case(e))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(after)
        .take(limit)
        .map(|o| o.to_json())
        .collect();
    let mut body = json!({"results": page});
    let next = after + limit;
    if next < matching.len() {
        body["paging"] = json!({"next": {"after": next.to_string(),
            "link": format!("/crm/v3/owners?limit={limit}&after={next}")}});
    }
    Ok(axum::Json(body).into_response())
}

/// Query of one owner read.
#[derive(Debug, Deserialize)]
struct ReadQuery {
    #[serde(rename = "idProperty")]
    id_property: Option<String>,
    archived: Option<String>,
}

async fn read_one(
    State(state): State<AppState>,
    Path(owner_id): Path<String>,
    Query(query): Query<ReadQuery>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::record_not_found(&owner_id);
    let id: u64 = owner_id.parse().map_err(|_| not_found())?;
    let archived = flag(query.archived.as_deref());
    let crm = read_crm(&state);
    let owner = match query.id_property.as_deref() {
        Some("userId") => crm.owners.all().iter().find(|o| o.user_id == id),
        _ => crm.owners.get(id),
    };
    let owner = owner
        .filter(|o| o.archived == archived)
        .ok_or_else(not_found)?;
    Ok(axum::Json(owner.to_json()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_is_reproducible_and_sorted() {
        let (mut a, mut b) = (Owners::default(), Owners::default());
        a.seed(5, 7);
        b.seed(5, 7);
        assert_eq!(a.all(), b.all());
        assert!(a.exists(FIRST_OWNER_ID));
        assert!(!a.exists(FIRST_OWNER_ID + 5));
        a.seed(2, 8);
        assert_eq!(a.all().len(), 7);
        assert!(a.all().windows(2).all(|w| w[0].id < w[1].id));
    }
}
