"""The tuning search on a known function of the settings: what it proposes, prunes and spends."""

from __future__ import annotations

import math

import numpy as np
import pytest

from include.models import als, search

pytestmark = pytest.mark.unit

PARAMS = als.AlsParams(mode="implicit", rank=30, max_iter=15, reg_param=0.4, alpha=5.0)


def score_of(params: als.AlsParams) -> float:
    """Best at rank 64, regParam 0.05, alpha 20; at few iterations a candidate shows most of its final score."""
    distance = (
        math.log(params.rank / 64) ** 2 + math.log(params.reg_param / 0.05) ** 2 + math.log(params.alpha / 20) ** 2
    )
    return 1 / (1 + distance) * min(1.0, 0.5 + params.max_iter / 20)


def test_the_search_runs_the_fixed_candidates_first_then_improves_on_them(spark):
    baseline = PARAMS.replace(rank=10, nonnegative=True)
    trials = search.run(PARAMS, [PARAMS, baseline], score_of, higher=True, trials=30, seconds=600)
    assert [(t.params, t.sampler) for t in trials[:2]] == [(PARAMS, "fixed"), (baseline, "fixed")]
    assert len(trials) == 30 and {t.sampler for t in trials[2:]} == {"tpe"}
    proposed = trials[2:]
    space = search.space(PARAMS)
    assert all(search.in_space(t.params, PARAMS, space) for t in proposed) and not search.in_space(
        baseline, PARAMS, space
    )
    best = max(t.value for t in trials if t.state == "complete")
    assert best > score_of(PARAMS) + 0.2  # TPE found better settings than the fixed ones
    # pruned trials stopped at the rung: no final value, their rung value among the worst at that point
    pruned = [t for t in trials if t.state == "pruned"]
    assert pruned and all(math.isnan(t.value) and t.rung is not None for t in pruned)
    for i, trial in enumerate(trials):
        if trial.state == "pruned":  # worse than a third of the completed trials' rung values before it
            earlier = [t.rung for t in trials[:i] if t.state == "complete" and t.rung is not None]
            assert len(earlier) >= 1 and trial.rung < np.percentile(earlier, 100 - search.KEPT_PERCENTILE)
    assert [t for t in trials if t.state == "complete" and t.rung is not None]  # and others went on past it
    again = search.run(PARAMS, [PARAMS, baseline], score_of, higher=True, trials=30, seconds=600)
    assert [t.params for t in again] == [t.params for t in trials]  # seeded: the same scores, the same proposals


def test_the_search_minimizes_skips_unfit_candidates_and_keeps_its_time(spark):
    explicit = als.AlsParams(mode="explicit", rank=50, max_iter=20, reg_param=0.15, biases=True)
    assert set(search.space(explicit)) == {"rank", "reg_param", "max_iter", "damping"}

    def rmse(params: als.AlsParams) -> float:
        if params.rank > 100:
            raise als.FitError("too large a rank for this input")
        return 1 - score_of(params.replace(alpha=20.0)) / 2

    trials = search.run(explicit, [explicit], rmse, higher=False, trials=40, seconds=600, prune=False)
    assert not [t for t in trials if t.state == "pruned"]
    done = [t for t in trials if t.state == "complete"]
    assert min(t.value for t in done) < rmse(explicit)
    assert all(t.failed and t.params.rank > 100 for t in trials if t.state == "failed")
    # no time: only the first fixed candidate runs
    assert [t.params for t in search.run(explicit, [explicit, PARAMS], rmse, False, 40, seconds=0)] == [explicit]


def test_settings_a_user_set_are_held_by_the_search(spark):
    trials = search.run(PARAMS, [PARAMS], score_of, higher=True, trials=8, seconds=600, held=("rank", "alpha"))
    assert {(t.params.rank, t.params.alpha) for t in trials} == {(30, 5.0)}
    assert len({t.params.reg_param for t in trials}) > 1  # the others still vary
