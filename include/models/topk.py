"""Exact top-K by blocked matrix products: recommending at the speed of BLAS, in Spark's Python workers.

Reads and writes nothing. A :class:`Ranker` travels to Spark's Python workers inside ``mapInArrow`` (the
track factors, popularity lists and content neighbours in it, pickled once per task). Each worker scores a
block of users against every track with one matrix product per chunk of tracks, masks what each user has
played, and keeps each user's K best: the cost grows with users x tracks x rank, never with the longest
history, and no row per (user, candidate) is ever built in Spark.

How the K best are found without sorting every row: the tracks of a chunk are split into groups of
``GROUP``; a row's K best tracks lie in its K groups with the highest maxima (any group holding one of them
has a maximum at least as high), so only those groups' tracks are scored again and sorted. Ties are broken
by the smaller track key, and a group whose maximum is within the float32 rounding bound of the K-th is kept
too, so the result is exactly the K best of the scores this module returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from include.core.schemas import TRACK_KEY, USER_KEY

GROUP = 64  # tracks per group: the top-K search reads K groups of this size again
CHUNK = 8192  # tracks per matrix product: a block's scores stay in cache
BLOCK = 512  # users per block
SMALL = 4096  # catalogs up to this size are sorted whole
EPS32 = float(np.finfo(np.float32).eps)
OUTPUT = "user_key int, track_key int, rank int, score double, source string"
NEIGHBOURS_OUTPUT = "track_key int, neighbour_key int, similarity double"


def user_rows(users: DataFrame, seen: DataFrame, factors: DataFrame | None, user: str = USER_KEY) -> DataFrame:
    """What a :class:`Ranker` reads: one row per user of ``users`` with ``seen`` (the tracks of its rows in
    ``seen``: ``(user, track_key)``) and ``features`` (its factor vector, null without one)."""
    lists = seen.groupBy(user).agg(F.collect_list(TRACK_KEY).alias("seen"))
    rows = users.select(user).distinct().join(lists, user, "left")
    if factors is None:
        return rows.withColumn("features", F.lit(None).cast("array<float>"))
    return rows.join(factors.select(F.col("id").alias(user), "features"), user, "left")


def rank(rows: DataFrame, ranker: Ranker) -> DataFrame:
    """The ranker over ``rows`` in as many tasks as the session's shuffle partitions (an explicit count,
    which adaptive execution does not coalesce: every core gets users)."""
    partitions = int(rows.sparkSession.conf.get("spark.sql.shuffle.partitions") or 4)
    return rows.repartition(partitions).mapInArrow(ranker, OUTPUT)


def collect_matrix(frame: DataFrame, key: str = "id", vector: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """(keys ascending as int64, float32 matrix of one row per key) from a frame of keys and vectors."""
    table = frame.select(F.col(key).cast("long").alias("k"), F.col(vector).alias("v")).orderBy("k").toArrow()
    keys = table.column("k").to_numpy()
    values = table.column("v").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    width = len(values) // len(keys) if len(keys) else 0
    return keys, np.ascontiguousarray(values.astype(np.float32).reshape(len(keys), width))


def _lists(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (offsets, flat values); a null list is an empty one."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = arr.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = arr.flatten().to_numpy(zero_copy_only=False)
    return offsets, values


def in_blocks(
    batches: Iterator[pa.RecordBatch], block: Callable[[pa.RecordBatch], pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """``block`` over every slice of :data:`BLOCK` rows of the batches (a mapInArrow function's body)."""
    for batch in batches:
        for start in range(0, batch.num_rows, BLOCK):
            yield block(batch.slice(start, BLOCK))


@dataclass(frozen=True)
class Catalog:
    """Item vectors by column: ``keys`` ascending (the column order breaks ties) and ``vectors`` (n, r)."""

    keys: np.ndarray
    vectors: np.ndarray
    chunk: int = field(init=False)
    transposed: np.ndarray = field(init=False, repr=False)
    max_norm: float = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.keys)
        chunk = CHUNK if n > SMALL else max(GROUP, -(-n // GROUP) * GROUP)
        padded = -(-n // chunk) * chunk if n else 0
        t = np.zeros((self.vectors.shape[1], padded), np.float32)
        t[:, :n] = self.vectors.T
        object.__setattr__(self, "chunk", chunk)
        object.__setattr__(self, "transposed", t)
        norms = np.linalg.norm(self.vectors, axis=1) if n else np.zeros(1)
        object.__setattr__(self, "max_norm", float(norms.max()))

    def __reduce__(self) -> tuple[type, tuple[np.ndarray, np.ndarray]]:
        # The padded transposed copy is rebuilt where the catalog is unpickled: half the bytes shipped.
        return (Catalog, (self.keys, self.vectors))

    @property
    def size(self) -> int:
        return len(self.keys)

    def columns(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column of each key, and which keys are in the catalog at all."""
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, max(self.size - 1, 0))
        found = (self.keys[pos] == keys) if self.size else np.zeros(len(keys), bool)
        return pos, found


def top_columns(
    queries: np.ndarray,
    catalog: Catalog,
    k: int,
    exact: Callable[[int, np.ndarray], np.ndarray],
    masked: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each query row, its ``k`` best catalog columns and their ``exact`` scores, best first (ties: the
    smaller column). Scores are ``queries @ vectors.T`` (float32 BLAS), and ``exact(row, columns)`` scores a
    row's candidates again the way the caller reports them. ``masked`` (offsets, sorted columns per row) are
    never returned (a user's played tracks)."""
    b, n = queries.shape[0], catalog.size
    offsets, cols = masked if masked is not None else (np.zeros(b + 1, np.int64), np.zeros(0, np.int64))
    if n == 0 or b == 0:
        return [(np.zeros(0, np.int64), np.zeros(0))] * b
    rows = np.repeat(np.arange(b), np.diff(offsets))
    order = np.argsort(cols, kind="stable")
    m_rows, m_cols = rows[order], cols[order]
    chunk = catalog.chunk
    width = chunk // GROUP
    maxima = np.empty((b, catalog.transposed.shape[1] // GROUP), np.float32)
    scores = np.empty((b, chunk), np.float32)
    for c0 in range(0, catalog.transposed.shape[1], chunk):
        np.matmul(queries, catalog.transposed[:, c0 : c0 + chunk], out=scores)
        lo, hi = np.searchsorted(m_cols, [c0, c0 + chunk])
        scores[m_rows[lo:hi], m_cols[lo:hi] - c0] = -np.inf
        if c0 + chunk > n:
            scores[:, n - c0 :] = -np.inf
        # group j of the chunk: its columns c0 + j + m * width, m = 0 .. GROUP-1
        np.max(scores.reshape(b, GROUP, width), axis=1, out=maxima[:, c0 // GROUP : c0 // GROUP + width])
    groups = maxima.shape[1]
    kth = np.partition(maxima, groups - k, axis=1)[:, groups - k] if groups > k else maxima.min(axis=1)
    # How far a float32 product may be from another evaluation of the same dot product.
    slack = 4.0 * queries.shape[1] * EPS32 * np.linalg.norm(queries, axis=1) * catalog.max_norm
    spread = np.arange(GROUP) * width
    out = []
    for i in range(b):
        g = np.flatnonzero(maxima[i] >= kth[i] - slack[i]) if groups > k else np.arange(groups)
        if not np.isfinite(kth[i]):
            g = g[np.isfinite(maxima[i, g])]
        candidates = ((g // width) * chunk + g % width)[:, None] + spread
        candidates = np.sort(candidates[candidates < n])
        seen = cols[offsets[i] : offsets[i + 1]]
        if len(seen):
            candidates = candidates[~np.isin(candidates, seen, assume_unique=False)]
        values = exact(i, candidates)
        best = np.lexsort((candidates, -values))[:k]
        out.append((candidates[best], values[best]))
    return out


@dataclass(frozen=True)
class Popular:
    """Tracks in popularity order (score descending, then key), with the scores reported for them."""

    keys: np.ndarray
    scores: np.ndarray

    @classmethod
    def ordered(cls, keys: np.ndarray, scores: np.ndarray) -> Popular:
        order = np.lexsort((keys, -scores))
        return cls(keys[order].astype(np.int64), scores[order].astype(np.float64))

    def first(self, n: int, excluded: np.ndarray, bonus: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` tracks not in ``excluded``, with their scores plus ``bonus``."""
        head = self.keys[: n + len(excluded)]
        keep = ~np.isin(head, excluded)
        return head[keep][:n], self.scores[: len(head)][keep][:n] + bonus


@dataclass(frozen=True)
class Content:
    """Tracks nobody has played, reachable through played neighbours: for each neighbour column of the
    catalog, the new tracks (``tracks[ptr[c]:ptr[c+1]]``) and their similarity to it."""

    ptr: np.ndarray
    tracks: np.ndarray
    similarity: np.ndarray
    slots: int

    @classmethod
    def of(cls, catalog: Catalog, track: np.ndarray, neighbour: np.ndarray, similarity: np.ndarray, slots: int):  # type: ignore[no-untyped-def]
        col, found = catalog.columns(neighbour)
        col, track, similarity = col[found], track[found], similarity[found]
        order = np.argsort(col, kind="stable")
        ptr = np.searchsorted(col[order], np.arange(catalog.size + 1))
        return cls(ptr, track[order].astype(np.int64), similarity[order].astype(np.float64), slots)

    def best(self, neighbours: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``slots`` new tracks for a user whose eligible neighbours (columns) scored ``scores``: each
        track scored as its best neighbour's score times their similarity; best first, ties by key."""
        starts, ends = self.ptr[neighbours], self.ptr[neighbours + 1]
        counts = ends - starts
        if not counts.sum():
            return np.zeros(0, np.int64), np.zeros(0)
        index = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True) if e > s])
        values = np.repeat(scores.astype(np.float64), counts) * self.similarity[index]
        tracks = self.tracks[index]
        order = np.lexsort((-values, tracks))  # per track, its best value first
        tracks, values = tracks[order], values[order]
        first = np.concatenate([[True], tracks[1:] != tracks[:-1]])
        tracks, values = tracks[first], values[first]
        best = np.lexsort((tracks, -values))[: self.slots]
        return tracks[best], values[best]


@dataclass(frozen=True)
class Ranker:
    """Each user's top ``k``: model rows first (the ``catalog`` factors' best unplayed tracks, with up to
    ``content.slots`` new tracks scored through their neighbours), then popular rows (the user's genres'
    tracks, then ``popular``) until there are ``k``. The mapInArrow function over user rows
    ``(user_key, features, seen, genres)``; emits :data:`OUTPUT` rows."""

    k: int
    catalog: Catalog | None = None
    popular: Popular | None = None
    genres: dict[str, Popular] = field(default_factory=dict)
    content: Content | None = None
    genre_bonus: float = 1.0

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return in_blocks(batches, self.block)

    def block(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        users = batch.column(USER_KEY).to_numpy(zero_copy_only=False)
        s_off, seen = _lists(batch.column("seen"))
        seen = seen.astype(np.int64)
        model = self._model_rows(batch, s_off, seen)
        has_genres = "genres" in batch.schema.names
        g_off, genres = _lists(batch.column("genres")) if has_genres else (np.zeros(0, np.int64), np.zeros(0))
        out: dict[str, list] = {USER_KEY: [], TRACK_KEY: [], "rank": [], "score": [], "source": []}
        for i, user in enumerate(users):
            keys, scores, sources = model[i]
            if len(keys) < self.k:
                played = seen[s_off[i] : s_off[i + 1]]
                user_genres = genres[g_off[i] : g_off[i + 1]] if has_genres else genres[:0]
                keys, scores, sources = self._fill(keys, scores, sources, played, user_genres)
            n = len(keys)
            out[USER_KEY].append(np.full(n, user, np.int64))
            out[TRACK_KEY].append(keys)
            out["rank"].append(np.arange(1, n + 1))
            out["score"].append(scores)
            out["source"] += sources
        arrays = [
            pa.array(np.concatenate(out[USER_KEY]) if out[USER_KEY] else [], pa.int32()),
            pa.array(np.concatenate(out[TRACK_KEY]) if out[TRACK_KEY] else [], pa.int32()),
            pa.array(np.concatenate(out["rank"]) if out["rank"] else [], pa.int32()),
            pa.array(np.concatenate(out["score"]) if out["score"] else [], pa.float64()),
            pa.array(out["source"], pa.string()),
        ]
        return pa.RecordBatch.from_arrays(arrays, names=[USER_KEY, TRACK_KEY, "rank", "score", "source"])

    def _model_rows(
        self, batch: pa.RecordBatch, s_off: np.ndarray, seen: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
        empty: tuple[np.ndarray, np.ndarray, list[str]] = (np.zeros(0, np.int64), np.zeros(0), [])
        rows = [empty] * batch.num_rows
        catalog = self.catalog
        if catalog is None or catalog.size == 0:
            return rows
        features = batch.column("features")
        scored = np.flatnonzero(features.is_valid().to_numpy(zero_copy_only=False))
        if not len(scored):
            return rows
        _, f_values = _lists(features.take(pa.array(scored)))
        queries = np.ascontiguousarray(f_values.astype(np.float32).reshape(len(scored), -1))
        # each scored user's played tracks as sorted catalog columns
        lengths = (s_off[1:] - s_off[:-1])[scored]
        flat = np.concatenate([seen[s_off[i] : s_off[i + 1]] for i in scored]) if lengths.sum() else seen[:0]
        col, found = catalog.columns(flat)
        owner = np.repeat(np.arange(len(scored)), lengths)
        col, owner = col[found], owner[found]
        order = np.lexsort((col, owner))
        col, owner = col[order], owner[order]
        offsets = np.searchsorted(owner, np.arange(len(scored) + 1))

        def exact(i: int, columns: np.ndarray) -> np.ndarray:
            return (catalog.vectors[columns] @ queries[i]).astype(np.float64)

        best = top_columns(queries, catalog, self.k, exact, (offsets, col))
        for j, i in enumerate(scored):
            columns, scores = best[j]
            keys, sources = catalog.keys[columns], ["als"] * len(columns)
            if self.content is not None:
                played = col[offsets[j] : offsets[j + 1]]
                threshold = scores[self.k - 1] if len(scores) >= self.k else -np.inf
                played_scores = exact(j, played)
                eligible = np.concatenate([columns, played[played_scores >= threshold]])
                eligible_scores = np.concatenate([scores, played_scores[played_scores >= threshold]])
                new_keys, new_scores = self.content.best(eligible, eligible_scores)
                if len(new_keys):
                    keys = np.concatenate([keys, new_keys])
                    scores = np.concatenate([scores, new_scores])
                    sources = sources + ["content"] * len(new_keys)
                    order = np.lexsort((keys, -scores))[: self.k]
                    keys, scores, sources = keys[order], scores[order], [sources[o] for o in order]
            rows[i] = (keys.astype(np.int64), scores, sources)
        return rows

    def _fill(
        self, keys: np.ndarray, scores: np.ndarray, sources: list[str], played: np.ndarray, user_genres: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Popular rows after the model's: the user's genres' most popular tracks (score + bonus), then the
        most popular tracks, none played or already listed."""
        need = self.k - len(keys)
        picks_k, picks_s = [keys], [scores]
        lists = [(self.genres[g], self.genre_bonus) for g in user_genres if g in self.genres]
        if lists:
            excluded = np.concatenate([played, keys])
            found = [p.first(need, excluded, bonus) for p, bonus in lists]
            k2 = np.concatenate([f[0] for f in found])
            s2 = np.concatenate([f[1] for f in found])
            order = np.lexsort((k2, -s2))[:need]
            picks_k.append(k2[order])
            picks_s.append(s2[order])
            need -= len(order)
        if need > 0 and self.popular is not None:
            excluded = np.concatenate([played, *picks_k])
            k3, s3 = self.popular.first(need, excluded)
            picks_k.append(k3)
            picks_s.append(s3)
        new_keys = np.concatenate(picks_k).astype(np.int64)
        return new_keys, np.concatenate(picks_s), sources + ["popular"] * (len(new_keys) - len(keys))


@dataclass(frozen=True)
class Neighbours:
    """Each new track's ``n`` nearest played tracks by Euclidean distance: mapInArrow over
    ``(track_key, features)`` rows; emits :data:`NEIGHBOURS_OUTPUT` (similarity ``1 / (1 + distance)``)."""

    played: Catalog  # augmented: [features, -|features|^2 / 2], so a product ranks by distance
    features: np.ndarray  # the played tracks' own features (float64), for exact distances
    n: int

    @classmethod
    def of(cls, keys: np.ndarray, features: np.ndarray, n: int) -> Neighbours:
        f64 = features.astype(np.float64)
        augmented = np.hstack([f64, -0.5 * (f64 * f64).sum(axis=1, keepdims=True)]).astype(np.float32)
        return cls(Catalog(keys, augmented), f64, n)

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return in_blocks(batches, self.block)

    def block(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        tracks = batch.column(TRACK_KEY).to_numpy(zero_copy_only=False)
        _, values = _lists(batch.column("features"))
        own = values.astype(np.float64).reshape(len(tracks), -1)
        queries = np.hstack([own, np.ones((len(tracks), 1))]).astype(np.float32)

        def exact(i: int, columns: np.ndarray) -> np.ndarray:  # minus the distance: larger is nearer
            return -np.sqrt(((self.features[columns] - own[i]) ** 2).sum(axis=1))

        best = top_columns(queries, self.played, self.n, exact)
        counts = [len(c) for c, _ in best]
        keys = np.concatenate([self.played.keys[c] for c, _ in best]) if sum(counts) else np.zeros(0, np.int64)
        distance = -np.concatenate([s for _, s in best]) if sum(counts) else np.zeros(0)
        return pa.RecordBatch.from_arrays(
            [
                pa.array(np.repeat(tracks, counts), pa.int32()),
                pa.array(keys, pa.int32()),
                pa.array(1.0 / (1.0 + distance), pa.float64()),
            ],
            names=[TRACK_KEY, "neighbour_key", "similarity"],
        )
