"""PNG plots of model runs (matplotlib, no display needed).

Reads pandas frames handed in; writes the PNG files it is given paths for.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window, never a display server
    import matplotlib.pyplot as plt

    return plt


def metrics_across_runs(runs: pd.DataFrame, path: Path) -> str:
    """The primary metric of each run, with the baseline configuration and popularity on the same split."""
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    name = str(runs["primary_metric"].iloc[-1]) if len(runs) else "metric"
    labels = [f"{d}\n{k[-8:]}" for d, k in zip(runs["run_date"], runs["run_key"], strict=True)]
    series = (("metrics", "model"), ("baseline_metrics", "baseline config"), ("popularity_metrics", "popularity"))
    for column, label in series:
        values = [m.get(name) if isinstance(m, dict) else dict(m or []).get(name) for m in runs[column]]
        ax.plot(range(len(values)), values, marker="o", label=label)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel(name)
    ax.set_title(f"{name} across model runs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def distribution(counts: pd.DataFrame, mode: str, path: Path) -> str:
    """Bar chart of how many training pairs have each rating (explicit) or strength (implicit)."""
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([str(v) for v in counts["value"]], counts["count"])
    ax.set_xlabel("rating" if mode == "explicit" else "play strength (log1p of full plays)")
    ax.set_ylabel("user-track pairs")
    ax.set_title("Values of the run's user-track pairs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def search(values: list[float], states: list[str], metric: str, higher: bool, path: Path) -> str:
    """A tuning run's search: each trial's validation metric in the order they started (pruned and failed trials
    marked at the bottom), and the best so far."""
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    done = [(i, v) for i, v in enumerate(values) if v == v]  # NaN: pruned or failed
    best: list[float] = []
    for _, v in done:
        best.append(v if not best else (max(best[-1], v) if higher else min(best[-1], v)))
    ax.scatter([i for i, _ in done], [v for _, v in done], label="trial", zorder=3)
    ax.step([i for i, _ in done], best, where="post", color="tab:green", label="best so far")
    floor = min((v for _, v in done), default=0.0)
    for state, marker in (("pruned", "x"), ("failed", "v")):
        at = [i for i, s in enumerate(states) if s == state]
        if at:
            ax.scatter(at, [floor] * len(at), marker=marker, color="grey", label=state)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{metric} (validation)")
    ax.set_title(f"Tuning search: {len(values)} trials, best {best[-1]:.4f}" if best else "Tuning search")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
