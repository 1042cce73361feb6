"""What pysf's forkserver imports once, before it forks children (see ``multiprocessing_utils.get_mp_ctx``).

Only the forkserver imports this module. Besides the modules every child needs, it sets the forkserver's own
signal dispositions: the trainer handles Ctrl-C and SIGTERM for the whole process tree, and a forkserver killed
by a process-group SIGTERM would take every child it made with it (they die with the process that forked them).
"""

import signal

from pysf.algo.utils.multiprocessing_utils import PARENT_HANDLED_SIGNALS

for _signal in PARENT_HANDLED_SIGNALS:  # first: the imports below take seconds
    signal.signal(_signal, signal.SIG_IGN)

import pysf.algo.sampling.rollout_worker  # noqa: E402,F401  (torch, gymnasium and the extension with it)
import pysf.algo.utils.env_info  # noqa: E402,F401
