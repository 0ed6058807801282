//! HubSpot → PostgreSQL against the real emulator over HTTP and a real PostgreSQL.

mod backfill;
mod bulk;
mod changes;
mod kit;
