"""The character sets for user-given names, checked wherever a name enters (YAML, admin,
API, price files).

- Strategy names appear in URLs (``/strategy/<name>/``), file names and export headers, so
  they are limited to ``[A-Za-z0-9_.-]``, 1-100 characters.
- Tickers also allow ``^`` and ``=`` (Yahoo Finance's ``^GSPC``, ``EURUSD=X``), 1-32
  characters, but must start with a letter, a digit or ``^``: a leading ``=``, ``+``, ``-``
  or ``@`` is what spreadsheets run as a formula (``=HYPERLINK("http://x")``).
"""

from __future__ import annotations

import re

STRATEGY_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
STRATEGY_NAME_RULE = "use letters, digits, '_', '-' or '.' (at most 100)"
TICKER = re.compile(r"^[A-Za-z0-9^][A-Za-z0-9_.^=\-]{0,31}$")
TICKER_RULE = (
    "use letters, digits, '_', '-', '.', '^' or '=' (at most 32), "
    "starting with a letter, a digit or '^'"
)


def ticker_problem(ticker: str) -> str | None:
    """Why ``ticker`` is not a valid ticker, or None when it is."""
    if TICKER.match(ticker):
        return None
    return f"ticker {ticker[:40]!r} is not a valid ticker: {TICKER_RULE}"
