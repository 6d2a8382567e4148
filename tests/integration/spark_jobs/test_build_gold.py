"""build_gold keeps gold incrementally, equal to a full recomputation: a random sequence of new days, reruns (of the
same silver, and of silver that changed) and out-of-order backfills on tiny data; after each step every gold table
equals what recomputing everything from silver gives, computed here in plain Python from silver's rows."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict

import pytest
from pyspark.sql import functions as F

from include.core import tables
from include.lake import delta_io, gold_state
from spark_jobs import build_gold
from tests.checks import rows

pytestmark = pytest.mark.integration

USERS, TRACKS, ALPHA = 4, 5, 5.0
KEYS = ("user_key", "track_key")


COLUMNS = tables.SILVER_INTERACTIONS.columns


def silver_rows(rng: random.Random, day: str, version: int) -> list[tuple]:
    """A few silver rows of ``day``: repeated pairs, ratings at equal times, counts, skips and likes."""
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    out = []
    for i in range(rng.randint(0, 9)):
        u, t = rng.randint(1, USERS), rng.randint(1, TRACKS)
        at = start + dt.timedelta(hours=rng.choice((1, 2, 2, 3)))  # equal times: the tie-break is exercised
        rating = rng.choice((None, None, 1.0, 3.5, 4.5))
        out.append(
            (f"e{day}-{version}-{i}", f"u{u}", f"t{t}", u, t, at, rng.randint(0, 9) * 1000, rng.random() < 0.3,
             rng.random() < 0.2, rating, day, rng.choice((1, 1, 3)))
        )  # fmt: skip
    return out


def expected_state(silver: list, upto: str) -> dict[tuple[int, int], dict]:
    """The affinity of every silver row up to ``upto``, from first principles."""
    state: dict[tuple[int, int], dict] = {}
    for r in sorted((r for r in silver if r["run_date"] <= upto), key=lambda r: r["run_date"]):
        s = state.setdefault(
            (r["user_key"], r["track_key"]),
            {"plays": 0, "full_plays": 0, "total_ms_played": 0, "last_played_at": None, "latest_rating": None,
             "rated_at": None, "liked": False, "changed_on": "", "user_id": r["user_id"], "track_id": r["track_id"]},
        )  # fmt: skip
        plays = r["plays"] or 1
        s["plays"] += plays
        s["full_plays"] += 0 if r["skipped"] else plays
        s["total_ms_played"] += r["ms_played"]
        s["last_played_at"] = max(filter(None, (s["last_played_at"], r["played_at"])))
        later = s["rated_at"] is None or (r["played_at"], r["rating"]) > (s["rated_at"], s["latest_rating"])
        if r["rating"] is not None and later:  # the latest rating by time; at the same time, the higher one
            s["rated_at"], s["latest_rating"] = r["played_at"], r["rating"]
        s["liked"] = s["liked"] or r["liked"]
        s["changed_on"] = max(s["changed_on"], r["run_date"])
    for s in state.values():
        s["strength"] = math.log1p(s["full_plays"])
        s["confidence"] = 1 + ALPHA * s["strength"]
    return state


def expected_popularity(state: dict) -> dict[int, tuple[int, int, int, int]]:
    """Per track: plays, full plays, listeners, rank (listeners, then full plays, then track id)."""
    per: dict[int, list] = defaultdict(lambda: [0, 0, 0, ""])
    for (_, t), s in state.items():
        p = per[t]
        p[0], p[1], p[2], p[3] = p[0] + s["plays"], p[1] + s["full_plays"], p[2] + 1, s["track_id"]
    order = sorted(per, key=lambda t: (-per[t][2], -per[t][1], per[t][3]))
    return {t: (per[t][0], per[t][1], per[t][2], order.index(t) + 1) for t in per}


def _as_dict(found: list) -> dict[tuple[int, int], dict]:
    return {(r["user_key"], r["track_key"]): r.asDict() for r in found}


def _naive(value: object) -> object:  # delta-rs reads UTC timestamps with their zone, Spark without
    return value.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(value, dt.datetime) and value.tzinfo else value


def assert_state(found: list, want: dict) -> None:
    got = _as_dict(found)
    assert got.keys() == want.keys()
    for key, w in want.items():
        for column, value in w.items():
            if isinstance(value, float):
                assert got[key][column] == pytest.approx(value), (key, column)
            else:
                assert _naive(got[key][column]) == _naive(value), (key, column, got[key][column], value)


def test_random_days_reruns_and_backfills_keep_gold_equal_to_a_full_recomputation(spark, tmp_path, caplog):
    """From a lake an earlier version wrote (affinity snapshots per day, a Data Docs site per job): its
    migration (once, said in one line), a new day after a gap, a rerun of changed silver of the newest day (onto
    the state before it, by time travel), an out-of-order backfill (that day and the later ones folded in again),
    a rerun of the same silver, and a rerun whose state to rewind to VACUUM removed (recomputed from silver)."""
    lake = str(tmp_path / "lake")
    rng = random.Random(20261207)
    caplog.set_level("INFO", logger="include.lake.jobs")
    for dim, name, count in ((tables.SILVER_DIM_USER, "u", USERS), (tables.SILVER_DIM_TRACK, "t", TRACKS)):
        keys = [(f"{name}{k}", k, "2026-11-01") for k in range(1, count + 1)]
        delta_io.merge(spark.createDataFrame(keys, dim.schema), dim, lake, [dim.columns[0]])
    silver: dict[str, list[tuple]] = {}
    folded: set[str] = set()
    quarantine = spark.createDataFrame([], tables.SILVER_QUARANTINE.schema)

    def land(day: str, version: int) -> None:
        silver[day] = silver_rows(rng, day, version)
        frame = spark.createDataFrame(silver[day], tables.SILVER_INTERACTIONS.schema)
        delta_io.overwrite_partition(frame, tables.SILVER_INTERACTIONS, lake, day)
        delta_io.overwrite_partition(quarantine, tables.SILVER_QUARANTINE, lake, day)

    land("2026-11-01", 0)  # what the earlier version left: a snapshot per day, a docs site per job and day
    day1 = delta_io.read(spark, tables.SILVER_INTERACTIONS, lake)
    old = (
        build_gold.full_state(day1, ALPHA).drop("rated_at", "changed_on").withColumn("as_of_date", F.lit("2026-11-01"))
    )
    old.write.format("delta").partitionBy("as_of_date").save(tables.GOLD_AFFINITY.path(lake))
    old_docs = tmp_path / "lake" / "_data_docs" / "run_date=2026-11-01" / "build_gold"
    old_docs.mkdir(parents=True)
    (old_docs / "index.html").write_text("<html></html>")

    steps = [("migrated", "2026-11-02"), ("new", "2026-11-04"), ("changed", "2026-11-04"), ("backfill", "2026-11-03"),
             ("rerun", "2026-11-03"), ("vacuumed", "2026-11-04")]  # fmt: skip
    for n, (kind, day) in enumerate(steps):
        if kind == "vacuumed":
            every = [dict(zip(COLUMNS, r, strict=True)) for day_rows in silver.values() for r in day_rows]
            for d in sorted(folded):  # every day's state as of that day, by time travel to its tagged version
                assert_state(gold_state.as_of(spark, tables.GOLD_AFFINITY, lake, d).collect(), expected_state(every, d))
            with delta_io.session_conf(spark, "spark.databricks.delta.retentionDurationCheck.enabled", "false"):
                delta_io.vacuum(spark, tables.GOLD_AFFINITY, lake, retention_hours=0)
        if kind != "rerun":
            land(day, n)
        caplog.clear()
        assert build_gold.main(["--run-date", day, "--lake", lake]) == 0, (kind, day)
        notes = [r.getMessage() for r in caplog.records if "again" in r.getMessage() or "migrating" in r.getMessage()]
        expected_note = {
            "migrated": "migrating gold.user_track_affinity to one incrementally kept state (once)",
            "new": None,
            "changed": "rerun of 2026-11-04: folding 2026-11-04 in again onto the state as of 2026-11-02",
            "backfill": "rerun of 2026-11-03: folding 2026-11-03, 2026-11-04 in again onto the state as of 2026-11-02",
            "rerun": "rerun of 2026-11-03: folding 2026-11-03, 2026-11-04 in again onto the state as of 2026-11-02",
            "vacuumed": "rerun of 2026-11-04: the state as of 2026-11-03 is no longer kept; recomputing it from silver",
        }[kind]
        assert (notes == []) if expected_note is None else (expected_note in " ".join(notes)), (kind, notes)
        folded.add(day)
        every = [dict(zip(COLUMNS, r, strict=True)) for day_rows in silver.values() for r in day_rows]
        assert_state(rows(tables.GOLD_AFFINITY, lake) or [], expected_state(every, max(folded)))
        popularity = rows(tables.GOLD_POPULARITY, lake) or []
        for d in sorted(folded):
            want = expected_popularity(expected_state(every, d))
            snapshot = [r for r in popularity if r["as_of_date"] == d]
            got = {
                r["track_key"]: (r["plays"], r["full_plays"], r["listeners"], r["popularity_rank"]) for r in snapshot
            }
            assert got == want, (kind, day, d)
    assert not old_docs.parent.exists()  # one site now: the earlier per-job sites are gone
    assert_state(
        gold_state.as_of(spark, tables.GOLD_AFFINITY, lake, "2026-11-04").collect(), expected_state(every, "2026-11-04")
    )
