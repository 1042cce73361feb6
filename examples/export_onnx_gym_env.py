"""Export a policy trained with ``examples/train_gym_env.py`` to ONNX and check it with onnxruntime.

    python examples/train_gym_env.py --env CartPole-v1 --experiment gym_cartpole
    python examples/export_onnx_gym_env.py --env CartPole-v1 --experiment gym_cartpole

Writes ``<experiment>.onnx`` into the current folder, as Sample Factory's export example does. The graph takes
one input per observation key (``obs`` here; plus ``rnn_states`` for recurrent policies) with a dynamic batch
dimension, and returns ``output_actions`` (plus ``output_rnn_states``). Needs ``pip install 'pysf[onnx]'``.
"""

import sys

import numpy as np

from pysf.algo.utils.misc import ExperimentStatus
from pysf.cfg.arguments import parse_full_cfg, parse_sf_args
from pysf.export_onnx import export_onnx

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from train_gym_env import register_gym_envs  # noqa: E402


def main() -> int:
    """Script entry point."""
    parser, partial_cfg = parse_sf_args(evaluation=True)
    register_gym_envs(partial_cfg.env)
    cfg = parse_full_cfg(parser)
    filename = f"{cfg.experiment}.onnx"
    status = export_onnx(cfg, filename)
    if status != ExperimentStatus.SUCCESS:
        return status
    import onnxruntime

    session = onnxruntime.InferenceSession(filename)
    dtypes = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int64)": np.int64}
    inputs = {i.name: np.zeros([3] + list(i.shape[1:]), dtype=dtypes[i.type]) for i in session.get_inputs()}
    actions = session.run(["output_actions"], inputs)[0]
    print(f"{filename}: inputs {[i.name for i in session.get_inputs()]}, actions for 3 zero observations: {actions}")
    return ExperimentStatus.SUCCESS


if __name__ == "__main__":
    sys.exit(main())
