"""Data quality: runs the Great Expectations suites of the top-level ``expectations`` package on a frame,
splits passing rows from quarantined ones and records ``ops.dq_results``. May import ``core`` and ``lake``."""
