"""Run a Sample Factory 2.1.1 example's ``main()`` in the Sample Factory peer venv (benchmarks/suites.py).

    python benchmarks/peers/sf_train.py sf_examples.atari.train_atari --env=atari_pong ...

ale-py 0.9 (the last one for gymnasium 0.29, which Sample Factory 2.1.1 needs) registers its games with
gymnasium only when it is imported, and Sample Factory's Atari example does not import it. This script does,
at module level, so that Sample Factory's spawned worker processes (which re-import the main script) have the
games too; then it calls the example's own ``main()``, unchanged.
"""

import importlib
import importlib.util
import sys

if importlib.util.find_spec("ale_py") is not None:
    import ale_py  # noqa: F401  (registers the ALE games with gymnasium)

if __name__ == "__main__":
    example = importlib.import_module(sys.argv[1])
    sys.argv = [sys.argv[1], *sys.argv[2:]]
    sys.exit(example.main())
