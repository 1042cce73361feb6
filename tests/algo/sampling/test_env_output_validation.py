"""What the gymnasium env workers do with env outputs they cannot use: non-real observations and rewards stop
sampling with a message naming the env; out-of-bounds observations are warned about once per env; an env's
exception is reported with its own frames (not the worker's), within the lifeline's 4000 bytes."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from pysf.algo.sampling import protocol
from pysf.algo.sampling.rollout_worker import _fit_error_report
from pysf.algo.sampling.sync_sampling_api import SyncSamplingAPI
from pysf.envs.env_utils import register_env

from helpers import validation_test_envs
from helpers.sampling import small_cfg

WORKER_LOGGER = "pysf.algo.sampling.rollout_worker"


pytestmark = pytest.mark.usefixtures("fresh_context")  # tests/conftest.py


def faulty_cfg(fault: str, **overrides):
    """One worker with envs 0 and 1 (env 1 is the faulty one), in this process unless ``serial_mode=False``."""
    env_name = f"faulty_output__{fault}"
    register_env(env_name, validation_test_envs.make_faulty_output_env)
    settings = dict(
        num_workers=1, num_envs_per_worker=2, worker_num_splits=1, async_rl=False, serial_mode=True,
        decorrelate_envs_on_one_worker=False,
    )
    settings.update(overrides)
    return small_cfg(env_name, **settings)


def sampling_error(cfg, seconds: float = 30) -> str:
    """The RuntimeError text sampling ends with (the test fails if it does not end within ``seconds``)."""
    sampling = SyncSamplingAPI(cfg)
    sampling.start()
    try:
        with pytest.raises(RuntimeError) as info:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                sampling.get_trajectories_sync(timeout=seconds)
    finally:
        sampling.stop()
    return str(info.value)


@pytest.mark.filterwarnings("error::numpy.exceptions.ComplexWarning")  # no complex value may reach a buffer
@pytest.mark.parametrize(
    "fault, expected",
    [
        (
            "complex_obs",
            "returned an observation 'obs' of dtype complex64; observations must hold real numbers (bool, int or "
            "float): its observation_space has dtype float32",
        ),
        ("string_obs", "returned an observation 'obs' of dtype <U1; observations must hold real numbers"),
        (
            "none_reward",
            "returned a reward of type NoneType; rewards must be real scalars (int, float or a numpy real scalar)",
        ),
        ("array_reward", "returned a reward of shape (2,) (ndarray); rewards must be real scalars"),
        ("complex_reward", "returned a complex reward (1+2j); rewards must be real scalars"),
        ("string_reward", "returned a reward of type str ('1.5'); rewards must be real scalars"),
    ],
)
def test_non_real_outputs_stop_sampling_naming_the_env(fault, expected):
    message = sampling_error(faulty_cfg(fault))
    assert expected in message
    assert f"env 'faulty_output__{fault}' (worker 0, env_id {validation_test_envs.FAULTY_ENV_ID})" in message
    if fault == "array_reward":
        assert "multi-agent envs are not supported by pysf yet" in message


def test_scalar_arrays_and_numpy_scalars_are_rewards():
    with SyncSamplingAPI(faulty_cfg("scalar_array_rewards")) as sampling:
        batches = [sampling.get_trajectories_sync(timeout=30) for _ in range(3)]
    assert all(bool((batch["rewards"] == 1.0).all()) for batch in batches)


def test_bad_reward_during_the_decorrelation_warm_up():
    # Env 1 takes `rollout` warm-up steps; its fault comes at step 3.
    message = sampling_error(faulty_cfg("none_reward", decorrelate_envs_on_one_worker=True))
    assert "(worker 0, env_id 1) returned a reward of type NoneType; rewards must be real scalars" in message
    assert "during its decorrelation warm-up" in message


def out_of_bounds_warnings(text_or_records):
    return [line for line in text_or_records if "outside its observation_space bounds" in line]


def test_out_of_bounds_observations_are_warned_about_once_per_env_and_kept(caplog):
    cfg = faulty_cfg("out_of_bounds", num_envs_per_worker=4, worker_num_splits=2)
    with caplog.at_level(logging.WARNING, logger=WORKER_LOGGER):
        with SyncSamplingAPI(cfg) as sampling:
            batches = [sampling.get_trajectories_sync(timeout=30) for _ in range(6)]
    warnings = out_of_bounds_warnings(r.getMessage() for r in caplog.records if r.name == WORKER_LOGGER)
    assert len(warnings) == 4, warnings  # envs 0-3, once each, over 6 batches of out-of-bounds observations
    for env_id in range(4):
        (warning,) = [w for w in warnings if f"(worker 0, env_id {env_id})" in w]
        assert "observation 'obs' outside its observation_space bounds: 2 of 3 values outside" in warning
        assert "from -3.0 to 5.0; the first at index (1,) is 5.0" in warning
        assert "its bounds are [-1.0, 1.0]" in warning and "Training continues" in warning
    # Training went on with the observations as the envs returned them (0 after a reset, else out of bounds).
    later_obs = batches[-1]["obs"]["obs"].numpy()
    assert set(np.unique(later_obs[..., 1]).tolist()) == {0.0, 5.0}
    assert set(np.unique(later_obs[..., 2]).tolist()) == {0.0, -3.0}


def test_out_of_bounds_warnings_of_worker_processes_reach_the_console(capfd):
    cfg = faulty_cfg("out_of_bounds", serial_mode=False)
    with SyncSamplingAPI(cfg) as sampling:
        for _ in range(3):
            sampling.get_trajectories_sync(timeout=60)
    captured = capfd.readouterr()  # the worker logs to the console in the trainer's format
    warnings = out_of_bounds_warnings((captured.out + captured.err).splitlines())
    assert len(warnings) == 2 and all("outside its observation_space bounds" in w for w in warnings), warnings


def assert_env_frames_only(message: str, functions) -> None:
    assert "Traceback (most recent call last):" in message
    for function in functions:
        assert 'validation_test_envs.py", line' in message and f"in {function}\n" in message, function
    assert "rollout_worker.py" not in message and "create_env.py" not in message  # the worker's own frames


def test_env_exception_reports_the_envs_own_traceback():
    message = sampling_error(faulty_cfg("raise", serial_mode=False), seconds=60)
    assert "env 'faulty_output__raise' (worker 0, env_id 1) raised RuntimeError: FaultyOutputEnv 1: velocity" in message
    assert_env_frames_only(message, ["step", "_faulty_output", "_advance_physics", "_integrate_velocity"])
    assert message.rstrip().endswith("RuntimeError: FaultyOutputEnv 1: velocity diverged at dt=0.1")


def test_env_exception_during_the_decorrelation_warm_up_reports_the_envs_own_traceback():
    message = sampling_error(faulty_cfg("raise", decorrelate_envs_on_one_worker=True))
    assert "(worker 0, env_id 1) raised RuntimeError: FaultyOutputEnv 1" in message
    assert "during its decorrelation warm-up" in message
    assert_env_frames_only(message, ["step", "_advance_physics", "_integrate_velocity"])


def test_make_env_exception_reports_the_factorys_traceback():
    message = sampling_error(faulty_cfg("make_env_raise"))
    assert "(worker 0, env_id 1) raised FileNotFoundError: assets of env 1 not found" in message
    assert_env_frames_only(message, ["make_faulty_output_env", "_load_env_assets"])


def test_long_traceback_keeps_both_ends_within_the_report_limit():
    message = sampling_error(faulty_cfg("deep_raise"))
    report = message[message.index("env 'faulty_output__deep_raise' (worker 0"):]  # after the sampler's own prefix
    assert len(report.encode("utf-8")) <= protocol.max_error_report_bytes() == 4000
    assert "lines left out here" in report
    assert "in step\n" in report  # the outermost frame of the env
    assert "in _hit_the_bottom\n" in report
    assert report.endswith("RecursionError: the bottom of FaultyOutputEnv's descent")


def test_fit_error_report_cuts_whole_characters():
    frames = "".join(f'  File "env.py", line {n}, in f{n}\n    f{n + 1}()\n' for n in range(400))
    text = "é" * 3000 + "\nTraceback (most recent call last):\n" + frames + "ValueError: " + "€" * 3000
    fitted = _fit_error_report(text)
    assert len(fitted.encode("utf-8")) <= protocol.max_error_report_bytes()
    assert fitted.startswith("é") and "lines left out here" in fitted
    assert _fit_error_report("short") == "short"
