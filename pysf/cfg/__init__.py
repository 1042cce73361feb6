"""Configuration layer: Sample Factory's command-line flags (``pysf.cfg.cfg``) and parsing helpers
(``pysf.cfg.arguments``), with the same names, defaults and call sequence as ``sample_factory.cfg``."""
