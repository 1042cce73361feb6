"""Configuration layer: Sample Factory's command-line flags (``pysf.cfg.cfg``), parsing and resume
(``pysf.cfg.arguments``) and the checks before training (``pysf.cfg.verify``), with the same names, defaults and
call sequence as ``sample_factory.cfg``."""
