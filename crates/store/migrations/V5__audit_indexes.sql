-- hubsync.audit gains a row for every record hubsync writes (a million for a million-record
-- backfill), and its indexes were most of the cost of each row. A record's entries are now
-- found through its id alone (a record has few entries; the object is checked and the time
-- sorted after), and time ranges (retention) through a BRIN index: entries are appended in
-- time order, so a summary per block range is nearly as selective as a B-tree for a fraction
-- of the upkeep. The dashboard lists the newest entries by id.
DROP INDEX hubsync.audit_record;
CREATE INDEX audit_record ON hubsync.audit (hs_object_id);
DROP INDEX hubsync.audit_at;
CREATE INDEX audit_at ON hubsync.audit USING brin (at);
