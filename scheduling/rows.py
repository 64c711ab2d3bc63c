"""Single-statement writes the ORM spells as several: an INSERT that yields to a unique row.

Plain SQL through `connection.cursor()`, kept here so the callers read as Python.
`INSERT … ON CONFLICT DO NOTHING … RETURNING` runs on PostgreSQL and on SQLite ≥ 3.35.
"""

from django.db import connections, router


def insert_unless_conflict(instance):
    """Insert unsaved model `instance` unless a row with the same unique values exists.

    One `INSERT … ON CONFLICT DO NOTHING RETURNING id` instead of a savepoint, an
    INSERT that fails with IntegrityError (an ERROR line in PostgreSQL's log each
    time) and a rollback. Under a concurrent insert of the same key, PostgreSQL
    waits for the other transaction and then does nothing. Returns the new primary
    key (also set on `instance`), or None when a unique constraint already held the
    values (then nothing was written and `instance.pk` stays None). Sends no
    post_save signal (as QuerySet.bulk_create).
    """
    model = type(instance)
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not (f.primary_key and instance.pk is None)]
    values = [f.get_db_prep_save(f.pre_save(instance, True), connection) for f in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return None
    instance.pk = row[0]
    instance._state.adding, instance._state.db = False, connection.alias
    return instance.pk
