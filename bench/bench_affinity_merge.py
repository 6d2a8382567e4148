"""What folding one day into a large affinity state costs in Delta: a MERGE of the day's pairs, against writing the
day alone and copying the whole state.

Usage: .venv/bin/python bench/bench_affinity_merge.py --pairs-per-user 700 --day-pairs-per-user 40

A synthetic state of ``--users`` users with about ``--pairs-per-user`` distinct tracks each (out of ``--tracks``),
in the columns of ``gold.user_track_affinity``, is written to a Delta table with deletion vectors on and off; then
one day of about ``--day-pairs-per-user`` pairs per user is MERGEd into it on the pair keys (matched pairs add their
plays, new pairs are inserted), as ``build_gold`` folds a day. Prints the state's rows and each step's wall time.
Runs its own in-process Spark (``local[2]``, 6g driver) on throwaway tables under ``bench/results/merge/``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from include.core.config import load_settings
from include.lake.spark import get_spark

OUT = ROOT / "bench" / "results" / "merge"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--tracks", type=int, default=50_000)
    p.add_argument("--pairs-per-user", type=int, default=700)
    p.add_argument("--day-pairs-per-user", type=int, default=40)
    args = p.parse_args()

    from pyspark.sql import functions as F

    shutil.rmtree(OUT, ignore_errors=True)
    settings = load_settings(spark_mode="submit", spark_master="local[2]", lake=str(OUT), driver_memory="6g")
    spark = get_spark("bench-affinity-merge", settings)

    def pairs(per_user: int, salt: int, day: str):  # type: ignore[no-untyped-def]
        ids = spark.range(args.users * per_user).select(
            (F.col("id") / per_user).cast("int").alias("user_key"),
            (F.abs(F.xxhash64("id", F.lit(salt))) % args.tracks).cast("int").alias("track_key"),
        )
        return ids.dropDuplicates(["user_key", "track_key"]).select(
            "user_key",
            "track_key",
            F.concat(F.lit("user_"), "user_key").alias("user_id"),
            F.concat(F.lit("trk_"), "track_key").alias("track_id"),
            (F.col("track_key") % 7 + 1).cast("long").alias("plays"),
            (F.col("track_key") % 5).cast("long").alias("full_plays"),
            (F.col("track_key") * 1000).cast("long").alias("total_ms_played"),
            F.current_timestamp().alias("last_played_at"),
            F.lit(None).cast("double").alias("latest_rating"),
            F.lit(None).cast("timestamp").alias("rated_at"),
            F.lit(False).alias("liked"),
            F.lit(1.0).alias("strength"),
            F.lit(2.0).alias("confidence"),
            F.lit(day).alias("changed_on"),
        )

    for dv in (True, False):
        path = OUT / f"state_dv{int(dv)}"
        started = time.monotonic()
        pairs(args.pairs_per_user, 1, "2026-11-30").repartition(8).write.format("delta").option(
            "delta.enableDeletionVectors", str(dv).lower()
        ).save(str(path))
        rows = spark.read.format("delta").load(str(path)).count()
        print(f"deletion vectors {dv}: state of {rows:,} pairs written in {time.monotonic() - started:.1f}s")
        day = pairs(args.day_pairs_per_user, 2, "2026-12-01").localCheckpoint()
        day_rows = day.count()
        day.createOrReplaceTempView("day")
        started = time.monotonic()
        spark.sql(
            f"MERGE INTO delta.`{path}` t USING day s ON t.user_key = s.user_key AND t.track_key = s.track_key "
            "WHEN MATCHED THEN UPDATE SET plays = t.plays + s.plays, full_plays = t.full_plays + s.full_plays, "
            "changed_on = s.changed_on WHEN NOT MATCHED THEN INSERT *"
        ).collect()
        print(f"deletion vectors {dv}: MERGE of {day_rows:,} day pairs in {time.monotonic() - started:.1f}s")
        started = time.monotonic()
        day.write.format("delta").mode("overwrite").save(str(OUT / "day_only"))
        print(f"deletion vectors {dv}: writing the day alone {time.monotonic() - started:.1f}s")
        started = time.monotonic()
        spark.read.format("delta").load(str(path)).write.format("delta").mode("overwrite").save(str(OUT / "copy"))
        print(f"deletion vectors {dv}: a full copy of the state {time.monotonic() - started:.1f}s", flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
