"""``ALGO_VERSION``: pysf's algorithm version (the name Sample Factory's ``sample_factory.utils.algo_version`` uses).

An integer that pysf increases whenever a change can affect learning results (sample efficiency, final reward
or throughput), so that experiment names built from it (``f"v{ALGO_VERSION:03d}_..."``, as in Sample Factory's
example launch scripts) tell runs of different algorithm versions apart. It is pysf's own counter, not Sample
Factory's (which was 83 in Sample Factory 2.1.1): the two numbers are not comparable.
"""

ALGO_VERSION = 1
