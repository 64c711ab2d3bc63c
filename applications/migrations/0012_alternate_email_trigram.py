"""A trigram index on alternate emails, for the search (PostgreSQL only).

`ApplicationQuerySet.search` matches alternate emails with `email__icontains`
(`UPPER(email::text) LIKE UPPER('%text%')`), as migration 0004 does for the
application's own name and email; this is the same index on ApplicationEmail.
Without pg_trgm (a locked-down role) or on SQLite the migration does nothing.
"""

from django.db import migrations, transaction

NAME = "applicationemail_email_trgm"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # noqa: BLE001 - any refusal means "no trigram index"
        print(f"\n  pg_trgm unavailable ({exc}); search runs without its index.")
        return
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS "{NAME}" ON "applications_applicationemail" '
        'USING gin ((UPPER("email"::text)) gin_trgm_ops)'
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP INDEX IF EXISTS "{NAME}"')


class Migration(migrations.Migration):

    dependencies = [
        ("applications", "0011_cohort_calcom_api_key"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
