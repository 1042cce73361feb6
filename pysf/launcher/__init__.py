"""Experiment launcher (Sample Factory's ``sample_factory.launcher``): run hyperparameter sweeps and groups of
experiments described by a ``RUN_DESCRIPTION`` module.

- :mod:`pysf.launcher.run_description`: ``ParamGrid``, ``ParamList``, ``Experiment``, ``RunDescription``: the
  command line, experiment name and folder of every run.
- :mod:`pysf.launcher.launcher_utils`: ``seeds(n)``.
- :mod:`pysf.launcher.run_processes`: the local back-end (experiments as subprocesses, GPU slots).
- :mod:`pysf.launcher.run`: ``python -m pysf.launcher.run --run=<module> --backend=processes ...``.
"""
