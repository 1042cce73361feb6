"""Runners: what drives sampling and learning (Sample Factory's ``algo.runners``)."""
