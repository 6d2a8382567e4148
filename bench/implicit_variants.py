"""Implicit ALS on MovieLens: other training signals, ensembles and a popularity blend, on the validation split.

Usage (after ``setlist evaluate --source movielens ... --mode implicit`` has built the evaluation lake)::

    .venv/bin/python bench/implicit_variants.py [--lake lake-evaluate/movielens] [--signal plays]
        [--ensemble N] [--blend 0.1,0.2] '{"rank": 30, "max_iter": 15, "reg_param": 0.4, "alpha": 5.0}' ...

Reads ``silver.interactions`` of the evaluation lake and prints, per configuration, NDCG@10 and its ratio to
popularity's. Scores only the validation split that tuning uses (carved from the seed-42 training split with
seed 43), never the test split, so what it finds can choose a setting without touching the test split. The
relevant pairs are always the held-out positive pairs (a rating of 4 or more); ``--signal`` changes only what
training sees:

- ``plays``: what the pipeline trains on (a positive is one full play, strength log1p(1); lower ratings are
  skipped plays with strength 0, which Spark's implicit ALS ignores);
- ``rating-strength``: positives weighted by the rating (strength log1p(rating - 3): 4 -> 0.69, 5 -> 1.10);
- ``weak-low``: lower ratings as a weak positive (0.3 of a play);
- ``negative-low``: lower ratings as a negative preference (strength -0.5: confident that it is not liked).

Writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.core import tables
from include.core.config import load_settings
from include.lake import delta_io
from include.models import als, evaluation

SEED = 42
PLAY = 0.6931471805599453  # log1p(1): one full play


def signal(name: str):  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    positive = ~F.col("skipped")
    low = {"plays": F.lit(0.0), "weak-low": F.lit(0.3 * PLAY), "negative-low": F.lit(-0.5)}
    if name == "rating-strength":
        return F.when(positive, F.log1p(F.col("rating") - 3.0)).otherwise(0.0)
    return F.when(positive, F.lit(PLAY)).otherwise(low[name])


def side_by_side(frames: list, scales: list[float]):  # type: ignore[no-untyped-def]
    """(id, features) frames joined by id, each vector scaled, concatenated in order."""
    from pyspark.sql import functions as F

    scaled = [
        f.select("id", F.transform("features", lambda x, s=s: (x * s).cast("float")).alias(f"f{i}"))
        for i, (f, s) in enumerate(zip(frames, scales, strict=True))
    ]
    joined = scaled[0]
    for f in scaled[1:]:
        joined = joined.join(f, "id")
    return joined.select("id", F.concat(*[f"f{i}" for i in range(len(frames))]).alias("features"))


def ensemble(models: list[als.Factors]) -> als.Factors:
    """One model whose dot product is the mean of the models' dot products (factors side by side)."""
    n = len(models)
    users = side_by_side([m.users for m in models], [1.0 / n] * n)
    items = side_by_side([m.items for m in models], [1.0] * n)
    return als.Factors(users, items, sum(m.rank for m in models), models[0].fitted)


def blended(model: als.Factors, prior, b: float) -> als.Factors:  # type: ignore[no-untyped-def]
    """The model's score + b x the track's prior, as one more factor: user b, track prior (0 without one)."""
    from pyspark.sql import functions as F

    users = model.users.select("id", F.concat("features", F.array(F.lit(b).cast("float"))).alias("features"))
    items = (
        model.items.join(prior.withColumnRenamed(als.TRACK, "id"), "id", "left")
        .fillna(0.0)
        .select("id", F.concat("features", F.array(F.col("prior").cast("float"))).alias("features"))
    )
    return als.Factors(users, items, model.rank + 1, model.fitted)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lake", default=str(ROOT / "lake-evaluate" / "movielens"))
    p.add_argument("--signal", choices=("plays", "rating-strength", "weak-low", "negative-low"), default="plays")
    p.add_argument("--ensemble", type=int, default=1, help="average this many models with different seeds")
    p.add_argument(
        "--blend",
        type=lambda text: [float(b) for b in text.split(",")],
        default=[],
        help="comma-separated b values: also score ALS score + b * popularity (log-scaled to 0..1)",
    )
    p.add_argument("configs", nargs="+", help="ALS parameters as JSON")
    args = p.parse_args()

    from pyspark.sql import functions as F

    from include.lake.spark import get_spark

    settings = load_settings(lake=args.lake, als_mode="implicit")
    spark = get_spark("implicit-variants", settings)
    events = delta_io.read(spark, tables.SILVER_INTERACTIONS, args.lake)
    keys = [als.USER, als.TRACK]
    plays = events.select(*keys, signal("plays").cast("float").alias(als.RATING)).cache()
    trained = events.select(*keys, signal(args.signal).cast("float").alias(als.RATING))
    outer = evaluation.split_for("implicit", plays, SEED)
    inner = evaluation.split_for("implicit", outer.train, SEED + 1)
    train = trained.join(inner.train.select(*keys), keys).cache()
    split = evaluation.Split(train, inner.test.cache(), F.col(als.RATING) > 0, SEED + 1)
    catalog = plays.select(als.TRACK).distinct().count()
    popular = evaluation.evaluate_popularity(evaluation.Split(inner.train, inner.test, split.positive), 10, catalog)
    base = popular["ndcg_at_10"]
    print(f"validation split: popularity ndcg_at_10 {base:.4f}; signal {args.signal}", flush=True)
    fitter = als.fitter(settings, spark)
    counts = inner.train.where(split.positive).groupBy(als.TRACK).count()
    top = counts.agg(F.max("count")).first()[0]  # type: ignore[index]
    prior = counts.select(als.TRACK, (F.log1p("count") / F.log1p(F.lit(top))).alias("prior"))
    for text in args.configs:
        config = json.loads(text)
        started = time.monotonic()
        models = [
            fitter(train, als.AlsParams(mode="implicit", seed=SEED + 1000 * i, **config)) for i in range(args.ensemble)
        ]
        model = models[0] if args.ensemble == 1 else ensemble(models)
        for b in [0.0, *args.blend]:
            scored = blended(model, prior, b) if b else model
            ndcg = evaluation.evaluate_model(scored, split, "implicit", 10, catalog)["ndcg_at_10"]
            label = f" ensemble {args.ensemble}" if args.ensemble > 1 else ""
            label += f" blend {b}" if args.blend else ""
            print(
                f"{json.dumps(config)}{label}: ndcg_at_10 {ndcg:.4f} = {ndcg / base:.3f}x popularity"
                f" ({time.monotonic() - started:.0f}s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
