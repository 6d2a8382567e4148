"""Serving: what people and programs read. JVM-free lookups (delta-rs and DuckDB), the Thrift SQL endpoint,
the explorer web page and the daily report. May import ``core``, ``lake``, ``quality`` and ``models``."""
