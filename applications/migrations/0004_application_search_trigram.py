"""Trigram indexes for the Applications tab's search (PostgreSQL only).

The search is `applicant_name__icontains` OR `contact_email__icontains`, which
PostgreSQL runs as `UPPER(col::text) LIKE UPPER('%text%')`: a leading wildcard no
B-tree can serve. A GIN trigram index on exactly that expression can, so a search
in a 100,000-row cohort reads the matching rows instead of every row. SQLite has
no such index; there the migration does nothing. `create_trigram_indexes` is also
used by later migrations that index other columns the same way.
"""

from django.db import migrations, transaction

INDEXES = {
    "application_name_trgm": "applicant_name",
    "application_email_trgm": "contact_email",
}


def create_trigram_indexes(schema_editor, table, indexes):
    """Create GIN trigram indexes on UPPER(column) of `table`: `indexes` is {index name: column}."""
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        # pg_trgm is a trusted extension (PostgreSQL 13+), but a locked-down role may
        # still lack CREATE on the database: the tab then works, only slower searches.
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # noqa: BLE001 - any refusal means "no trigram index"
        print(f"\n  pg_trgm unavailable ({exc}); search runs without its index.")
        return
    for name, column in indexes.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_trigram_indexes(schema_editor, indexes):
    """Drop the indexes named in `indexes` (PostgreSQL only)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in indexes:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def create_indexes(apps, schema_editor):
    create_trigram_indexes(schema_editor, "applications_application", INDEXES)


def drop_indexes(apps, schema_editor):
    drop_trigram_indexes(schema_editor, INDEXES)


class Migration(migrations.Migration):

    dependencies = [
        ("applications", "0003_usersettings"),
    ]

    operations = [
        migrations.RunPython(create_indexes, drop_indexes),
    ]
