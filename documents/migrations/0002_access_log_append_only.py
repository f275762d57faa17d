"""The access log is append-only in the database itself: UPDATE and DELETE of its rows are refused
by a trigger, on PostgreSQL and on SQLite alike, whatever code (or admin, or shell) asks.

A RunPython that picks the dialect rather than django-pgtrigger: pgtrigger covers PostgreSQL only,
and `make run`'s SQLite must keep the same rule. (SQLite's DELETE trigger lets a test run empty the
table between tests: documents/append_only.py.)
"""

from django.db import migrations

TABLE = "documents_accesslog"

POSTGRESQL = [
    f"""
    CREATE OR REPLACE FUNCTION {TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'documents_accesslog is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END $$;
    """,
    f"""
    CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse();
    """,
]
POSTGRESQL_REVERSE = [f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}", f"DROP FUNCTION IF EXISTS {TABLE}_refuse()"]

SQLITE = [
    f"""
    CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, 'documents_accesslog is append-only: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} WHEN NOT documents_accesslog_flushing()
    BEGIN SELECT RAISE(ABORT, 'documents_accesslog is append-only: DELETE refused'); END
    """,
]
SQLITE_REVERSE = [f"DROP TRIGGER IF EXISTS {TABLE}_no_update", f"DROP TRIGGER IF EXISTS {TABLE}_no_delete"]


def _run(statements):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        for sql in statements.get(vendor, ()):
            schema_editor.execute(sql, None)  # no parameters: the % of plpgsql is its own

    return run


class Migration(migrations.Migration):
    dependencies = [("documents", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRESQL, "sqlite": SQLITE}),
            _run({"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}),
        )
    ]
