"""The SQL that makes the event log append-only (used by migration 0002)."""

PG_FORWARD = """
CREATE OR REPLACE FUNCTION gndp_event_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'processes_processevent is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER processevent_no_update_delete
    BEFORE UPDATE OR DELETE ON processes_processevent
    FOR EACH ROW EXECUTE FUNCTION gndp_event_log_append_only();
CREATE TRIGGER processevent_no_truncate
    BEFORE TRUNCATE ON processes_processevent
    FOR EACH STATEMENT EXECUTE FUNCTION gndp_event_log_append_only();
"""

PG_REVERSE = """
DROP TRIGGER IF EXISTS processevent_no_truncate ON processes_processevent;
DROP TRIGGER IF EXISTS processevent_no_update_delete ON processes_processevent;
DROP FUNCTION IF EXISTS gndp_event_log_append_only();
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER processevent_no_update BEFORE UPDATE ON processes_processevent
       BEGIN SELECT RAISE(ABORT, 'processes_processevent is append-only (UPDATE refused)'); END;""",
    """CREATE TRIGGER processevent_no_delete BEFORE DELETE ON processes_processevent
       BEGIN SELECT RAISE(ABORT, 'processes_processevent is append-only (DELETE refused)'); END;""",
]

SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS processevent_no_update;",
    "DROP TRIGGER IF EXISTS processevent_no_delete;",
]
