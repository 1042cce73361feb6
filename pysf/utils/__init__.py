"""Small general-purpose helpers shared across pysf (mirrors ``sample_factory.utils``)."""
