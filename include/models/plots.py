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
