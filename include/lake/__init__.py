"""The lake and Spark: sessions (local, cluster or a warm Spark Connect server), every Delta read and write
(:mod:`include.lake.delta_io`), the landing folder, source mappings and the job harness every Spark job's
``main`` runs in. May import :mod:`include.core`."""
