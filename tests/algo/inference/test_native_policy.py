"""pysf._C.Policy from Python: results, autograd-compatible outputs, GIL release, atomic weight updates."""

from __future__ import annotations

import io
import sys
import threading
import time
from typing import Dict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pysf import _C

from helpers.gil import count_while_alive

OBS_DIM, HIDDEN, RNN_SIZE, NUM_ACTIONS = 5, 32, 8, 3


class TinyActorCritic(nn.Module):
    """A module with the policy contract: MLP + tanh core + categorical head, and a float64 buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(OBS_DIM, HIDDEN), nn.Tanh())
        self.core = nn.Linear(HIDDEN + RNN_SIZE, RNN_SIZE)
        self.action_head = nn.Linear(RNN_SIZE, NUM_ACTIONS)
        self.value_head = nn.Linear(RNN_SIZE, 1)
        self.register_buffer("value_offset", torch.zeros((), dtype=torch.float64))

    def forward(self, obs: Dict[str, torch.Tensor], rnn_states: torch.Tensor,
                deterministic: bool) -> Dict[str, torch.Tensor]:
        new_rnn_states = torch.tanh(self.core(torch.cat([self.encoder(obs["obs"]), rnn_states], dim=1)))
        action_logits = self.action_head(new_rnn_states)
        log_probs = F.log_softmax(action_logits, dim=1)
        if deterministic:
            actions = torch.argmax(action_logits, dim=1)
        else:
            # Gumbel-max: one draw per row without building a probability table.
            actions = torch.argmax(log_probs - torch.log(-torch.log(torch.rand_like(log_probs))), dim=1)
        return {
            "values": self.value_head(new_rnn_states).squeeze(1) + self.value_offset.to(action_logits.dtype),
            "action_logits": action_logits,
            "actions": actions,
            "log_prob_actions": log_probs.gather(1, actions.unsqueeze(1)).squeeze(1),
            "new_rnn_states": new_rnn_states,
        }


def archive_of(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def make_batch(batch_size: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return ({"obs": torch.randn(batch_size, OBS_DIM, generator=generator)},
            torch.randn(batch_size, RNN_SIZE, generator=generator))


def full_state(module: nn.Module) -> Dict[str, torch.Tensor]:
    state = {name: p.detach().clone() for name, p in module.named_parameters()}
    state.update({name: b.detach().clone() for name, b in module.named_buffers()})
    return state


@pytest.fixture(autouse=True)
def one_intra_op_thread():
    """Exact output comparisons and GIL timing need a fixed, single intra-op thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture()
def model() -> TinyActorCritic:
    torch.manual_seed(0)
    return TinyActorCritic().eval()


def other_weights(model: nn.Module) -> Dict[str, torch.Tensor]:
    """A second full state whose outputs differ from `model`'s everywhere."""
    return {name: (torch.full_like(t, 100.0) if name == "value_offset" else t * -0.7 + 0.05)
            for name, t in full_state(model).items()}


def test_forward_matches_the_eager_module(model):
    policy = _C.Policy(archive_of(model), "cpu")
    assert policy.device == "cpu" and policy.version == 0
    obs, rnn_states = make_batch(16)
    outputs, version = policy.forward(obs, rnn_states, True)
    assert version == 0
    assert list(outputs) == ["values", "action_logits", "actions", "log_prob_actions", "new_rnn_states"]
    with torch.no_grad():
        expected = model(obs, rnn_states, True)
    for key in ("values", "action_logits", "log_prob_actions", "new_rnn_states"):
        torch.testing.assert_close(outputs[key], expected[key])
    assert torch.equal(outputs["actions"], expected["actions"])

    sampled, _ = policy.forward(obs, rnn_states)  # deterministic defaults to False
    assert sampled["actions"].dtype == torch.int64 and sampled["actions"].shape == (16,)
    assert int(sampled["actions"].min()) >= 0 and int(sampled["actions"].max()) < NUM_ACTIONS


def test_constructor_accepts_torch_device_and_lists_state_names(model):
    policy = _C.Policy(archive_of(model), torch.device("cpu"))
    assert policy.device == "cpu"
    assert policy.state_names() == list(full_state(model))  # parameters, then buffers


def test_outputs_are_normal_tensors_usable_in_autograd_and_in_place(model):
    policy = _C.Policy(archive_of(model))
    obs, rnn_states = make_batch(8)
    outputs, _ = policy.forward(obs, rnn_states, False)
    values = outputs["values"]
    assert not values.requires_grad and not values.is_inference()
    weights = torch.ones(8, requires_grad=True)
    (values * weights).sum().backward()
    assert torch.equal(weights.grad, values)
    before = values.clone()
    values.add_(1.0)
    outputs["new_rnn_states"].zero_()
    assert torch.equal(values, before + 1.0)


def test_update_weights_from_a_state_dict_and_a_list(model):
    policy = _C.Policy(archive_of(model))
    obs, rnn_states = make_batch(8)
    other = TinyActorCritic().eval()
    other.load_state_dict(other_weights(model))

    policy.update_weights(other.state_dict(), 5)
    outputs, version = policy.forward(obs, rnn_states, True)
    assert version == 5 and policy.version == 5
    with torch.no_grad():
        torch.testing.assert_close(outputs["values"], other(obs, rnn_states, True)["values"])

    policy.update_weights_list([full_state(model)[name] for name in policy.state_names()], 6)
    outputs, version = policy.forward(obs, rnn_states, True)
    assert version == 6
    with torch.no_grad():
        torch.testing.assert_close(outputs["values"], model(obs, rnn_states, True)["values"])


def test_invalid_weights_raise_value_error_naming_them_and_change_nothing(model):
    policy = _C.Policy(archive_of(model))
    obs, rnn_states = make_batch(4)
    before, _ = policy.forward(obs, rnn_states, True)
    state = other_weights(model)

    missing = {k: v for k, v in state.items() if k != "core.bias"}
    with pytest.raises(ValueError, match=r"Missing: \[core\.bias\]"):
        policy.update_weights(missing, 1)
    with pytest.raises(ValueError, match=r"Unexpected: \[head\.extra\]"):
        policy.update_weights({**state, "head.extra": torch.zeros(1)}, 1)
    with pytest.raises(ValueError, match=r"core\.weight \(expected shape \[8, 40\], got \[40, 8\]\)"):
        policy.update_weights({**state, "core.weight": state["core.weight"].t()}, 1)
    with pytest.raises(ValueError, match=r"value_offset \(expected dtype Double, got Float\)"):
        policy.update_weights({**state, "value_offset": state["value_offset"].float()}, 1)
    with pytest.raises(ValueError, match="expected 9 tensors"):
        policy.update_weights_list([], 1)

    assert policy.version == 0
    after, version = policy.forward(obs, rnn_states, True)
    assert version == 0
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_contract_and_runtime_errors_become_python_exceptions(model):
    class NoDictObs(nn.Module):
        def forward(self, obs: torch.Tensor, rnn_states: torch.Tensor, deterministic: bool) -> Dict[str, torch.Tensor]:
            return {"values": obs}

    with pytest.raises(ValueError, match=r"forward\(obs: Dict\[str, Tensor\]"):
        _C.Policy(archive_of(NoDictObs()))
    with pytest.raises(RuntimeError):
        _C.Policy(b"not a torchscript archive")

    policy = _C.Policy(archive_of(model))
    _, rnn_states = make_batch(4)
    with pytest.raises(RuntimeError, match="TorchScript"):  # the module indexes obs["obs"]
        policy.forward({"wrong_key": torch.zeros(4, OBS_DIM)}, rnn_states)
    with pytest.raises(TypeError):
        policy.forward({"obs": "not a tensor"}, rnn_states)
    with pytest.raises(ValueError, match="iterations"):
        policy.benchmark({"obs": torch.zeros(4, OBS_DIM)}, rnn_states, 0)


def _assert_gil_released_during(call, minimum_seconds: float) -> None:
    """Runs `call` in a thread; the main thread must keep counting well beyond what a GIL-holding call allows.

    The solo rate is measured with the same loop while a thread merely sleeps (which releases the
    GIL), under whatever load the machine has right now. Had `call` held the GIL, the main thread could
    only count before it starts and after it ends: at most a switch interval each. Released, it counts at
    over half its solo rate on an idle 2-core machine, and at a few percent when other test processes
    compete for the cores (7.9% was seen), still far above the held bound, which the check uses (x4).
    """
    solo_count, solo_seconds = count_while_alive(threading.Thread(target=time.sleep, args=(0.05,)))
    solo_rate = solo_count / solo_seconds
    count, elapsed = count_while_alive(threading.Thread(target=call))
    assert elapsed >= minimum_seconds, f"the call took only {elapsed:.3f} s; make it longer"
    expected = solo_rate * elapsed
    held_bound = solo_rate * 2 * sys.getswitchinterval()
    assert count >= max(4 * held_bound, 0.02 * expected), (
        f"the main thread counted {count} during the {elapsed:.3f} s call, {count / expected:.1%} of its "
        f"solo rate: the call held the GIL")


def test_benchmark_and_forward_release_the_gil(model):
    policy = _C.Policy(archive_of(model))
    obs, rnn_states = make_batch(64)
    policy.warmup(obs, rnn_states)
    per_call_us = policy.benchmark(obs, rnn_states, 50)
    assert per_call_us > 0.0
    iterations = max(50, int(300_000 / per_call_us))  # ~0.3 s in one call
    _assert_gil_released_during(lambda: policy.benchmark(obs, rnn_states, iterations), minimum_seconds=0.1)

    big_obs, big_rnn_states = make_batch(1 << 17)  # a single forward of tens of milliseconds
    policy.warmup(big_obs, big_rnn_states, 1)
    _assert_gil_released_during(lambda: policy.forward(big_obs, big_rnn_states, False), minimum_seconds=0.05)


def test_weight_updates_while_other_threads_run_forward_give_old_or_new_outputs(model):
    policy = _C.Policy(archive_of(model))
    obs, rnn_states = make_batch(32, seed=1)
    state_a, state_b = full_state(model), other_weights(model)
    list_b = [state_b[name] for name in policy.state_names()]
    policy.warmup(obs, rnn_states)
    reference = {0: policy.forward(obs, rnn_states, True)[0]}  # even versions carry A, odd ones B
    policy.update_weights(state_b, 1)
    reference[1] = policy.forward(obs, rnn_states, True)[0]
    assert not torch.equal(reference[0]["values"], reference[1]["values"])

    stop = threading.Event()
    problems: list[str] = []
    seen_versions: set[int] = set()

    def run_forwards():
        while not stop.is_set():
            outputs, version = policy.forward(obs, rnn_states, True)
            seen_versions.add(version)
            expected = reference[version % 2]
            if not all(torch.equal(outputs[key], expected[key]) for key in expected):
                problems.append(f"version {version}: outputs match neither weight set")

    threads = [threading.Thread(target=run_forwards) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        version, deadline = 1, time.perf_counter() + 1.0
        while time.perf_counter() < deadline or version < 20:
            version += 1
            if version % 2 == 0:
                policy.update_weights(state_a, version)
            else:
                policy.update_weights_list(list_b, version)
            time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not problems, problems[:5]
    assert any(v % 2 == 0 for v in seen_versions) and any(v % 2 == 1 for v in seen_versions)
