"""A trigram index on alternate emails, for the search (PostgreSQL only).

`ApplicationQuerySet.search` matches alternate emails with `email__icontains`
(`UPPER(email::text) LIKE UPPER('%text%')`), as migration 0004 does for the
application's own name and email; this is the same index on ApplicationEmail.
Without pg_trgm (a locked-down role) or on SQLite the migration does nothing.
"""

from importlib import import_module

from django.db import migrations

# A migration module's name starts with a digit: it can only be imported this way.
trigram = import_module("applications.migrations.0004_application_search_trigram")
INDEXES = {"applicationemail_email_trgm": "email"}


def create_index(apps, schema_editor):
    trigram.create_trigram_indexes(schema_editor, "applications_applicationemail", INDEXES)


def drop_index(apps, schema_editor):
    trigram.drop_trigram_indexes(schema_editor, INDEXES)


class Migration(migrations.Migration):

    dependencies = [
        ("applications", "0011_cohort_calcom_api_key"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
