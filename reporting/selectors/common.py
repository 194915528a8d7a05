"""Readers the selector modules share: ``_frame`` (a ``values`` query as a frame; the
rows straight from the cursor are ``quantsite.rows.rows_read``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _frame(rows: list[tuple], columns: list[str], floats: tuple[str, ...] = ()) -> pd.DataFrame:
    """A frame from values_list rows; ``floats`` columns as float64 (Decimal, None -> NaN)."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for c in floats:
        frame[c] = np.asarray([np.nan if v is None else float(v) for v in frame[c]], dtype=float)
    if "date" in frame.columns:
        frame["date"] = pd.to_datetime(frame["date"])
    return frame
