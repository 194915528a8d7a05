"""Plain rows in and out of the database: the update path's snapshot and trade writes.

``rows_read(qs)``: a ``values_list`` query's rows straight from the cursor (module
function docstring).

``rows_insert(model, rows)`` writes dicts of field values (keyed by ``attname``) as one
multi-row statement per batch: ``executemany`` on SQLite, ``COPY ... FROM STDIN`` on
PostgreSQL. It stores exactly what ``model.objects.bulk_create`` of the same values
stores (each value goes through its field's ``get_db_prep_save``, a missing key takes the
field's default) without building a model instance or compiling an INSERT per batch: a
backtest of 10 strategies over 5,001 bars writes 78,000 rows, and building and compiling
them was most of the backtest's time. The writer returns no primary keys: a caller that
needs them (rebalance events, pending orders) keeps ``bulk_create``.

Values are converted column by column (``_converted``), floats by ``float`` alone (what
``FloatField.get_prep_value`` does), so a numpy scalar is stored as the double it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from django.db import connections, models

BATCH_ROWS = 5000  # SQLite's executemany batch: bounds the converted tuples held at once


def _float_or_none(value):
    return None if value is None else float(value)


def _converted(field: models.Field, connection, values: list) -> list:
    """``values`` as ``bulk_create`` would send them for ``field``: floats through
    ``float``, JSON through the field one by one, anything else (dates, keys, integers,
    text: hashable and repeated on every row of a date or a strategy) converted once per
    distinct value."""
    if isinstance(field, models.FloatField):
        return list(map(_float_or_none if field.null else float, values))
    prep = partial(field.get_db_prep_save, connection=connection)
    if isinstance(field, models.JSONField):
        return list(map(prep, values))
    once = {v: prep(v) for v in set(values)}
    return list(map(once.__getitem__, values))


def _column(rows: Sequence[dict], field: models.Field) -> list:
    name = field.attname
    if field.has_default():
        if callable(field.default):
            return [row[name] if name in row else field.get_default() for row in rows]
        default = field.get_default()
        return [row.get(name, default) for row in rows]
    if field.null:
        return [row.get(name) for row in rows]
    return [row[name] for row in rows]  # KeyError names the missing required field


def rows_insert(model: type[models.Model], rows: Sequence[dict], *, using: str = "default"):
    """Insert ``rows`` (dicts of ``attname`` -> value; extra keys ignored) into ``model``'s
    table, in the caller's transaction (module docstring)."""
    if not rows:
        return
    connection = connections[using]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = []
    for field in fields:
        columns.append(_converted(field, connection, _column(rows, field)))
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # psycopg's copy is reached past Django's cursor wrapper, so its errors are
            # mapped to Django's here, as ``execute``'s are (a lost connection is an
            # OperationalError, which the update path reports as such)
            with connection.wrap_database_errors:
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in zip(*columns, strict=True):
                        copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        for k in range(0, len(rows), BATCH_ROWS):
            batch = zip(*(c[k : k + BATCH_ROWS] for c in columns), strict=True)
            cursor.executemany(sql, list(batch))


def rows_read(qs) -> list[tuple]:
    """The rows of a ``values_list`` query of plain SQL types (text, integers, doubles,
    cast in SQL) straight from the cursor: the ORM's per-value converters are most of the
    read's time on 170,000 bars and change nothing for these types."""
    sql, params = qs.query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
