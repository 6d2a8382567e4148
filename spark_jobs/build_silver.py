"""Bronze -> silver: typed, validated, deduplicated rows with stable integer keys.

Reads ``bronze.interactions`` and ``bronze.tracks`` (partition ``_run_date = <run_date>``), the rows of earlier
days of ``silver.interactions`` played on the day's play dates (a redelivery has the same event_id and played_at;
data skipping reads only those days' files), ``silver.tracks`` and the dimensions.
Writes ``silver.tracks`` (MERGE on track_id), ``silver.dim_track`` and ``silver.dim_user`` (insert-only
MERGE: an id keeps its key forever), ``silver.interactions`` and ``silver.quarantine`` (partition
``run_date``, replaceWhere) and ``ops.layer_counts``. A row that fails a rule is quarantined with the
rule's name; the job fails unless rows in = rows out + quarantined + duplicates.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import sys
from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from include.core import schemas, tables
from include.core.schemas import REASONS, TRACK_KEY, USER_KEY, raw_text
from include.lake import delta_io, jobs
from include.lake.frames import first_n, with_missing
from include.lake.spark import cached, fit_to_input

TRUE_VALUES = ("true", "1")
FALSE_VALUES = ("false", "0")
WHITESPACE = " \t\r\n"


def _text(name: str) -> Column:
    """The value without surrounding whitespace (CR included: CRLF files leave it on the last column);
    null when nothing is left."""
    trimmed = F.btrim(F.col(name), F.lit(WHITESPACE))
    return F.when(trimmed != "", trimmed)


def _number(name: str, kind: str) -> Column:
    return F.when(_text(name).rlike(schemas.NUMBER), _text(name).try_cast(kind))


def _bool(name: str) -> Column:
    value = F.lower(_text(name))
    return F.when(value.isin(*TRUE_VALUES), True).when(value.isin(*FALSE_VALUES), False)


def _lineage(columns: tuple[str, ...]) -> list[Column]:
    return [
        raw_text(columns).alias("_raw"),
        F.col(schemas.CORRUPT_RECORD),
        F.col(schemas.SOURCE_FILE),
        F.col(schemas.SOURCE_ROW),
    ]


def _plays() -> Column:
    """The row's play count: 1 when the file has no count, a whole number of at least 1, else null."""
    text = _text("plays")
    count = F.when(text.rlike("^[+]?[0-9]+$"), text.try_cast("long"))
    return F.when(text.isNull(), F.lit(1).cast("long")).when(count >= 1, count)


def type_interactions(bronze: DataFrame, known_track_ids: DataFrame) -> DataFrame:
    """Typed interaction columns (null where a value is missing or does not parse), the raw rating and play
    count text, ``known_track`` (the track is in the catalog) and lineage: what the row-level suite checks.
    Bronze partitions written before the optional ``plays`` column existed have one play per row."""
    known = known_track_ids.select(F.col("track_id").alias("_known")).distinct()
    bronze = with_missing(bronze, dict.fromkeys(schemas.OPTIONAL_INTERACTION_COLUMNS, "string"))
    typed = bronze.select(
        _text("event_id").alias("event_id"),
        _text("user_id").alias("user_id"),
        _text("track_id").alias("track_id"),
        _text("played_at").try_cast("timestamp").alias("played_at"),
        F.when(_text("ms_played").rlike("^[+-]?[0-9]+$"), _text("ms_played").try_cast("long")).alias("ms_played"),
        _bool("skipped").alias("skipped"),
        _bool("liked").alias("liked"),
        _text("rating").alias("rating_text"),
        _number("rating", "double").alias("rating"),
        _text("plays").alias("plays_text"),
        _plays().alias("plays"),
        *_lineage(schemas.ALL_INTERACTION_COLUMNS),
    )
    joined = typed.join(F.broadcast(known), typed["track_id"] == known["_known"], "left")
    return joined.withColumn("known_track", F.col("_known").isNotNull()).drop("_known")


def type_tracks(bronze: DataFrame) -> DataFrame:
    """Typed catalog columns plus the raw text of the optional numbers, and lineage."""
    unit = {c: _number(c, "double") for c in schemas.AUDIO_FEATURES_UNIT}
    return bronze.select(
        _text("track_id").alias("track_id"),
        *[_text(c).alias(c) for c in ("title", "artist", "album", "genre")],
        _number("release_year", "int").alias("release_year"),
        _number("duration_ms", "long").alias("duration_ms"),
        _number("tempo", "double").alias("tempo"),
        *[v.alias(c) for c, v in unit.items()],
        _number("loudness", "double").alias("loudness"),
        _text("release_year").alias("release_year_text"),
        _text("duration_ms").alias("duration_ms_text"),
        *_lineage(schemas.TRACK_COLUMNS),
    )


def quarantine(rejected: DataFrame, source: str, run_id: str, run_date: str) -> DataFrame:
    """Rows that broke a drop check: raw values, the checks' names, source file and row."""
    return rejected.select(
        F.lit(source).alias("source"),
        F.array_join(REASONS, ",").alias("reasons"),
        F.col("_raw").alias("raw"),
        F.col(schemas.SOURCE_FILE).alias("source_file"),
        F.col(schemas.SOURCE_ROW).alias("source_row"),
        F.lit(run_id).alias("run_id"),
        F.lit(run_date).alias("run_date"),
    )


def dedupe(rows: DataFrame, key: str, order: list[Column | str], earlier_keys: DataFrame | None = None) -> DataFrame:
    """One row per ``key`` (the first by ``order``), minus the rows ``earlier_keys`` has (matched on all of its
    columns)."""
    first = first_n(rows, key, order, 1)
    if earlier_keys is not None:
        first = first.join(earlier_keys.distinct(), earlier_keys.columns, "left_anti")
    return first


def played_on(days: Sequence[dt.date]) -> Column:
    """``played_at`` on one of ``days`` (UTC): one range per run of consecutive days, which Delta's data skipping
    prunes files with (each file's played_at minimum and maximum). The ranges are OR-ed as a balanced tree: a
    file of ratings over twenty years has thousands of days, and a chain that deep overflows the JVM's stack."""
    runs: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][1] == dt.timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    ranges = [
        (F.col("played_at") >= F.lit(dt.datetime.combine(first, dt.time())))
        & (F.col("played_at") < F.lit(dt.datetime.combine(last + dt.timedelta(days=1), dt.time())))
        for first, last in runs
    ]
    while len(ranges) > 1:
        ranges = [functools.reduce(operator.or_, ranges[i : i + 2]) for i in range(0, len(ranges), 2)]
    return ranges[0] if ranges else F.lit(False)


def earlier_copies(silver: DataFrame, run_date: str, days: Sequence[dt.date]) -> DataFrame:
    """The (event_id, played_at) of earlier days' silver rows that a row played on ``days`` could repeat. A
    redelivered event is the same event, with its own played_at, so only earlier rows played on those days can be
    copies: the read skips every file of other days, however old the lake."""
    return silver.where((F.col("run_date") < run_date) & played_on(days)).select("event_id", "played_at")


def new_keys(ids: DataFrame, dim: DataFrame, id_col: str, key_col: str, run_date: str) -> DataFrame:
    """Dimension rows for ids not yet in ``dim``: keys continue after the largest existing key."""
    offset = dim.agg(F.coalesce(F.max(key_col), F.lit(0)).alias("o"))
    fresh = ids.select(id_col).distinct().join(dim.select(id_col), id_col, "left_anti")
    numbered = fresh.withColumn("_n", F.row_number().over(Window.orderBy(id_col)))
    return numbered.crossJoin(offset).select(
        F.col(id_col),
        (F.col("o") + F.col("_n")).cast("int").alias(key_col),
        F.lit(run_date).alias("first_seen_date"),
    )


def keys_from_committed(
    spark: SparkSession, lake: str, dim: tables.Table, ids: DataFrame, id_col: str, key_col: str, run_date: str
) -> Callable[[], DataFrame]:
    """The new rows of ``dim`` for ``ids``, computed from its latest version each time it is called."""
    return lambda: new_keys(ids, delta_io.read_or_empty(spark, dim, lake), id_col, key_col, run_date)


def with_keys(rows: DataFrame, dim_user: DataFrame, dim_track: DataFrame, run_date: str) -> DataFrame:
    """Final silver interactions: typed rows joined to their integer keys, in the published schema."""
    joined = rows.join(dim_user.select("user_id", USER_KEY), "user_id").join(
        dim_track.select("track_id", TRACK_KEY), "track_id"
    )
    return joined.withColumn("run_date", F.lit(run_date)).select(*tables.SILVER_INTERACTIONS.columns)


def balance(
    ctx: jobs.JobContext, source: str, rows_in: int, rows_out: int, quarantined: int, duplicates: int
) -> dict[str, object]:
    """The accounting row for one source; fails the job when rows in != out + quarantined + duplicates."""
    if rows_in != rows_out + quarantined + duplicates:
        raise jobs.LandingError(
            f"{source}: accounting does not balance: {rows_in} rows in != {rows_out} out + {quarantined}"
            f" quarantined + {duplicates} duplicates"
        )
    ctx.log(f"{source}: {rows_in} rows in -> {rows_out} kept, {quarantined} quarantined, {duplicates} duplicates")
    return {
        "run_date": ctx.ds, "layer": "silver", "source": source, "rows_in": rows_in, "rows_out": rows_out,
        "quarantined": quarantined, "duplicates": duplicates, "run_id": ctx.run_id,
    }  # fmt: skip


def build(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from expectations import suites
    from include.quality import runner as quality

    lake, ds, severities = ctx.settings.lake, ctx.ds, ctx.settings.dq_severity

    fit_to_input(spark, delta_io.read_partition(spark, tables.BRONZE_INTERACTIONS, lake, ds).count(), ctx.settings)
    typed_tracks = cached(type_tracks(delta_io.read_partition(spark, tables.BRONZE_TRACKS, lake, ds)))
    tracks = quality.apply(typed_tracks, suites.silver_track_rows(severities))
    tracks_today = cached(
        dedupe(tracks.kept, "track_id", [F.col(schemas.SOURCE_FILE).desc(), "title"])
        .withColumn("run_date", F.lit(ds))
        .select(*tables.SILVER_TRACKS.columns)
    )
    t_out = tracks_today.count()
    results = tracks.results + quality.validate(tracks_today, suites.silver_tracks(severities))
    track_counts = balance(
        ctx, "tracks", tracks.rows, t_out, tracks.quarantined_rows, tracks.rows - tracks.quarantined_rows - t_out
    )

    known = delta_io.read_or_empty(spark, tables.SILVER_TRACKS, lake).select("track_id")
    bronze = delta_io.read_partition(spark, tables.BRONZE_INTERACTIONS, lake, ds)
    typed = cached(type_interactions(bronze, known.unionByName(tracks_today.select("track_id"))))
    events = quality.apply(typed, suites.silver_interaction_rows(ctx.run_date, severities))
    earlier = None
    if delta_io.exists(spark, tables.SILVER_INTERACTIONS, lake):
        days = [r[0] for r in events.kept.select(F.to_date("played_at")).distinct().collect() if r[0] is not None]
        earlier = earlier_copies(delta_io.read(spark, tables.SILVER_INTERACTIONS, lake), ds, days)
    order: list[Column | str] = ["played_at", schemas.SOURCE_FILE, schemas.SOURCE_ROW, "user_id", "track_id"]
    kept = cached(dedupe(events.kept, "event_id", order, earlier))

    dim_user = delta_io.read_or_empty(spark, tables.SILVER_DIM_USER, lake)
    dim_track = delta_io.read_or_empty(spark, tables.SILVER_DIM_TRACK, lake)
    user_rows = cached(new_keys(kept, dim_user, "user_id", USER_KEY, ds))
    track_rows = cached(new_keys(tracks_today, dim_track, "track_id", TRACK_KEY, ds))
    silver = cached(with_keys(kept, dim_user.unionByName(user_rows), dim_track.unionByName(track_rows), ds))
    out = silver.count()
    results += events.results + quality.validate(silver, suites.silver_interactions(severities))
    event_counts = balance(
        ctx,
        "interactions",
        events.rows,
        out,
        events.quarantined_rows,
        events.rows - events.quarantined_rows - kept.count(),
    )
    ctx.log(f"new keys: {user_rows.count()} users, {track_rows.count()} tracks")
    quality.record(spark, ctx, results)  # stops here, before any silver write, if a fail check failed

    changed = delta_io.merge(tracks_today, tables.SILVER_TRACKS, lake, ["track_id"], newer_than="run_date")
    ctx.log(f"catalog: {changed} new or changed tracks")
    # Keys come from the dimensions as committed: a writer of another day may have added ids (and keys) since
    # they were read above; the new rows are then numbered again after its keys.
    for dim, ids, id_col, key_col in (
        (tables.SILVER_DIM_TRACK, tracks_today, "track_id", TRACK_KEY),
        (tables.SILVER_DIM_USER, kept, "user_id", USER_KEY),
    ):
        delta_io.merge(
            keys_from_committed(spark, lake, dim, ids, id_col, key_col, ds), dim, lake, [id_col], update=False
        )
    committed = with_keys(
        kept,
        delta_io.read(spark, tables.SILVER_DIM_USER, lake),
        delta_io.read(spark, tables.SILVER_DIM_TRACK, lake),
        ds,
    )
    delta_io.overwrite_partition(committed, tables.SILVER_INTERACTIONS, lake, ds)
    rejected = quarantine(events.quarantined, "interactions", ctx.run_id, ds).unionByName(
        quarantine(tracks.quarantined, "tracks", ctx.run_id, ds)
    )
    delta_io.overwrite_partition(rejected, tables.SILVER_QUARANTINE, lake, ds)
    counts = delta_io.rows_frame(spark, tables.OPS_LAYER_COUNTS, [event_counts, track_counts])
    delta_io.overwrite_partition(counts, tables.OPS_LAYER_COUNTS, lake, ds, where="layer = 'silver'")


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("build_silver", __doc__ or "", build, argv)


if __name__ == "__main__":
    sys.exit(main())
