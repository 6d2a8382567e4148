"""The lake and Spark: sessions (local, cluster or a warm Spark Connect server), every Delta read and write
(:mod:`include.lake.delta_io`), the landing folder, source mappings and the job harness every Spark job's
``main`` runs in, with the warm fork server that runs jobs started as programs (:mod:`include.lake.job_forks`).
May import :mod:`include.core`."""
