//! PostgreSQL side of hubsync: connection pool, migrations of the `hubsync` state schema,
//! property → column mapping and DDL, batch writers, change capture and the private-cluster
//! launcher used by the demo and the test kit.

pub mod naming;
pub mod values;
