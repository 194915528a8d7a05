"""What a scenario request may say, checked once for the command, the page, the API and
the admin (pure). Each check returns a list of problems, each naming the field and the
rule; an empty list means the request is valid."""

from __future__ import annotations

import math
from datetime import date

MOVE_FLOOR = -1.0  # a price cannot fall more than 100 %
MOVE_CEILING = 10.0  # +1,000 %: anything larger is a typo in percent instead of fraction
MAX_PATHS = 200_000
MAX_HORIZON = 2_520  # ten years of bars
MODES = ("hold", "run")


def window_parse(text: str, *, field: str = "--window") -> tuple[date, date]:
    """``START:END`` (ISO dates, inclusive) -> (start, end); ValueError naming ``field``."""
    parts = str(text).split(":")
    if len(parts) != 2:
        raise ValueError(f"{field}: expected START:END as ISO dates, got {text!r}")
    try:
        start, end = (date.fromisoformat(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not START:END as ISO dates (YYYY-MM-DD)") from None
    if end < start:
        raise ValueError(f"{field}: the end {end} is before the start {start}")
    return start, end


def _move_problem(where: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"{where}: must be a number (a fraction, -0.2 for -20 %), got {value!r}"
    if not MOVE_FLOOR <= value <= MOVE_CEILING:
        return f"{where}: {value!r} is outside [{MOVE_FLOOR}, {MOVE_CEILING}] (fractions, not %)"
    return None


def shock_problems(*, market, sectors, tickers) -> list[str]:
    """A shock's market move and its per-sector and per-ticker overrides (fractions)."""
    problems = [p for p in [_move_problem("market", market)] if p]
    for field, mapping in (("sectors", sectors), ("tickers", tickers)):
        if not isinstance(mapping, dict):
            problems.append(f"{field}: must be a mapping of name to move, got {mapping!r}")
            continue
        for key, value in mapping.items():
            if not isinstance(key, str) or not key.strip():
                problems.append(f"{field}: {key!r} is not a name")
            elif (p := _move_problem(f"{field}.{key}", value)) is not None:
                problems.append(p)
    return problems


def montecarlo_problems(*, paths, horizon, block, seed) -> list[str]:
    """Paths, horizon (bars) and mean block length: positive integers within bounds."""
    problems = []
    for field, value, top in (
        ("paths", paths, MAX_PATHS),
        ("horizon", horizon, MAX_HORIZON),
        ("block", block, MAX_HORIZON),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            problems.append(f"{field}: must be a whole number from 1 to {top:,}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.append(f"seed: must be a whole number >= 0, got {seed!r}")
    return problems


def percent_parse(text: str, *, field: str) -> float:
    """``"-20%"``, ``"-20"`` (percent) -> -0.2; ValueError naming ``field``."""
    raw = str(text).strip().removesuffix("%").strip()
    try:
        value = float(raw) / 100.0
    except ValueError:
        raise ValueError(f"{field}: {text!r} is not a percentage such as -20%") from None
    if (problem := _move_problem(field, value)) is not None:
        raise ValueError(problem)
    return value


def moves_parse(text: str, *, field: str) -> dict[str, float]:
    """Lines (or ``;``-separated items) of ``NAME: -20%`` -> {NAME: -0.2}. Names may hold
    spaces ("Information Technology: -20%")."""
    out: dict[str, float] = {}
    items = [x.strip() for line in str(text or "").splitlines() for x in line.split(";")]
    for item in filter(None, items):
        name, sep, value = item.rpartition(":")
        if not sep or not name.strip():
            raise ValueError(f"{field}: {item!r} is not NAME: -20%")
        out[name.strip()] = percent_parse(value, field=f"{field} {name.strip()}")
    return out
