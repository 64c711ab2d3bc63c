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
    connection, sql, values = _insert_statement(instance)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    if row is None:
        return None
    return _inserted(instance, row[0], connection)


def insert_or_count(instance, *, counter, match, returning):
    """Insert unsaved `instance`, or else add 1 to `counter` of the stored row equal on `match`.

    `counter` is an integer field's name; `match` a dict {field name: value} naming at
    most one row through a unique constraint (for a webhook delivery, its cohort and
    sha256: the byte-identical copy); `returning` the field names to read back from
    that row. Returns ("inserted", pk) with `instance.pk` set; ("counted", row) where
    row is a dict of the stored row's "id" and `returning` fields, as stored (the
    attribute names, e.g. "cohort_id"); or ("conflict", None) when another unique constraint
    held the values, or a concurrent insert committed after this statement began
    (nothing written: the caller takes its slower path).

    On PostgreSQL one statement (a data-modifying CTE: the INSERT … ON CONFLICT DO
    NOTHING, then the counter's UPDATE … RETURNING only if nothing was inserted),
    where a redelivery cost two round trips. SQLite has no data-modifying CTE: there
    it is the two statements.
    """
    connection, insert, values = _insert_statement(instance)
    update, read, answer = _count_statement(type(instance), counter, match, returning)
    meta = type(instance)._meta
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # `counted` runs only when `stored` inserted nothing (NOT EXISTS reads its result).
            # Both see the snapshot the statement began with: a copy committed by a concurrent
            # insert while this one waited is seen by neither, hence "conflict".
            nulls = ", NULL" * len(read)
            cursor.execute(
                f"WITH stored AS ({insert}), counted AS ("
                f"{update} AND NOT EXISTS (SELECT FROM stored) RETURNING {answer}) "
                f"SELECT TRUE, {quote(meta.pk.column)}{nulls} FROM stored UNION ALL SELECT FALSE, {answer} FROM counted",
                [*values, *match.values()])
            row = cursor.fetchone()
        else:
            cursor.execute(insert, values)
            row = cursor.fetchone()
            if row is None:
                counted = count_row(type(instance), counter=counter, match=match, returning=returning)
                return ("counted", counted) if counted is not None else ("conflict", None)
            row = (True, *row, *[None] * len(read))
    if row is None:
        return "conflict", None
    inserted, pk, *columns = row
    if inserted:
        return "inserted", _inserted(instance, pk, connection)
    return "counted", {"id": pk, **{f.attname: value for f, value in zip(read, columns)}}


def count_row(model, *, counter, match, returning):
    """Add 1 to `counter` of the `model` row equal on `match`; return its "id" and `returning` fields, or None.

    Arguments as insert_or_count's. One `UPDATE … RETURNING`: a dict as there, or None
    when no such row is stored (then nothing was written).
    """
    connection = connections[router.db_for_write(model)]
    update, read, answer = _count_statement(model, counter, match, returning)
    with connection.cursor() as cursor:
        cursor.execute(f"{update} RETURNING {answer}", list(match.values()))
        row = cursor.fetchone()
    if row is None:
        return None
    pk, *columns = row
    return {"id": pk, **{f.attname: value for f, value in zip(read, columns)}}


def _count_statement(model, counter, match, returning):
    """Return (the counter's `UPDATE … WHERE …` SQL, a %s per `match` value; the `returning` fields;
    the RETURNING list: the primary key's column, then theirs)."""
    meta = model._meta
    quote = connections[router.db_for_write(model)].ops.quote_name
    column = quote(meta.get_field(counter).column)
    where = " AND ".join(f"{quote(meta.get_field(name).column)} = %s" for name in match)
    read = [meta.get_field(name) for name in returning]
    return (f"UPDATE {quote(meta.db_table)} SET {column} = {column} + 1 WHERE {where}", read,
            ", ".join(quote(f.column) for f in [meta.pk, *read]))


def _insert_statement(instance):
    """Return (connection, `INSERT … ON CONFLICT DO NOTHING RETURNING id` SQL, its values) for `instance`."""
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
    return connection, sql, values


def _inserted(instance, pk, connection):
    instance.pk = pk
    instance._state.adding, instance._state.db = False, connection.alias
    return pk
