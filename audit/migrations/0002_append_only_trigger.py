"""On PostgreSQL the database itself refuses to change or delete audit events (a trigger), so
raw SQL and other programs sharing the database can't either. Two things stay possible: a
user's deletion clearing actor_id / subject_id (ON DELETE SET NULL, done by Django), and
TRUNCATE (the operator's retention tool; row triggers don't see it). SQLite has no such guard:
the model and its queryset refuse instead."""

from __future__ import annotations

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit events are append-only';
    END IF;
    IF (NEW.id, NEW.action, NEW.actor_repr, NEW.target_type, NEW.target_id, NEW.target_repr, NEW.org_id,
        NEW.ip, NEW.request_id, NEW.metadata, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.action, OLD.actor_repr, OLD.target_type, OLD.target_id, OLD.target_repr, OLD.org_id,
        OLD.ip, OLD.request_id, OLD.metadata, OLD.created_at)
       OR (NEW.actor_id IS NOT NULL AND NEW.actor_id IS DISTINCT FROM OLD.actor_id)
       OR (NEW.subject_id IS NOT NULL AND NEW.subject_id IS DISTINCT FROM OLD.subject_id) THEN
        RAISE EXCEPTION 'audit events are append-only';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_auditevent_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_auditevent_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_auditevent_append_only();
"""


def _on_postgresql(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_audit_event")]

    operations = [migrations.RunPython(_on_postgresql(FUNCTION), _on_postgresql(DROP), elidable=False)]
