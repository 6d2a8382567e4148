"""Shared helpers of the integration tier."""


def _land(lake, source: str, header: str, *lines: str) -> None:
    folder = lake / "landing" / source / "date=2026-11-20"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-00000.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
