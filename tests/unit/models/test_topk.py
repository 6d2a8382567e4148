"""The blocked top-K kernel against a brute-force sort: exact, played tracks never listed, ties by key."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from include.models import topk

pytestmark = pytest.mark.unit


def brute_force(users: np.ndarray, items: np.ndarray, keys: np.ndarray, seen: list[np.ndarray], k: int) -> list:
    out = []
    for u, played in zip(users, seen, strict=True):
        scores = (items @ u).astype(np.float64)
        scores[np.isin(keys, played)] = -np.inf
        order = [o for o in np.lexsort((keys, -scores)) if np.isfinite(scores[o])]
        out.append([int(keys[o]) for o in order[:k]])
    return out


def batch(users: np.ndarray, seen: list[np.ndarray]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.arange(len(users)), pa.int32()),
            pa.array([list(u) for u in users], pa.list_(pa.float32())),
            pa.array([list(s) for s in seen], pa.list_(pa.int32())),
        ],
        names=["user_key", "features", "seen"],
    )


@pytest.mark.parametrize(("tracks", "rank", "users"), [(300, 5, 40), (20_000, 16, 120)])
def test_top_k_equals_a_full_sort_with_ties_and_long_histories(tracks, rank, users):
    rng = np.random.default_rng(tracks)
    keys = np.sort(rng.choice(10 * tracks, tracks, replace=False)).astype(np.int64)
    items = rng.standard_normal((tracks, rank)).astype(np.float32)
    items[::7] = 0.0  # every seventh track scores exactly 0 for everyone: ties decided by key
    vectors = rng.standard_normal((users, rank)).astype(np.float32)
    vectors[0] = 0.0  # a user for whom every track ties
    seen = [rng.choice(keys, rng.integers(0, 300), replace=False) for _ in range(users)]
    seen[1] = keys[:-3]  # a user who has played all but three tracks
    out = topk.Ranker(10, topk.Catalog(keys, items)).block(batch(vectors, seen))
    got: dict[int, list[int]] = {}
    for user, track, rank_ in zip(*(out.column(c).to_pylist() for c in ("user_key", "track_key", "rank")), strict=True):
        got.setdefault(user, []).append(track)
        assert rank_ == len(got[user])
    expected = brute_force(vectors, items, keys, seen, 10)
    assert [got.get(u, []) for u in range(users)] == expected
    assert len(got[1]) == 3  # the catalog ran out for the user who played nearly everything


def test_users_without_factors_get_popular_tracks_they_have_not_played():
    popular = topk.Popular.ordered(np.array([1, 2, 3, 4]), np.array([0.5, 1.0, 0.5, 0.1]))
    ranker = topk.Ranker(3, topk.Catalog(np.array([1, 2]), np.ones((2, 2), np.float32)), popular)
    rows = pa.RecordBatch.from_arrays(
        [
            pa.array([7], pa.int32()),
            pa.array([None], pa.list_(pa.float32())),
            pa.array([[2]], pa.list_(pa.int32())),
        ],
        names=["user_key", "features", "seen"],
    )
    out = ranker.block(rows).to_pydict()
    # 2 was played; 1 and 3 tie on score and the smaller key comes first
    assert out["track_key"] == [1, 3, 4] and out["source"] == ["popular"] * 3 and out["rank"] == [1, 2, 3]


def test_nearest_neighbours_are_exact_by_distance():
    rng = np.random.default_rng(5)
    played = rng.random((6000, 9)).astype(np.float32)
    keys = np.arange(6000, dtype=np.int64) * 2
    new = rng.random((30, 9)).astype(np.float32)
    rows = pa.RecordBatch.from_arrays(
        [pa.array(np.arange(30), pa.int32()), pa.array([list(v) for v in new], pa.list_(pa.float32()))],
        names=["track_key", "features"],
    )
    out = topk.Neighbours.of(keys, played, 3).block(rows).to_pydict()
    for i in range(30):
        distance = np.sqrt(((played.astype(np.float64) - new[i].astype(np.float64)) ** 2).sum(axis=1))
        expected = keys[np.lexsort((keys, distance))[:3]]
        got = [n for t, n in zip(out["track_key"], out["neighbour_key"], strict=True) if t == i]
        assert got == list(expected)
