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


def current(spark, lake: str) -> list:
    """``gold.user_track_affinity`` as SQL reads it now (the view over the folded state and silver)."""
    views = gold_state.views(spark, lake, ALPHA)
    assert delta_io.register_tables(spark, lake, only=[tables.GOLD_AFFINITY], views=views) == [
        tables.GOLD_AFFINITY.sql_name
    ]
    return spark.table(tables.GOLD_AFFINITY.sql_name).collect()


def plan(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """After the migration: ``count`` random steps (a new day, sometimes after a gap; a rerun of a passed day
    with the same or with changed silver; a backfill of a day a gap left), then a rerun of the newest folded day
    once ``VACUUM`` removed every earlier version."""
    passed, steps = ["2026-11-02"], [("migrated", "2026-11-02")]
    for _ in range(count):
        gaps = [d for d in _days("2026-11-02", max(passed)) if d not in passed]
        kind = rng.choice(["new", "new", "new", "changed", "rerun", *(["backfill"] * 2 if gaps else [])])
        if kind == "new":
            day = _days(max(passed), 3)[rng.choice((1, 2))]
        else:
            day = rng.choice(gaps if kind == "backfill" else passed)
        passed.append(day)
        steps.append((kind, day))
    return [*steps, ("vacuumed", "")]


def _days(first: str, count: int | str) -> list[str]:
    start = dt.date.fromisoformat(first)
    n = count if isinstance(count, int) else (dt.date.fromisoformat(count) - start).days + 1
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(n)]


def test_random_days_reruns_and_backfills_keep_gold_equal_to_a_full_recomputation(spark, tmp_path, caplog, monkeypatch):
    """From a lake an earlier version wrote (affinity snapshots per day, a Data Docs site per job): its migration
    (once, said in one line), then a random sequence of new days, gaps, reruns of the same or changed silver and
    out-of-order backfills, with the pending days folded into the state after every second day (so folds, and
    rewinds of folded days by time travel, happen often), and last a rerun whose folded state to rewind to VACUUM
    removed (recomputed from silver). After each step the affinity as SQL reads it, the state as of every passed
    day and every popularity snapshot equal the full recomputation."""
    lake = str(tmp_path / "lake")
    rng = random.Random(20261207)
    monkeypatch.setenv("SETLIST_AFFINITY_FOLD_DAYS", "1")
    caplog.set_level("INFO", logger="include.lake.jobs")
    for dim, name, count in ((tables.SILVER_DIM_USER, "u", USERS), (tables.SILVER_DIM_TRACK, "t", TRACKS)):
        keys = [(f"{name}{k}", k, "2026-11-01") for k in range(1, count + 1)]
        delta_io.merge(spark.createDataFrame(keys, dim.schema), dim, lake, [dim.columns[0]])
    silver: dict[str, list[tuple]] = {}
    passed: set[str] = set()
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

    steps, said = plan(random.Random(11), 8), []  # a seed whose sequence has every kind of step
    kinds = {kind for kind, _ in steps}
    assert kinds == {"migrated", "new", "changed", "rerun", "backfill", "vacuumed"}, steps  # the seed covers all
    for n, (kind, day) in enumerate(steps):
        if kind == "vacuumed":
            day = gold_state.folded(spark, lake)[-1].day
            with delta_io.session_conf(spark, "spark.databricks.delta.retentionDurationCheck.enabled", "false"):
                delta_io.vacuum(spark, tables.GOLD_AFFINITY, lake, retention_hours=0)
        if kind not in ("rerun", "vacuumed"):
            land(day, n)
        caplog.clear()
        assert build_gold.main(["--run-date", day, "--lake", lake]) == 0, (kind, day)
        notes = " ".join(r.getMessage() for r in caplog.records)
        said.append(notes)
        if kind == "migrated":
            assert "migrating gold.user_track_affinity to one folded state (once)" in notes
        if kind == "vacuumed":
            assert f"rerun of {day}: no folded state of gold.user_track_affinity before {day} is kept" in notes
        passed.add(day)
        every = [dict(zip(COLUMNS, r, strict=True)) for day_rows in silver.values() for r in day_rows]
        assert_state(current(spark, lake), expected_state(every, max(passed)))
        popularity = rows(tables.GOLD_POPULARITY, lake) or []
        for d in sorted(passed):
            want = expected_state(every, d)
            if d == day or n == len(steps) - 2:  # the day run, and every day once before VACUUM
                assert_state(gold_state.as_of(spark, lake, d, ALPHA).collect(), want)
            snapshot = [r for r in popularity if r["as_of_date"] == d]
            got = {
                r["track_key"]: (r["plays"], r["full_plays"], r["listeners"], r["popularity_rank"]) for r in snapshot
            }
            assert got == expected_popularity(want), (kind, day, d)
    assert any("days (" in n and "folded" in n for n in said)  # pending days were folded in ...
    assert any("rewound to its state folded as of" in n for n in said)  # ... and a rerun rewound a fold by time travel
    assert not old_docs.parent.exists()  # one site now: the earlier per-job sites are gone


def test_a_first_day_without_rows_folds_an_empty_state_and_the_next_day_builds_on_it(spark, tmp_path):
    """A lake's first day can hold no rows (``missing_day=empty``, or every row quarantined)."""
    lake = str(tmp_path / "lake")
    for table in (tables.SILVER_INTERACTIONS, tables.SILVER_QUARANTINE):
        delta_io.overwrite_partition(spark.createDataFrame([], table.schema), table, lake, "2026-11-01")
    for dim, name, count in ((tables.SILVER_DIM_USER, "u", USERS), (tables.SILVER_DIM_TRACK, "t", TRACKS)):
        keys = [(f"{name}{k}", k, "2026-11-01") for k in range(1, count + 1)]
        delta_io.merge(spark.createDataFrame(keys, dim.schema), dim, lake, [dim.columns[0]])
    assert build_gold.main(["--run-date", "2026-11-01", "--lake", lake]) == 0
    assert [c.day for c in gold_state.folded(spark, lake)] == ["2026-11-01"]
    assert current(spark, lake) == []
    [metrics] = rows(tables.GOLD_DAILY_METRICS, lake) or [None]
    assert metrics is not None and metrics["events"] == 0

    rng = random.Random(3)
    second = silver_rows(rng, "2026-11-02", 1)
    assert second
    for table, day_rows in ((tables.SILVER_INTERACTIONS, second), (tables.SILVER_QUARANTINE, [])):
        delta_io.overwrite_partition(spark.createDataFrame(day_rows, table.schema), table, lake, "2026-11-02")
    assert build_gold.main(["--run-date", "2026-11-02", "--lake", lake]) == 0
    want = expected_state([dict(zip(COLUMNS, r, strict=True)) for r in second], "2026-11-02")
    assert_state(gold_state.as_of(spark, lake, "2026-11-02", ALPHA).collect(), want)
    assert_state(current(spark, lake), want)
