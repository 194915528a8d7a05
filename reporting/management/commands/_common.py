"""Argument checks shared by the reporting commands: the portfolio and the output path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.core.management.base import CommandError

from portfolio.models import Portfolio
from reporting.selectors import portfolio_get


def portfolio_or_error(name: str | None) -> Portfolio:
    """The named portfolio, or the live one when ``name`` is None; CommandError otherwise."""
    portfolio = portfolio_get(name=name)
    if portfolio is not None:
        return portfolio
    if name is None:
        raise CommandError(
            "--portfolio: there is no live portfolio yet (run demo_setup or load_config), "
            "or name one"
        )
    known = ", ".join(
        repr(n) for n in Portfolio.objects.order_by("name").values_list("name", flat=True)
    )
    raise CommandError(f"--portfolio {name!r}: no such portfolio (known: {known or 'none'})")


def file_in_existing_dir(out: str, suffix: str, argument: str = "--out") -> Path:
    """``out`` as a file path ending in ``suffix`` whose directory exists; the error names
    ``argument``."""
    path = Path(out)
    if path.suffix.lower() != suffix:
        raise CommandError(f"{argument} {out}: the file name must end in {suffix}")
    if not path.parent.is_dir():
        raise CommandError(f"{argument} {out}: directory {path.parent} does not exist")
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """Write beside ``path`` then rename, so a failure never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
