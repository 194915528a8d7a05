"""Progress of long command-line work (replays, price loads): ``done of total, rate, time
left``, written by the management commands, never by the library they call.

The library takes an optional ``progress(done, total)`` callable and calls it as it goes;
a command passes a ``Progress`` bound to its stdout. On a terminal the line updates in
place (``\\r``); otherwise (CI logs, a pipe) a plain line is written every ``every_fraction``
of the total or every ``every_seconds``, whichever comes first, and always at the end.

Rate = done / elapsed seconds, elapsed counted from the last ``progress(0, total)`` (the
work starting: a replay reports 0 after its price load and signals, and a second
portfolio starts again at 0), else from the ``Progress``'s creation; time left =
(total - done) / rate (unknown until the first unit is done)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress_line(*, label: str, unit: str, done: int, total: int, elapsed: float) -> str:
    """One progress line, e.g. ``applying: 4,000/8,063 dates (49.6%), 812 dates/s, 5 s
    left`` (module docstring for the rate and time left)."""
    share = f" ({100 * done / total:.1f}%)" if total else ""
    text = f"{label}: {done:,}/{total:,} {unit}{share}"
    if done > 0 and elapsed > 0:
        rate = done / elapsed
        text += f", {rate:,.0f} {unit}/s"
        if done < total:
            text += f", {duration_text((total - done) / rate)} left"
        else:
            text += f", done in {duration_text(elapsed)}"
    return text


class Progress:
    """A ``progress(done, total)`` callable writing to ``stream`` (module docstring).
    ``tty`` defaults to ``stream.isatty()``; ``clock`` is injectable for tests."""

    def __init__(
        self,
        stream: TextIO,
        *,
        label: str,
        unit: str = "dates",
        tty: bool | None = None,
        every_seconds: float = 5.0,
        every_fraction: float = 0.10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream, self.label, self.unit, self.clock = stream, label, unit, clock
        self.tty = _isatty(stream) if tty is None else tty
        self.every_seconds, self.every_fraction = every_seconds, every_fraction
        self.started = clock()  # moved to each call with done 0
        self._last_time = self.started
        self._last_done = -1
        self._width = 0
        self._open = False  # a \r line is on screen without its newline

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if done == 0:
            self.started = now
        line = progress_line(
            label=self.label, unit=self.unit, done=done, total=total, elapsed=now - self.started
        )
        finished = done >= total
        if self.tty:
            self._width = max(self._width, len(line))
            self._write("\r" + line.ljust(self._width) + ("\n" if finished else ""))
            self._open = not finished
        elif finished or self._due(done, total, now):
            self._write(line + "\n")
        else:
            return
        self._last_time, self._last_done = now, done
        self.stream.flush()

    def _write(self, text: str) -> None:
        if hasattr(self.stream, "ending"):  # a command's OutputWrapper adds no newline
            self.stream.write(text, ending="")
        else:
            self.stream.write(text)

    def _due(self, done: int, total: int, now: float) -> bool:
        if self._last_done < 0 or now - self._last_time >= self.every_seconds:
            return True
        step = max(1, int(total * self.every_fraction))
        return done // step > self._last_done // step

    def close(self) -> None:
        """End an unfinished terminal line (work stopped early or failed)."""
        if self._open:
            self._write("\n")
            self.stream.flush()
            self._open = False


def _isatty(stream) -> bool:
    inner = getattr(stream, "_out", stream)  # Django's OutputWrapper around sys.stdout
    try:
        return bool(inner.isatty())
    except (AttributeError, ValueError):
        return False
