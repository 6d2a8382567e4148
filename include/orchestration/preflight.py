"""What ``setlist run`` and ``setlist airflow`` check before they start anything, so that a setting no retry can
fix stops the command at once with one line naming it, instead of every task failing and retrying for minutes.

Checks: the lake can be written (a local lake), a configured metadata database answers, a configured Spark
Connect server answers; a ``spark://`` master that does not answer is checked where the warm Spark starts
(:func:`include.orchestration.spark_server.check_master`). Reads settings; writes a test file in the lake.
"""

from __future__ import annotations

from include.core.config import Settings, check_writable
from include.orchestration import metadata_db, spark_server


def check(settings: Settings) -> None:
    """Raise :class:`include.core.config.ConfigError` (one line, naming the setting) for the first problem."""
    check_writable(settings.lake)
    metadata_db.check_configured(settings)
    if settings.spark_mode == "connect" and settings.spark_remote:
        spark_server.check_remote(settings.spark_remote)
