"""``setlist generate``: deterministic sample landing files that follow the raw CSV contract."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import json

import pytest

from include.cli import generate as generate_module
from include.cli.generate import GenerateSpec, generate
from include.core import schemas
from include.core.config import ConfigError

pytestmark = pytest.mark.unit


def _digest(root) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.csv")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _spec(tmp_path, name: str, seed: int = 7) -> GenerateSpec:
    return GenerateSpec(
        lake=str(tmp_path / name),
        start=dt.date(2026, 11, 1),
        days=2,
        users=50,
        tracks=120,
        events_per_day=800,
        seed=seed,
    )


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate(_spec(tmp_path, "a"))
    generate(_spec(tmp_path, "b"))
    generate(_spec(tmp_path, "c", seed=8))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_each_folder_ends_with_a_marker_listing_its_files_and_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(generate_module, "ROWS_PER_FILE", 300)  # several part files a day
    monkeypatch.setattr(generate_module, "CHUNK_EVENTS", 100)
    generate(_spec(tmp_path, "a"))
    for folder in (tmp_path / "a" / "landing").glob("*/date=*"):
        manifest = json.loads((folder / "_SUCCESS").read_text())["files"]
        with_rows = {}
        for p in folder.glob("*.csv"):
            with open(p, newline="", encoding="utf-8") as fh:
                with_rows[p.name] = len(list(csv.reader(fh))) - 1  # the header is not a row
        assert manifest == with_rows and all(with_rows.values())
        assert (folder / "_SUCCESS").stat().st_mtime_ns >= max(p.stat().st_mtime_ns for p in folder.glob("*.csv"))
    assert len(json.loads((tmp_path / "a/landing/interactions/date=2026-11-01/_SUCCESS").read_text())["files"]) > 1


def test_files_follow_the_contract(tmp_path):
    spec = _spec(tmp_path, "a")
    counts = generate(spec)
    events = tmp_path / "a" / "landing" / "interactions" / "date=2026-11-02" / "part-00000.csv"
    with open(events, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == schemas.INTERACTION_COLUMNS
    body = rows[1:]
    assert len(body) >= spec.events_per_day  # plus at-least-once duplicates
    assert counts["events"] == 2 * spec.events_per_day
    for r in body:
        assert len(r) == 8 and r[1].startswith("user_") and r[2].startswith("trk_")
        assert dt.datetime.fromisoformat(r[3].replace("Z", "+00:00")).date() == dt.date(2026, 11, 2)
        assert int(r[4]) >= 0 and r[5] in ("true", "false") and r[6] in ("true", "false")
        assert r[7] == "" or 0.5 <= float(r[7]) <= 5.0
    ratings = [float(r[7]) for r in body if r[7]]
    assert 0.1 < len(ratings) / len(body) < 0.4

    tracks = tmp_path / "a" / "landing" / "tracks" / "date=2026-11-01" / "tracks.csv"
    with open(tracks, newline="", encoding="utf-8") as fh:
        catalog = list(csv.reader(fh))
    assert tuple(catalog[0]) == schemas.TRACK_COLUMNS
    assert len(catalog) == 121
    for r in catalog[1:]:
        assert float(r[7]) > 0 and all(0 <= float(x) <= 1 for x in r[8:15]) and -60 <= float(r[15]) <= 5


def test_popularity_is_long_tailed(tmp_path):
    generate(_spec(tmp_path, "a"))
    from collections import Counter

    plays: Counter[str] = Counter()
    for p in (tmp_path / "a" / "landing" / "interactions").rglob("*.csv"):
        with open(p, newline="") as fh:
            plays.update(r["track_id"] for r in csv.DictReader(fh))
    top_decile = sum(c for _, c in plays.most_common(12))
    assert top_decile / sum(plays.values()) > 0.3  # top 10% of the catalog takes a large share


def test_invalid_sizes_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"^users: must be at least 1"):
        GenerateSpec(lake=str(tmp_path), start=dt.date(2026, 1, 1), users=0)
    with pytest.raises(ConfigError, match=r"^seed: must be at least 0, got -1"):
        GenerateSpec(lake=str(tmp_path), start=dt.date(2026, 1, 1), seed=-1)


def test_large_days_are_split_into_part_files_and_reruns_replace_them(tmp_path, monkeypatch):
    import include.cli.generate as gen

    monkeypatch.setattr(gen, "ROWS_PER_FILE", 300)
    monkeypatch.setattr(gen, "CHUNK_EVENTS", 100)
    spec = GenerateSpec(
        lake=str(tmp_path), start=dt.date(2026, 11, 1), days=1, users=10, tracks=30, events_per_day=1000
    )
    generate(spec)
    day = tmp_path / "landing" / "interactions" / "date=2026-11-01"
    parts = sorted(day.glob("part-*.csv"))
    assert len(parts) == 4 and not list(day.glob("*.tmp"))
    ids = [r["event_id"] for p in parts for r in csv.DictReader(p.read_text().splitlines())]
    assert len(set(ids)) == 1000
    generate(
        GenerateSpec(lake=str(tmp_path), start=dt.date(2026, 11, 1), days=1, users=10, tracks=30, events_per_day=200),
    )
    assert len(list(day.glob("part-*.csv"))) == 1


def test_play_counts_are_one_row_per_pair_with_heavy_tailed_counts(tmp_path):
    spec = generate_module.PlayCountSpec(str(tmp_path / "a"), rows=3_000, users=300, artists=600, seed=3)
    written = generate_module.generate_play_counts(spec)
    with open(tmp_path / "a" / "plays.tsv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert len(rows) == written["rows"] == 3_000 and len({(u, a) for u, a, _ in rows}) == 3_000
    counts = sorted(int(n) for _, _, n in rows)
    assert counts[0] >= 1 and counts[-1] <= generate_module.MAX_PLAY_COUNT and sum(counts) == written["plays"]
    assert counts[len(counts) // 2] < 1_000 < counts[-1]  # a long tail: the largest far above the median
    with open(tmp_path / "a" / "artists.tsv", newline="", encoding="utf-8") as fh:
        artists = {a for a, _, genre in csv.reader(fh, delimiter="\t") if genre in generate_module.GENRES}
    assert {a for _, a, _ in rows} <= artists
    generate_module.generate_play_counts(dataclasses.replace(spec, out=str(tmp_path / "b")))
    assert (tmp_path / "a" / "plays.tsv").read_bytes() == (tmp_path / "b" / "plays.tsv").read_bytes()
    with pytest.raises(ConfigError, match=r"^rows: at most half of users x artists"):
        generate_module.PlayCountSpec(str(tmp_path), rows=100, users=10, artists=12)
