"""Declarative source mappings: CSV/TSV files of other shapes turned into the raw CSV contract.

Reads a mapping (JSON: a name shipped in ``include/lake/source_mappings/`` or a path) and the source file(s) it
describes; :func:`land` writes the day's landing folders (``<lake>/landing/{interactions,tracks}/date=D``)
in the contract, which the pipeline's bronze, silver and gold jobs then ingest like any other day.

Values are carried over as text, never parsed here: a value that does not parse reaches silver as it
was and is quarantined there with the rule it broke, so a converted file loses nothing silently.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from include.core import schemas, tables
from include.core.config import ConfigError
from include.lake.spark import cached

SHIPPED = Path(__file__).resolve().parent / "source_mappings"
PLAYED_AT_FORMATS = ("epoch_seconds", "timestamp")
# A catalog without audio features is allowed for sources that have none (MovieLens): these checks warn.
FEATURE_CHECKS = tuple(f"{c}_missing" for c in ("tempo", *schemas.AUDIO_FEATURES_UNIT, "loudness"))


FORMAT_KEYS = ("columns", "delimiter", "header", "encoding")


def _nest_format(data: Any) -> Any:
    """The JSON form keeps a file's format keys beside the mapping's own; the model nests them."""
    if not isinstance(data, Mapping) or "format" in data:
        return data
    return {
        **{k: v for k, v in data.items() if k not in FORMAT_KEYS},
        "format": {k: data[k] for k in FORMAT_KEYS if k in data},
    }


class FileFormat(BaseModel):
    """How a delimited file is read: its delimiter, header, encoding and column names in file order."""

    model_config = ConfigDict(frozen=True)

    columns: tuple[str, ...] = Field(min_length=1)
    delimiter: str = ","
    header: bool = True
    encoding: str = "UTF-8"

    def read(self, spark: SparkSession, path: str) -> DataFrame:
        """Every column as text; a line with too many or too few fields is kept (PERMISSIVE, nulls)."""
        schema = StructType([StructField(c, StringType(), True) for c in self.columns])
        return (
            spark.read.schema(schema)
            .option("header", self.header)
            .option("sep", self.delimiter)
            .option("encoding", self.encoding)
            .option("mode", "PERMISSIVE")
            .option("enforceSchema", True)
            .csv(path)
        )


class Catalog(BaseModel):
    """The item file beside the events file, and which of its columns give the catalog fields."""

    model_config = ConfigDict(frozen=True)

    file: str = Field(min_length=1)
    format: FileFormat
    track_id: str
    title: str | None = None
    genre: str | None = None
    genre_separator: str | None = None

    _nest = model_validator(mode="before")(_nest_format)


class SourceMapping(BaseModel):
    """One source shape: how to read it and which column feeds each contract column."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    format: FileFormat
    user_id: str
    track_id: str
    rating: str | None = None
    played_at: str | None = None
    played_at_format: Literal["epoch_seconds", "timestamp"] = "timestamp"
    plays: str | None = None  # pre-aggregated play counts: one row per (user, item) with its count
    positive_min_rating: float | None = None  # implicit: a lower rating is a skipped play
    catalog: Catalog | None = None
    description: str = ""
    audio_features: bool = False

    _nest = model_validator(mode="before")(_nest_format)

    @model_validator(mode="after")
    def _columns_exist(self) -> SourceMapping:
        """Every field that names a column names one of its file's columns."""
        for where, fields, columns in (
            (self.name, ("user_id", "track_id", "rating", "played_at", "plays"), self.format.columns),
            *(
                [(f"{self.name}.catalog", ("track_id", "title", "genre"), self.catalog.format.columns)]
                if self.catalog
                else []
            ),
        ):
            owner = self if where == self.name else self.catalog
            for key in fields:
                value = getattr(owner, key)
                if value is not None and value not in columns:
                    raise ValueError(f"{where}.{key}: must be one of the columns {', '.join(columns)}, got {value!r}")
        if self.rating is None and self.plays is None:
            raise ValueError(f"{self.name}: needs a rating column (explicit) or a plays column (pre-aggregated counts)")
        return self


def _mapping_error(exc: ValidationError, name: str) -> ConfigError:
    """The first problem as one line naming the field (``<mapping>.<field>``) and what it allows."""
    err = exc.errors()[0]
    loc = [str(part) for part in err["loc"] if part != "format"]
    where = ".".join([name or "mapping", *loc])
    kind, value = err["type"], err.get("input")
    if kind == "value_error":
        return ConfigError(str(err["ctx"]["error"]))
    if loc == ["name"] or (not loc and not name):
        return ConfigError("name: a source mapping needs a name")
    if loc[-1:] == ["columns"]:
        return ConfigError(f"{where}: must be a non-empty list of column names in file order")
    if loc[-1:] == ["file"]:
        return ConfigError(f"{where}: the catalog file's name, relative to the events file's folder")
    if kind == "literal_error":
        allowed = get_args(SourceMapping.model_fields[loc[-1]].annotation)
        return ConfigError(f"{where}: must be one of {', '.join(allowed)}, got {value!r}")
    return ConfigError(f"{where}: {err['msg'].lower()}, got {value!r}")


def parse(raw: Mapping[str, Any]) -> SourceMapping:
    """A mapping from its JSON form; every problem is a :class:`ConfigError` naming the field."""
    try:
        return SourceMapping.model_validate(raw)
    except ValidationError as exc:
        raise _mapping_error(exc, str(raw.get("name") or "")) from None


def shipped() -> list[str]:
    return sorted(p.stem for p in SHIPPED.glob("*.json"))


def load(source: str) -> SourceMapping:
    """A shipped mapping by name (``movielens``) or a mapping file by path."""
    path = Path(source) if source.endswith(".json") else SHIPPED / f"{source}.json"
    if not path.is_file():
        raise ConfigError(f"--source: must be one of {', '.join(shipped())} or a mapping .json file, got {source!r}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--source: {path} is not valid JSON: {exc}") from None
    return parse(raw)


def _text(column: str | None, default: str = "") -> Column:
    return F.coalesce(F.col(column), F.lit(default)) if column else F.lit(default)


def _played_at(mapping: SourceMapping, run_date: str) -> Column:
    if mapping.played_at is None:
        return F.lit(f"{run_date} 00:00:00")
    value = F.trim(F.col(mapping.played_at))
    if mapping.played_at_format == "epoch_seconds":
        as_time = F.date_format(F.timestamp_seconds(value.cast("long")), "yyyy-MM-dd HH:mm:ss")
        return F.when(value.rlike("^[0-9]+$"), as_time).otherwise(F.coalesce(value, F.lit("")))
    return F.coalesce(value, F.lit(""))


def interactions(raw: DataFrame, mapping: SourceMapping, run_date: str) -> DataFrame:
    """Contract interaction rows (all text), one per source row; with a ``plays`` column the rows carry the
    contract's optional ``plays`` count as its text (silver quarantines one that is not a whole number).

    ``event_id`` is the source name and the row's values, so reloading the same file yields the same ids.
    ``skipped`` marks a rating under ``positive_min_rating`` (not a positive for implicit ALS).
    """
    ids = [_text(c) for c in (mapping.user_id, mapping.track_id, mapping.played_at) if c]
    event_id = F.concat_ws(":", F.lit(mapping.name), *ids)
    rating = _text(mapping.rating)
    skipped = F.lit("false")
    if mapping.positive_min_rating is not None and mapping.rating:
        parsed = F.trim(F.col(mapping.rating)).try_cast("double")
        skipped = F.when(parsed < mapping.positive_min_rating, F.lit("true")).otherwise(F.lit("false"))
    counts = [_text(mapping.plays).alias("plays")] if mapping.plays else []
    return raw.select(
        event_id.alias("event_id"),
        _text(mapping.user_id).alias("user_id"),
        _text(mapping.track_id).alias("track_id"),
        _played_at(mapping, run_date).alias("played_at"),
        F.lit("0").alias("ms_played"),
        skipped.alias("skipped"),
        F.lit("false").alias("liked"),
        rating.alias("rating"),
        *counts,
    )


def catalog_rows(events: DataFrame, items: DataFrame | None, mapping: SourceMapping) -> DataFrame:
    """Contract track rows: the catalog file's items (title, first genre), or the ids the events name.

    Sources without audio features leave them empty; their ``*_missing`` checks are set to warn.
    """
    blank = {c: F.lit("") for c in schemas.TRACK_COLUMNS}
    cat = mapping.catalog
    if items is None or cat is None:
        base = events.select(F.col("track_id")).distinct()
        chosen = {**blank, "track_id": F.col("track_id")}
        return base.select(*[chosen[c].alias(c) for c in schemas.TRACK_COLUMNS])
    genre = _text(cat.genre)
    if cat.genre and cat.genre_separator:
        genre = F.split(genre, _regex_literal(cat.genre_separator)).getItem(0)
    chosen = {"track_id": _text(cat.track_id), "title": _text(cat.title), "genre": genre}
    return items.select(*[chosen.get(c, blank[c]).alias(c) for c in schemas.TRACK_COLUMNS])


def _regex_literal(text: str) -> str:
    return "".join("\\" + ch if not ch.isalnum() else ch for ch in text)


def _write(df: DataFrame, folder: str) -> None:
    """One CSV file with the contract's header, quoted as the bronze reader expects (RFC 4180)."""
    df.coalesce(1).write.mode("overwrite").option("header", True).option("escape", '"').option("emptyValue", "").csv(
        folder
    )


def _readable(path: str) -> bool:
    """A local file that exists, or a remote URI (which only Spark can check)."""
    return "://" in path or Path(path).is_file()


def land(spark: SparkSession, mapping: SourceMapping, path: str, lake: str, run_date: str) -> dict[str, int]:
    """Write one landing day from the source file at ``path``; returns rows written per landing source."""
    day = dt.date.fromisoformat(run_date)
    if not _readable(path):
        raise ConfigError(f"--path: no such file: {path}")
    raw = mapping.format.read(spark, path)
    events = cached(interactions(raw, mapping, run_date))
    items = None
    if mapping.catalog is not None:
        item_path = str(Path(path).parent / mapping.catalog.file)
        if _readable(item_path):
            items = mapping.catalog.format.read(spark, item_path)
    catalog = cached(catalog_rows(events, items, mapping))
    _write(events, tables.landing_dir(lake, "interactions", day))
    _write(catalog, tables.landing_dir(lake, "tracks", day))
    counts = {"interactions": events.count(), "tracks": catalog.count()}
    events.unpersist()
    catalog.unpersist()
    return counts
