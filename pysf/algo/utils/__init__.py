"""Utilities used by the model and the algorithm (Sample Factory's ``algo.utils``)."""
