"""Spark jobs: one module per pipeline step, each a pure ``transform`` plus a thin ``main(argv)``."""
