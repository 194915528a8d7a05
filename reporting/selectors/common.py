"""Readers the selector modules share: ``_frame`` (a ``values`` query as a frame) and
``_raw_rows`` (a ``values_list`` query's rows straight from the cursor, no per-value
converters).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.db import connections


def _frame(rows: list[tuple], columns: list[str], floats: tuple[str, ...] = ()) -> pd.DataFrame:
    """A frame from values_list rows; ``floats`` columns as float64 (Decimal, None -> NaN)."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for c in floats:
        frame[c] = np.asarray([np.nan if v is None else float(v) for v in frame[c]], dtype=float)
    if "date" in frame.columns:
        frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _raw_rows(qs) -> list[tuple]:
    """The rows of a ``values_list`` query of plain SQL types (text, integers, doubles,
    cast in SQL) straight from the cursor: the ORM's per-value converters are most of the
    read's time on 170,000 bars and change nothing for these types."""
    sql, params = qs.query.sql_with_params()
    with connections[qs.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
