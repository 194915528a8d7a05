"""Scale out: the per-strategy target weights of a large book computed by django-q2 workers.

What is separable (profiled on a 100-strategy book, see the README "Scaling out"): each
strategy's signal and sizing over the whole pending history (``spec_targets``) depends on
its own parameters and the prices only. Everything after it (the daily cycle: fills,
allocation and rebalancing, the risk hook, the strategy- and portfolio-level measures of
each bar) couples the strategies bar by bar and stays in the updating process, as do the
commit and the notification.

``strategies_targets`` is the only entry point (``operations.update.portfolio_apply``).
With ``QUANTSITE_FANOUT`` off, or fewer strategies than
``QUANTSITE_FANOUT_MIN_STRATEGIES``, it computes in process. Otherwise it splits the
strategies (in their position order) into contiguous groups, sends each group to the
task queue as one ``targets_group`` task carrying the prices slice (a pickled
``DataFrame``: pickle keeps every float64 bit) and the strategies' plain parameters
(results come back as compressed pickles), waits for all of them
(``QUANTSITE_FANOUT_TIMEOUT`` seconds), and joins them in position order. Workers run
the same ``spec_targets`` as the in-process path on the same inputs, so the targets, and
so every stored number, are bit for bit the same (``operations.tests.test_fanout``).

A worker error or a timeout raises ``FanoutError`` before the first chunk is applied, so
the run fails (``UpdateRun`` failed, its error says why) and stores nothing; the next run
starts again from ``last_applied_date``. The group's task rows are deleted either way
(their pickled results are large).
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
import zlib

import pandas as pd
from django.conf import settings

from portfolio.models import Strategy
from portfolio.services.books import TargetsSpec, spec_targets, targets_spec

log = logging.getLogger(__name__)


class FanoutError(RuntimeError):
    """A fan-out group failed or did not answer in time: nothing was applied."""


def fanout_groups(n_strategies: int) -> int:
    """How many groups to split ``n_strategies`` into (0 = compute in process)."""
    mode = str(settings.QUANTSITE_FANOUT).strip().lower()
    if mode in ("", "off", "0") or n_strategies < settings.QUANTSITE_FANOUT_MIN_STRATEGIES:
        return 0
    # auto: one group per worker but the one the scheduled update itself occupies
    groups = settings.Q_CLUSTER.get("workers", 1) - 1 if mode == "auto" else int(mode)
    return max(0, min(groups, n_strategies))


def strategies_targets(
    strategies: list[Strategy], history: pd.DataFrame, tradable: list[str]
) -> dict[str, pd.DataFrame]:
    """Target weights of every strategy, by name, in the strategies' order: in process
    or over the workers (``fanout_groups``), with the same result."""
    specs = [targets_spec(s) for s in strategies]
    groups = fanout_groups(len(specs))
    if groups <= 1:
        return {spec.name: spec_targets(spec, history, tradable) for spec in specs}
    return _fan_out(specs, history, tradable, groups)


def targets_group(specs: list[TargetsSpec], closes: pd.DataFrame, tradable: list[str]):
    """The worker's task: one group's targets, in the group's order, each a compressed
    pickle (exact; target weights repeat between a signal's rebalances, so zlib shrinks
    them about tenfold, and the broker's result store carries that much less)."""
    return [(spec.name, _pack(spec_targets(spec, closes, tradable))) for spec in specs]


def _pack(frame: pd.DataFrame) -> bytes:
    return zlib.compress(pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL), 1)


def _unpack(blob: bytes) -> pd.DataFrame:
    return pickle.loads(zlib.decompress(blob))  # noqa: S301 - our own workers' results


def _split(specs: list[TargetsSpec], groups: int) -> list[list[TargetsSpec]]:
    size, extra = divmod(len(specs), groups)
    out, k = [], 0
    for g in range(groups):
        n = size + (1 if g < extra else 0)
        out.append(specs[k : k + n])
        k += n
    return out


def _fan_out(specs, history, tradable, groups) -> dict[str, pd.DataFrame]:
    from django_q.models import Task
    from django_q.tasks import async_task

    closes = history[[t for t in tradable if t in history.columns]]
    gid = f"fanout-{uuid.uuid4().hex}"
    parts = _split(specs, groups)
    timeout = settings.QUANTSITE_FANOUT_TIMEOUT
    t0 = time.perf_counter()
    try:
        ids = [
            async_task(
                "operations.fanout.targets_group",
                part,
                closes,
                tradable,
                group=gid,
                task_name=f"{gid}-{i:03d}",
                timeout=timeout,
                cached=False,
            )
            for i, part in enumerate(parts)
        ]
        done = _wait(Task, ids, timeout)
        out: dict[str, pd.DataFrame] = {}
        for task_id in ids:  # join in position order, whatever order they finished in
            for name, blob in done[task_id].result:
                out[name] = _unpack(blob)
        if list(out) != [s.name for s in specs]:
            raise FanoutError(f"fan-out group {gid}: results do not match the strategies")
        log.info(
            "fan-out: %d strategies in %d groups, %.2f s",
            len(specs),
            groups,
            time.perf_counter() - t0,
        )
        return out
    except FanoutError:
        raise
    except Exception as exc:  # the broker, or a task run in process (sync mode) raising
        raise FanoutError(f"fan-out group {gid} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        Task.objects.filter(group=gid).delete()


def _wait(Task, ids: list[str], timeout: float) -> dict:
    """Every task of ``ids`` once all succeeded; ``FanoutError`` on the first failure or
    when they have not all finished within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:  # poll the flags only: the results are large
        finished = dict(Task.objects.filter(id__in=ids).values_list("id", "success"))
        failed = [i for i, ok in finished.items() if not ok]
        if failed:
            task = Task.objects.get(id=failed[0])
            raise FanoutError(f"fan-out task {task.name} failed: {task.result}")
        if len(finished) == len(ids):
            return {t.id: t for t in Task.objects.filter(id__in=ids)}
        if time.monotonic() >= deadline:
            raise FanoutError(
                f"fan-out timed out after {timeout:g} s ({len(finished)} of {len(ids)} "
                "groups answered): are the qcluster workers running?"
            )
        time.sleep(0.05)
