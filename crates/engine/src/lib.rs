//! The sync engine: per-object pipelines, planner, conflict policies and writeback.
