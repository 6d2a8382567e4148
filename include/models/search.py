"""The search behind every tuning: fixed candidates first, then Optuna's TPE sampler over the mode's ALS settings,
with trials that score clearly worse after a few iterations pruned.

Reads and writes nothing: ``score`` (a fit and its validation metric) is the caller's. The search is seeded
(``params.seed``), so the same scores propose the same candidates; a time budget only decides how many run.

- **Space.** rank (8-128, log scale), regParam (0.01-1, log scale), iterations (5-25), and alpha (0.5-50, log
  scale) in implicit mode or the bias damping (1-30, log scale) in explicit mode with biases.
- **Pruning.** A proposed trial with more than :data:`RUNG_ITER` iterations is first fitted with that many; when
  its metric there is in the worst third of the trials that reached the same point, it stops (``pruned``) and
  its full fit never runs. Fixed candidates always run in full.
- **Budget.** No trial starts after the deadline, nor when the time left is less than a typical trial's.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from include.lake.jobs import FitError
from include.models.als import AlsParams, side_by_side

RUNG_ITER = 5  # the iterations at which a proposed trial is compared with the others before its full fit
KEPT_PERCENTILE = 67.0  # Optuna keeps trials in this top percentile at the rung: the worst third is pruned
STARTUP_TRIALS = 5  # TPE's random proposals before it models the scores

State = Literal["complete", "pruned", "failed"]


@dataclass(frozen=True)
class Trial:
    """One candidate the search ran: its metric (NaN unless complete), seconds, who proposed it (``fixed`` or
    ``tpe``), how it ended, its metric at :data:`RUNG_ITER` iterations when it was fitted there first, and why its
    fit failed."""

    params: AlsParams
    value: float
    seconds: float
    sampler: str
    state: State
    rung: float | None = None
    failed: str = ""


def space(params: AlsParams, held: Sequence[str] = ()) -> dict[str, Any]:
    """What the search varies for ``params``' mode, as Optuna distributions, but the ``held`` settings; every other
    setting stays ``params``'."""
    from optuna.distributions import FloatDistribution, IntDistribution

    found: dict[str, Any] = {
        "rank": IntDistribution(8, 128, log=True),
        "reg_param": FloatDistribution(0.01, 1.0, log=True),
        "max_iter": IntDistribution(5, 25),
    }
    if params.mode == "implicit":
        found["alpha"] = FloatDistribution(0.5, 50.0, log=True)
    elif params.biases:
        found["damping"] = FloatDistribution(1.0, 30.0, log=True)
    return {name: dist for name, dist in found.items() if name not in held}


def in_space(candidate: AlsParams, params: AlsParams, dists: Mapping[str, Any]) -> bool:
    """Whether ``candidate`` is a point of ``params``' search space (the baseline configuration is not)."""
    same = params.replace(**{name: getattr(candidate, name) for name in dists})
    return candidate == same and all(d.low <= getattr(candidate, n) <= d.high for n, d in dists.items())


def _timed(score: Callable[[AlsParams], float], candidate: AlsParams) -> tuple[float, float, str]:
    started = time.monotonic()
    try:
        value = score(candidate)
    except FitError as exc:  # that candidate cannot fit this input: the others can still be tried
        return math.nan, time.monotonic() - started, str(exc)
    return value, time.monotonic() - started, ""


def run(
    params: AlsParams,
    fixed: Sequence[AlsParams],
    score: Callable[[AlsParams], float],
    higher: bool,
    trials: int,
    seconds: float,
    workers: int = 1,
    prune: bool = True,
    held: Sequence[str] = (),
) -> list[Trial]:
    """At most ``trials`` trials within ``seconds``, ``workers`` at a time: ``fixed`` in order (the first always
    runs), then TPE's proposals around ``params`` with the ``held`` settings kept at ``params``'. ``score`` fits a
    candidate and returns its validation metric (``higher`` is better), raising :class:`FitError` when the
    candidate cannot be fitted."""
    import optuna

    deadline = time.monotonic() + seconds
    fixed = list(fixed)[: max(1, trials)]
    done: list[Trial] = []
    for candidate, (value, took, failed) in zip(
        fixed, side_by_side(lambda c: _timed(score, c), fixed, workers, deadline), strict=False
    ):
        state: State = "failed" if failed or math.isnan(value) else "complete"
        done.append(Trial(candidate, value, round(took, 2), "fixed", state, failed=failed))
    if len(done) >= trials:
        return done
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = space(params, held)
    study = optuna.create_study(
        direction="maximize" if higher else "minimize",
        sampler=optuna.samplers.TPESampler(seed=params.seed, n_startup_trials=STARTUP_TRIALS),
        pruner=optuna.pruners.PercentilePruner(KEPT_PERCENTILE, n_startup_trials=3) if prune else None,
    )
    for trial in done:
        if trial.state == "complete" and in_space(trial.params, params, dists):
            values = {name: getattr(trial.params, name) for name in dists}
            study.add_trial(optuna.trial.create_trial(params=values, distributions=dists, value=trial.value))

    def proposed(asked: optuna.trial.Trial) -> Trial:
        candidate = params.replace(**asked.params)
        started = time.monotonic()
        rung = None
        if prune and candidate.max_iter > RUNG_ITER:
            rung, _, failed = _timed(score, candidate.replace(max_iter=RUNG_ITER))
            if failed or math.isnan(rung):
                return Trial(candidate, math.nan, round(time.monotonic() - started, 2), "tpe", "failed", None, failed)
            asked.report(rung, RUNG_ITER)
            if asked.should_prune():
                return Trial(candidate, math.nan, round(time.monotonic() - started, 2), "tpe", "pruned", rung)
        value, _, failed = _timed(score, candidate)
        state: State = "failed" if failed or math.isnan(value) else "complete"
        return Trial(candidate, value, round(time.monotonic() - started, 2), "tpe", state, rung, failed)

    while len(done) < trials:
        typical = statistics.median(t.seconds for t in done)
        if time.monotonic() + typical > deadline:
            break
        asked = [study.ask(dists) for _ in range(min(max(1, workers), trials - len(done)))]
        for one, result in zip(asked, side_by_side(proposed, asked, workers), strict=True):
            if result.state == "complete":
                study.tell(one, result.value)
            else:
                ended = optuna.trial.TrialState.PRUNED if result.state == "pruned" else optuna.trial.TrialState.FAIL
                study.tell(one, state=ended)
            done.append(result)
    return done
