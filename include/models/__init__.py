"""Models: ALS (explicit and implicit), exact blocked top-K, evaluation metrics and splits, model versions and
``ops.model_runs`` with their plots. May import ``core``, ``lake`` and ``quality``."""
