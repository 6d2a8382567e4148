"""Bronze -> silver: typed, validated, deduplicated rows with stable integer keys.

Reads ``bronze.interactions`` and ``bronze.tracks`` (partition ``_run_date = <run_date>``), the earlier
partitions of ``silver.interactions`` (for cross-day duplicates), ``silver.tracks`` and the dimensions.
Writes ``silver.tracks`` (MERGE on track_id), ``silver.dim_track`` and ``silver.dim_user`` (insert-only
MERGE: an id keeps its key forever), ``silver.interactions`` and ``silver.quarantine`` (partition
``run_date``, replaceWhere) and ``ops.layer_counts``. A row that fails a rule is quarantined with the
rule's name; the job fails unless rows in = rows out + quarantined + duplicates.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from include import delta_io, jobs, schemas, tables

REASONS = "_reasons"
TRUE_VALUES = ("true", "1")
FALSE_VALUES = ("false", "0")


WHITESPACE = " \t\r\n"


def _text(name: str) -> Column:
    """The value without surrounding whitespace, CR included (CRLF files leave it on the last column)."""
    return F.btrim(F.col(name), F.lit(WHITESPACE))


def _blank(name: str) -> Column:
    return F.col(name).isNull() | (_text(name) == "")


def _number(name: str, kind: str) -> Column:
    return F.when(~_blank(name), _text(name).try_cast(kind))


def _bool(name: str) -> Column:
    value = F.lower(_text(name))
    return F.when(value.isin(*TRUE_VALUES), True).when(value.isin(*FALSE_VALUES), False)


def _reasons(rules: list[tuple[str, Column]]) -> Column:
    """The names of the rules a row breaks (an empty array when it breaks none)."""
    corrupt = F.col(schemas.CORRUPT_RECORD).isNotNull()
    named = [F.when(corrupt, F.lit("malformed_row"))] + [F.when(~corrupt & cond, F.lit(n)) for n, cond in rules]
    return F.array_compact(F.array(*named))


def type_interactions(bronze: DataFrame) -> DataFrame:
    """Typed interaction columns plus ``_reasons``, the rules each row breaks."""
    played_at = _text("played_at").try_cast("timestamp")
    ms_played = _number("ms_played", "long")
    rating = _number("rating", "double")
    rules = [
        ("event_id_missing", _blank("event_id")),
        ("user_id_missing", _blank("user_id")),
        ("track_id_missing", _blank("track_id")),
        ("played_at_invalid", played_at.isNull()),
        ("ms_played_invalid", ms_played.isNull() | (ms_played < 0)),
        ("skipped_invalid", _bool("skipped").isNull()),
        ("liked_invalid", _bool("liked").isNull()),
        ("rating_out_of_range", ~_blank("rating") & (rating.isNull() | (rating < 0.5) | (rating > 5.0))),
    ]
    return bronze.select(
        _text("event_id").alias("event_id"),
        _text("user_id").alias("user_id"),
        _text("track_id").alias("track_id"),
        played_at.alias("played_at"),
        ms_played.alias("ms_played"),
        _bool("skipped").alias("skipped"),
        _bool("liked").alias("liked"),
        rating.alias("rating"),
        _reasons(rules).alias(REASONS),
        F.to_json(F.struct(*schemas.INTERACTION_COLUMNS, schemas.CORRUPT_RECORD)).alias("_raw"),
        F.col(schemas.SOURCE_FILE),
    )


def type_tracks(bronze: DataFrame) -> DataFrame:
    """Typed catalog columns plus ``_reasons`` (audio features out of range, tempo not positive, ...)."""
    unit = {c: _number(c, "double") for c in schemas.AUDIO_FEATURES_UNIT}
    tempo = _number("tempo", "double")
    loudness = _number("loudness", "double")
    rules = [
        ("track_id_missing", _blank("track_id")),
        ("tempo_invalid", tempo.isNull() | (tempo <= 0)),
        ("loudness_out_of_range", loudness.isNull() | (loudness < -60) | (loudness > 5)),
        ("release_year_invalid", ~_blank("release_year") & _number("release_year", "int").isNull()),
        ("duration_ms_invalid", ~_blank("duration_ms") & _number("duration_ms", "long").isNull()),
        *[(f"{c}_out_of_range", v.isNull() | (v < 0) | (v > 1)) for c, v in unit.items()],
    ]
    return bronze.select(
        _text("track_id").alias("track_id"),
        *[F.col(c).alias(c) for c in ("title", "artist", "album", "genre")],
        _number("release_year", "int").alias("release_year"),
        _number("duration_ms", "long").alias("duration_ms"),
        tempo.alias("tempo"),
        *[v.alias(c) for c, v in unit.items()],
        loudness.alias("loudness"),
        _reasons(rules).alias(REASONS),
        F.to_json(F.struct(*schemas.TRACK_COLUMNS, schemas.CORRUPT_RECORD)).alias("_raw"),
        F.col(schemas.SOURCE_FILE),
    )


def flag_unknown_tracks(typed: DataFrame, known_track_ids: DataFrame) -> DataFrame:
    """Add ``unknown_track`` to rows whose track_id is not in the catalog."""
    known = known_track_ids.select(F.col("track_id").alias("_known")).distinct()
    joined = typed.join(known, typed["track_id"] == known["_known"], "left")
    unknown = (F.size(REASONS) == 0) & F.col("_known").isNull()
    return joined.withColumn(
        REASONS, F.when(unknown, F.array_append(F.col(REASONS), F.lit("unknown_track"))).otherwise(F.col(REASONS))
    ).drop("_known")


def quarantine(typed: DataFrame, source: str, run_id: str, run_date: str) -> DataFrame:
    """Rows that broke a rule, with their raw values, rule names and source file."""
    return typed.where(F.size(REASONS) > 0).select(
        F.lit(source).alias("source"),
        F.array_join(REASONS, ",").alias("reasons"),
        F.col("_raw").alias("raw"),
        F.col(schemas.SOURCE_FILE).alias("source_file"),
        F.lit(run_id).alias("run_id"),
        F.lit(run_date).alias("run_date"),
    )


def valid(typed: DataFrame) -> DataFrame:
    return typed.where(F.size(REASONS) == 0).drop(REASONS, "_raw")


def dedupe(rows: DataFrame, key: str, order: list[Column | str], earlier_keys: DataFrame | None = None) -> DataFrame:
    """One row per ``key`` (the first by ``order``), minus keys already seen in ``earlier_keys``."""
    window = Window.partitionBy(key).orderBy(*order)
    first = rows.withColumn("_n", F.row_number().over(window)).where("_n = 1").drop("_n")
    if earlier_keys is not None:
        first = first.join(earlier_keys.select(key).distinct(), key, "left_anti")
    return first


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


def with_keys(rows: DataFrame, dim_user: DataFrame, dim_track: DataFrame, run_date: str) -> DataFrame:
    """Final silver interactions: typed rows joined to their integer keys, in the published schema."""
    joined = rows.join(dim_user.select("user_id", "user_key"), "user_id").join(
        dim_track.select("track_id", "track_key"), "track_id"
    )
    return joined.withColumn("run_date", F.lit(run_date)).select(*schemas.SILVER_INTERACTIONS.fieldNames())


USER_DIM_SCHEMA = "user_id string, user_key int, first_seen_date string"
TRACK_DIM_SCHEMA = "track_id string, track_key int, first_seen_date string"
COUNTS_SCHEMA = (
    "run_date string, layer string, source string, rows_in long, rows_out long, quarantined long,"
    " duplicates long, run_id string"
)


def split_counts(typed: DataFrame) -> tuple[int, int]:
    """(rows, rows breaking a rule) in one pass."""
    row = typed.agg(F.count("*"), F.count(F.when(F.size(REASONS) > 0, 1))).first()
    assert row is not None
    return int(row[0]), int(row[1])


def balance(ctx: jobs.JobContext, source: str, rows_in: int, rows_out: int, quarantined: int, duplicates: int) -> tuple:
    """The accounting row for one source; fails the job when rows in != out + quarantined + duplicates."""
    if rows_in != rows_out + quarantined + duplicates:
        raise jobs.LandingError(
            f"{source}: accounting does not balance: {rows_in} rows in != {rows_out} out + {quarantined}"
            f" quarantined + {duplicates} duplicates"
        )
    ctx.log(f"{source}: {rows_in} rows in -> {rows_out} kept, {quarantined} quarantined, {duplicates} duplicates")
    return (ctx.ds, "silver", source, rows_in, rows_out, quarantined, duplicates, ctx.run_id)


def build(spark: SparkSession, ctx: jobs.JobContext) -> None:
    from expectations import suites
    from include.quality import gate

    lake, ds = ctx.settings.lake, ctx.ds

    typed_tracks = type_tracks(delta_io.read_partition(spark, tables.BRONZE_TRACKS, lake, ds)).cache()
    tracks_today = (
        dedupe(valid(typed_tracks), "track_id", [F.col(schemas.SOURCE_FILE).desc(), "title"])
        .withColumn("run_date", F.lit(ds))
        .select(*schemas.SILVER_TRACKS.fieldNames())
        .cache()
    )
    gate(tracks_today, suites.silver_tracks())
    tracks_q = quarantine(typed_tracks, "tracks", ctx.run_id, ds)
    t_in, t_bad = split_counts(typed_tracks)
    t_out = tracks_today.count()
    track_counts = balance(ctx, "tracks", t_in, t_out, t_bad, t_in - t_bad - t_out)

    known = delta_io.read_or_empty(spark, tables.SILVER_TRACKS, lake, schemas.SILVER_TRACKS).select("track_id")
    typed = flag_unknown_tracks(
        type_interactions(delta_io.read_partition(spark, tables.BRONZE_INTERACTIONS, lake, ds)),
        known.unionByName(tracks_today.select("track_id")),
    ).cache()
    earlier = None
    if delta_io.exists(spark, tables.SILVER_INTERACTIONS, lake):
        earlier = delta_io.read(spark, tables.SILVER_INTERACTIONS, lake).where(F.col("run_date") < ds)
    kept = dedupe(valid(typed), "event_id", ["played_at", schemas.SOURCE_FILE, "user_id", "track_id"], earlier).cache()

    dim_user = delta_io.read_or_empty(spark, tables.SILVER_DIM_USER, lake, USER_DIM_SCHEMA)
    dim_track = delta_io.read_or_empty(spark, tables.SILVER_DIM_TRACK, lake, TRACK_DIM_SCHEMA)
    user_rows = new_keys(kept, dim_user, "user_id", "user_key", ds).cache()
    track_rows = new_keys(tracks_today, dim_track, "track_id", "track_key", ds).cache()
    silver = with_keys(kept, dim_user.unionByName(user_rows), dim_track.unionByName(track_rows), ds).cache()
    gate(silver, suites.silver_interactions())
    events_q = quarantine(typed, "interactions", ctx.run_id, ds)
    e_in, e_bad = split_counts(typed)
    event_counts = balance(ctx, "interactions", e_in, silver.count(), e_bad, e_in - e_bad - kept.count())
    ctx.log(f"new keys: {user_rows.count()} users, {track_rows.count()} tracks")

    changed = delta_io.merge(tracks_today, tables.SILVER_TRACKS, lake, ["track_id"], newer_than="run_date")
    ctx.log(f"catalog: {changed} new or changed tracks")
    delta_io.merge(track_rows, tables.SILVER_DIM_TRACK, lake, ["track_id"], update=False)
    delta_io.merge(user_rows, tables.SILVER_DIM_USER, lake, ["user_id"], update=False)
    delta_io.overwrite_partition(silver, tables.SILVER_INTERACTIONS, lake, ds)
    delta_io.overwrite_partition(events_q.unionByName(tracks_q), tables.SILVER_QUARANTINE, lake, ds)
    counts = spark.createDataFrame([event_counts, track_counts], COUNTS_SCHEMA)
    delta_io.overwrite_partition(counts, tables.OPS_LAYER_COUNTS, lake, ds, where="layer = 'silver'")


def main(argv: Sequence[str] | None = None) -> int:
    return jobs.main("build_silver", __doc__ or "", build, argv)


if __name__ == "__main__":
    sys.exit(main())
