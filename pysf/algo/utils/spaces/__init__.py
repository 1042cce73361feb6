"""Action spaces of Sample Factory's own (``sample_factory.algo.utils.spaces``): ``Discretized``."""

from pysf.algo.utils.spaces.discretized import Discretized

__all__ = ["Discretized"]
