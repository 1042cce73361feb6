"""Environments: registration, creation, and pysf's native C++ implementations (Sample Factory's ``envs``)."""
