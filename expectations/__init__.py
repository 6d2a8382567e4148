"""Great Expectations suites, one per layer boundary, kept as reviewed code."""
