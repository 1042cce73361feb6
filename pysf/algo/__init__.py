"""Algorithm side of pysf: learner, sampling and shared utilities (Sample Factory's ``algo`` package)."""
