"""Synthetic sample data that follows the raw CSV contract and carries a learnable signal.

Writes ``<lake>/landing/tracks/date=D/tracks.csv`` and ``<lake>/landing/interactions/date=D/part-NNNNN.csv``
for each day, then each folder's completeness marker (``_SUCCESS``, a manifest of its files and rows) last;
reads nothing. Deterministic for a seed. Events are written in chunks, so tens of millions
of events never sit in memory at once.

The model behind the data: each genre has a centre in audio-feature space; each track belongs to one
genre, sits near its centre and has a long-tailed (Zipf) popularity; each user likes a few genres and
has a preferred energy and danceability. A play picks a genre from the user's mix, a handful of
candidates by popularity, and the candidate closest to the user's taste. Ratings and likes follow
the same affinity, so collaborative filtering has something real to learn.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from include.core import schemas
from include.core.config import ConfigError

log = logging.getLogger(__name__)

GENRES = (
    "rock",
    "pop",
    "jazz",
    "hip-hop",
    "electronic",
    "classical",
    "folk",
    "metal",
    "soul",
    "reggae",
    "latin",
    "ambient",
)
_SYLLABLES = ("la", "mo", "ri", "ka", "zen", "dor", "vi", "sol", "na", "tem", "quo", "bel", "ro", "shi", "an")
CHUNK_EVENTS = 200_000
ROWS_PER_FILE = 1_000_000
CANDIDATES = 8


@dataclass(frozen=True)
class GenerateSpec:
    lake: str
    start: dt.date
    days: int = 3
    users: int = 500
    tracks: int = 2_000
    events_per_day: int = 20_000
    seed: int = 42
    rating_rate: float = 0.25
    duplicate_rate: float = 0.002
    marker: str = "_SUCCESS"  # written last in each folder: the day is complete (settings.landing_marker)

    def __post_init__(self) -> None:
        for field, low in (("days", 1), ("users", 1), ("tracks", len(GENRES)), ("events_per_day", 1), ("seed", 0)):
            if getattr(self, field) < low:
                raise ConfigError(f"{field}: must be at least {low}, got {getattr(self, field)}")
        if "://" in self.lake:
            raise ConfigError(f"lake: generate writes to a local folder, got {self.lake!r}")


@dataclass(frozen=True)
class World:
    track_genre: np.ndarray  # (T,) genre index
    track_features: np.ndarray  # (T, 7) unit-range audio features
    track_pop: np.ndarray  # (T,) popularity weight
    user_genres: np.ndarray  # (U, G) genre mix
    user_taste: np.ndarray  # (U, 7) preferred feature values
    user_activity: np.ndarray  # (U,) share of events


def _name(rng: np.random.Generator, words: int) -> str:
    return " ".join("".join(rng.choice(_SYLLABLES, size=rng.integers(2, 4))).capitalize() for _ in range(words))


def build_world(spec: GenerateSpec) -> World:
    rng = np.random.default_rng(spec.seed)
    g = len(GENRES)
    centres = rng.uniform(0.1, 0.9, size=(g, len(schemas.AUDIO_FEATURES_UNIT)))
    genre_share = rng.dirichlet(np.full(g, 2.0))
    track_genre = rng.choice(g, size=spec.tracks, p=genre_share)
    features = np.clip(centres[track_genre] + rng.normal(0, 0.08, size=(spec.tracks, centres.shape[1])), 0, 1)
    # Zipf-like long tail over a random order of tracks.
    ranks = rng.permutation(spec.tracks) + 1
    pop = 1.0 / ranks**1.05
    user_genres = rng.dirichlet(np.full(g, 0.25), size=spec.users)
    user_taste = np.clip(
        centres[user_genres.argmax(axis=1)] + rng.normal(0, 0.1, size=(spec.users, centres.shape[1])), 0, 1
    )
    activity = rng.lognormal(0, 1.0, size=spec.users)
    return World(track_genre, features, pop, user_genres, user_taste, activity / activity.sum())


def track_rows(spec: GenerateSpec, world: World) -> list[list[object]]:
    rng = np.random.default_rng(spec.seed + 1)
    artists = [_name(rng, 2) for _ in range(max(1, spec.tracks // 8))]
    rows: list[list[object]] = []
    for t in range(spec.tracks):
        title = _name(rng, int(rng.integers(1, 4)))
        if rng.random() < 0.05:
            title = f"{title}, Part {int(rng.integers(1, 4))}"  # a quoted comma, as real catalogs have
        f = world.track_features[t]
        rows.append(
            [
                track_id(t),
                title,
                artists[int(rng.integers(len(artists)))],
                _name(rng, 2),
                GENRES[int(world.track_genre[t])],
                int(rng.integers(1960, 2027)),
                int(rng.integers(90_000, 420_000)),
                round(max(40.0, float(60 + 120 * f[0] + rng.normal(0, 8))), 2),
                *[round(float(x), 4) for x in f],
                round(float(-30 + 28 * f[0] + rng.normal(0, 2)), 2),
            ]
        )
    return rows


def track_id(index: int) -> str:
    return f"trk_{index:07d}"


def user_id(index: int) -> str:
    return f"user_{index:06d}"


def _genre_tables(world: World) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per genre: its track indices and their cumulative popularity, for inverse-CDF sampling."""
    out = []
    for genre in range(world.user_genres.shape[1]):
        idx = np.flatnonzero(world.track_genre == genre)
        if idx.size == 0:
            idx = np.arange(world.track_genre.size)
        cdf = np.cumsum(world.track_pop[idx])
        out.append((idx, cdf / cdf[-1]))
    return out


def _chunk(
    rng: np.random.Generator,
    world: World,
    tables: list[tuple[np.ndarray, np.ndarray]],
    n: int,
    durations: np.ndarray,
    duplicate_rate: float,
    rating_rate: float,
) -> dict[str, np.ndarray]:
    users = rng.choice(world.user_activity.size, size=n, p=world.user_activity)
    cum = np.cumsum(world.user_genres[users], axis=1)
    genres = (rng.random((n, 1)) > cum).sum(axis=1).clip(max=len(tables) - 1)
    tracks = np.empty(n, dtype=np.int64)
    for genre, (idx, cdf) in enumerate(tables):
        rows = np.flatnonzero(genres == genre)
        if rows.size == 0:
            continue
        cand = idx[np.searchsorted(cdf, rng.random((rows.size, CANDIDATES)))]
        dist = np.linalg.norm(world.track_features[cand] - world.user_taste[users[rows], None, :], axis=2)
        gumbel = -np.log(-np.log(rng.random(dist.shape)))
        tracks[rows] = cand[np.arange(rows.size), np.argmax(-6.0 * dist + gumbel, axis=1)]
    dist = np.linalg.norm(world.track_features[tracks] - world.user_taste[users], axis=1)
    affinity = np.exp(-3.0 * dist)  # in (0, 1]: 1 means the track is exactly the user's taste
    fraction = np.clip(rng.beta(1 + 4 * affinity, 1.5), 0.01, 1.0)
    skipped = fraction < 0.3
    liked = rng.random(n) < 0.5 * affinity**3
    rated = rng.random(n) < rating_rate
    raw = 1.0 + 4.0 * affinity + rng.normal(0, 0.45, n)
    rating = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    return {
        "users": users,
        "tracks": tracks,
        "ms_played": (durations[tracks] * fraction).astype(np.int64),
        "skipped": skipped,
        "liked": liked,
        "rated": rated,
        "rating": rating,
        "seconds": rng.integers(0, 86_400, size=n),
        "duplicate": rng.random(n) < duplicate_rate,
    }


def _write_csv(path: Path, header: tuple[str, ...], rows: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)  # a reader never sees a half-written landing file


def write_marker(folder: Path, marker: str, files: dict[str, int]) -> None:
    """The folder's completeness marker, written last: a manifest of its files and their rows."""
    if not marker:
        return
    tmp = folder / f".{marker}.tmp"
    tmp.write_text(json.dumps({"files": files}, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, folder / marker)


class _PartWriter:
    """Writes rows to ``part-NNNNN.csv`` files of about ROWS_PER_FILE rows, each renamed into place when full."""

    def __init__(self, folder: Path, header: tuple[str, ...]) -> None:
        self.folder, self.header = folder, header
        self.part, self.rows_in_part = 0, 0
        self.fh: Any = None
        self.rows: dict[str, int] = {}  # file name -> rows, for the manifest

    def __enter__(self) -> _PartWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def _target(self) -> Path:
        return self.folder / f"part-{self.part:05d}.csv"

    def _close_part(self) -> None:
        if self.fh is not None:
            self.fh.close()
            os.replace(self._target().with_suffix(".csv.tmp"), self._target())
            self.rows[self._target().name] = self.rows_in_part
            self.fh, self.part, self.rows_in_part = None, self.part + 1, 0

    def write(self, rows: list[list[object]]) -> None:
        if self.fh is None:
            self.fh = open(self._target().with_suffix(".csv.tmp"), "w", newline="", encoding="utf-8")  # noqa: SIM115
            self.writer = csv.writer(self.fh, lineterminator="\n")
            self.writer.writerow(self.header)
        self.writer.writerows(rows)
        self.rows_in_part += len(rows)
        if self.rows_in_part >= ROWS_PER_FILE:
            self._close_part()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None and self.fh is not None:
            self.fh.close()
            self._target().with_suffix(".csv.tmp").unlink()
            self.fh = None
        self._close_part()


def generate(spec: GenerateSpec) -> dict[str, int]:
    """Write the catalog and every day's events; returns counts written."""
    world = build_world(spec)
    catalog = track_rows(spec, world)
    durations = np.array([row[6] for row in catalog], dtype=np.int64)
    tables = _genre_tables(world)
    lake = Path(spec.lake)
    total = 0
    for day in range(spec.days):
        date = spec.start + dt.timedelta(days=day)
        ds = date.isoformat()
        tracks_dir = lake / "landing" / "tracks" / f"date={ds}"
        out_dir = lake / "landing" / "interactions" / f"date={ds}"
        for folder in (tracks_dir, out_dir):  # not complete again until its new marker is written, last
            if spec.marker:
                (folder / spec.marker).unlink(missing_ok=True)
        _write_csv(tracks_dir / "tracks.csv", schemas.TRACK_COLUMNS, catalog)
        write_marker(tracks_dir, spec.marker, {"tracks.csv": len(catalog)})
        rng = np.random.default_rng([spec.seed, day])
        for stale in out_dir.glob("part-*.csv"):
            stale.unlink()  # a rerun with other sizes must not leave an earlier run's files behind
        written, seq = 0, 0
        with _PartWriter(out_dir, schemas.INTERACTION_COLUMNS) as parts:
            while written < spec.events_per_day:
                n = min(CHUNK_EVENTS, spec.events_per_day - written)
                c = _chunk(rng, world, tables, n, durations, spec.duplicate_rate, spec.rating_rate)
                base = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)
                rows = []
                for i in range(n):
                    seq += 1
                    ts = (base + dt.timedelta(seconds=int(c["seconds"][i]))).strftime("%Y-%m-%dT%H:%M:%SZ")
                    row = [
                        f"ev_{ds.replace('-', '')}_{seq:09d}",
                        user_id(int(c["users"][i])),
                        track_id(int(c["tracks"][i])),
                        ts,
                        int(c["ms_played"][i]),
                        "true" if c["skipped"][i] else "false",
                        "true" if c["liked"][i] else "false",
                        f"{c['rating'][i]:.1f}" if c["rated"][i] else "",
                    ]
                    rows.append(row)
                    if c["duplicate"][i]:
                        rows.append(row)  # delivered twice, as at-least-once pipelines do
                parts.write(rows)
                written += n
        write_marker(out_dir, spec.marker, parts.rows)
        total += written
        log.info("generated %s: %d events, %d tracks -> %s", ds, written, len(catalog), out_dir)
    return {"days": spec.days, "events": total, "tracks": len(catalog), "users": spec.users}


PLAY_COUNT_FILE, ARTIST_FILE = "plays.tsv", "artists.tsv"
MAX_PLAY_COUNT = 500_000
COUNT_LOG_MEAN, COUNT_LOG_TASTE, COUNT_LOG_SD = 2.5, 8.0, 1.0


@dataclass(frozen=True)
class PlayCountSpec:
    """A pre-aggregated play-count source (the shape of Last.fm's 360K dump): ``rows`` (user, artist, count)
    lines in ``<out>/plays.tsv`` and the artists in ``<out>/artists.tsv``, both tab-separated, no header."""

    out: str
    rows: int = 100_000
    users: int = 1_000
    artists: int = 5_000
    seed: int = 42

    def __post_init__(self) -> None:
        for field, low in (("rows", 1), ("users", 1), ("artists", len(GENRES)), ("seed", 0)):
            if getattr(self, field) < low:
                raise ConfigError(f"{field}: must be at least {low}, got {getattr(self, field)}")
        if self.rows > self.users * self.artists // 2:
            raise ConfigError(
                f"rows: at most half of users x artists ({self.users * self.artists // 2}), got {self.rows}"
            )


def generate_play_counts(spec: PlayCountSpec) -> dict[str, int]:
    """Write the play-count and artist files; returns rows written and the sum of the counts.

    Which (user, artist) pairs exist follows the same taste model as the events (so a model has something to
    learn); each pair's count is its number of draws times a heavy-tailed (log-normal) factor, from 1 to
    :data:`MAX_PLAY_COUNT`, as real listening counts are.
    """
    events = GenerateSpec(spec.out, dt.date(2000, 1, 1), users=spec.users, tracks=spec.artists, seed=spec.seed)
    world = build_world(events)
    catalog = track_rows(events, world)
    durations = np.array([row[6] for row in catalog], dtype=np.int64)
    tables = _genre_tables(world)
    rng = np.random.default_rng([spec.seed, 360])
    keys = np.empty(0, dtype=np.int64)
    while True:  # draw plays until there are enough distinct pairs
        c = _chunk(rng, world, tables, CHUNK_EVENTS, durations, 0.0, 0.0)
        keys = np.concatenate([keys, c["users"] * spec.artists + c["tracks"]])
        pairs, draws = np.unique(keys, return_counts=True)
        if pairs.size >= spec.rows:
            break
    chosen = np.sort(rng.choice(pairs.size, size=spec.rows, replace=False))
    pairs, draws = pairs[chosen], draws[chosen]
    user_idx, artist_idx = pairs // spec.artists, pairs % spec.artists
    # How much a user plays an artist follows how close it is to the user's taste (as in the events), with
    # log-normal spread: counts from 1 to hundreds of thousands, the heaviest where the taste matches.
    closeness = np.exp(-3.0 * np.linalg.norm(world.track_features[artist_idx] - world.user_taste[user_idx], axis=1))
    scale = rng.lognormal(COUNT_LOG_MEAN + COUNT_LOG_TASTE * closeness, COUNT_LOG_SD)
    counts = np.clip(np.ceil(draws * scale), 1, MAX_PLAY_COUNT).astype(np.int64)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    artists = [[track_id(t), row[1], row[4]] for t, row in enumerate(catalog)]
    _write_tsv(out / ARTIST_FILE, artists)
    _write_tsv(
        out / PLAY_COUNT_FILE,
        [[user_id(int(u)), track_id(int(a)), int(n)] for u, a, n in zip(user_idx, artist_idx, counts, strict=True)],
    )
    total = int(counts.sum())
    log.info("generated %d play counts (%d plays in all) and %d artists -> %s", spec.rows, total, len(artists), out)
    return {"rows": spec.rows, "plays": total, "artists": len(artists)}


def _write_tsv(path: Path, rows: list[list[object]]) -> None:
    tmp = path.with_suffix(".tsv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows(rows)
    os.replace(tmp, path)
