"""The Monte Carlo projection of a live portfolio from its stored rows, through the
command: the issue's JSON keys, a seed reproduces the result bit for bit, the inputs are
the stored ones (weights, equity, today's drawdown, the drawdown limit), and bad input
gets one message naming the option."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from operations.tests.scenario_setup import stressed_portfolio
from portfolio.models import PortfolioSnapshot
from risk.engine.montecarlo import simulate
from risk.models import ScenarioRun
from risk.services.projections import unit_returns_frame


@pytest.fixture
def live(db):
    return stressed_portfolio()


def _run(tmp_path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    call_command("montecarlo", *args, "--json", str(out))
    return json.loads(out.read_text())


def test_the_command_writes_the_issue_keys_and_a_seed_reproduces_it(live, tmp_path):
    args = ("--paths", "2000", "--horizon", "63", "--seed", "7", "--block", "5")
    a = _run(tmp_path, "a", *args)
    b = _run(tmp_path, "b", *args)
    assert a == b
    assert 0.0 <= a["p_breach_drawdown"] <= 1.0
    assert set(a["terminal_value"]) == {"p5", "p50", "p95"}
    assert a["terminal_value"]["p5"] <= a["terminal_value"]["p50"] <= a["terminal_value"]["p95"]
    assert a["max_drawdown"]["p95"] <= 0.0 and a["drawdown_limit"] == -0.10
    other = _run(tmp_path, "c", "--paths", "2000", "--horizon", "63", "--seed", "8", "--block", "5")
    assert other["terminal_value"] != a["terminal_value"]
    assert ScenarioRun.objects.filter(kind="montecarlo", trigger="command").count() == 3


def test_the_projection_reads_the_stored_weights_equity_and_drawdown(live, tmp_path):
    got = _run(tmp_path, "a", "--paths", "500", "--horizon", "20", "--seed", "3", "--block", "2")
    snap = PortfolioSnapshot.objects.filter(portfolio=live).order_by("-date").first()
    weights = snap.risk["weights"]
    assert got["weights"] == weights and got["value0"] == snap.equity
    # the same engine call by hand on the stored unit returns gives the same numbers
    returns = unit_returns_frame(live)
    ref = simulate(
        returns=returns.to_numpy(),
        weights=np.array([weights[n] for n in returns.columns]),
        value0=snap.equity,
        paths=500,
        horizon=20,
        mean_block=2,
        seed=3,
        drawdown_limit=-0.10,
        start_drawdown=min(0.0, snap.risk["limit_drawdown"]),
    ).to_dict()
    assert got["terminal_value"] == ref["terminal_value"]
    assert got["p_breach_drawdown"] == ref["p_breach_drawdown"]
    assert sum(got["terminal_hist"][1]) == 500  # every path in the histogram


@pytest.mark.parametrize(
    "args, message",
    [
        (("--paths", "0"), "--paths: must be a whole number from 1"),
        (("--horizon", "100000"), "--horizon: must be a whole number from 1"),
        (("--seed", "-1"), "--seed: must be a whole number >= 0"),
    ],
)
def test_a_bad_option_gets_one_message_and_stores_nothing(live, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("montecarlo", *args)
    assert not ScenarioRun.objects.exists()


def test_walk_forward_of_a_strategys_lookbacks_chooses_on_the_in_sample_scores(live):
    from risk.services.projections import walkforward_record

    run = walkforward_record(
        portfolio=live,
        params={
            "strategy": "fast",
            "lookbacks": "20,60,120",
            "in_sample": 756,
            "out_of_sample": 252,
        },
        trigger="command",
    )
    assert run.status == "success", run.error
    r = run.result
    assert r["labels"] == ["lookback=20", "lookback=60", "lookback=120"]
    assert len(r["folds"]) >= 20  # 1990..2022 in 252-bar steps after a 756-bar start
    for fold in r["folds"]:
        scores = fold["in_sample_scores"]
        best = max(scores, key=lambda k: (scores[k] is not None, scores[k] or 0.0))
        assert fold["chosen"] == best and fold["is_score"] == scores[best]
        assert fold["in_sample_end"] < fold["out_of_sample_start"]
    assert set(r["equity"]) == {*r["labels"], "walk-forward"}
    assert [row["label"] for row in r["table"]][-1] == "walk-forward"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"strategy": "nope"}, "strategy"),
        ({"strategy": "fast", "lookbacks": "60"}, "lookbacks"),
        ({"strategy": "fast", "lookbacks": "a,b"}, "lookbacks"),
        ({"strategy": "fast", "in_sample": 3}, "in_sample"),
    ],
)
def test_walk_forward_refuses_bad_parameters_naming_them(live, params, field):
    from risk.services.projections import ParamsError, walkforward_record

    with pytest.raises(ParamsError) as exc:
        walkforward_record(portfolio=live, params=params, trigger="command")
    assert exc.value.field == field
    assert not ScenarioRun.objects.exists()
