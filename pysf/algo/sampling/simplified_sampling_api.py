"""Sample Factory 2.1.1's module path for ``SyncSamplingAPI`` (later versions: ``sync_sampling_api``)."""

from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI

__all__ = ["SyncSamplingAPI"]
