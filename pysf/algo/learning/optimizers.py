"""Adam and LAMB for the learner, without ``torch.optim``.

``torch.optim.Optimizer.__init__`` imports ``torch._dynamo`` (about 2 s on this kind of machine) through its
``_disable_dynamo`` decorator; the learner is started often (tests, benchmarks measure time from process
start), so pysf keeps its own small optimizers. ``state_dict()`` has torch's layout (``state`` by parameter
index with ``step``, ``exp_avg``, ``exp_avg_sq``; ``param_groups`` with ``params`` indices), so Sample
Factory checkpoints' optimizer state loads; the update math is torch's Adam (non-amsgrad) and Sample Factory's
LAMB (tests/algo/learning/test_optimizers.py checks both).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Iterable, List, Tuple

import torch
from torch import Tensor


class _Optimizer:
    """Parameter groups, state and (de)serialization in torch.optim's format."""

    def __init__(self, params: Iterable[Tensor], defaults: Dict[str, Any]):
        self.defaults = defaults
        self.param_groups: List[Dict[str, Any]] = [dict(defaults, params=list(params))]
        self.state: Dict[Tensor, Dict[str, Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def _params(self) -> List[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> Dict[str, Any]:
        """torch.optim layout: parameters referred to by index."""
        index = {id(p): i for i, p in enumerate(self._params())}
        groups, offset = [], 0
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = list(range(offset, offset + len(group["params"])))
            offset += len(group["params"])
            groups.append(saved)
        state = {index[id(p)]: {k: v.clone() for k, v in s.items()} for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore from ``state_dict()`` (or torch.optim.Adam's)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(own["params"]) for g, own in zip(groups, self.param_groups)
        ):
            raise ValueError("optimizer state does not match the model's parameters (was the model changed?)")
        params = self._params()
        for own, saved in zip(self.param_groups, groups):
            for key, value in saved.items():
                if key != "params":
                    own[key] = copy.deepcopy(value)
        self.state = {}
        for index, saved in state_dict["state"].items():
            p = params[int(index)]
            # Copies (never aliases of the caller's tensors): the moments with the parameter, the step count a CPU
            # float32 scalar, as torch.optim keeps it, so that reading it in step() never waits for a device.
            self.state[p] = {
                k: torch.tensor(float(v)) if k == "step" else v.to(p.device, p.dtype, copy=True) for k, v in saved.items()
            }

    def _moments(self, p: Tensor) -> Dict[str, Tensor]:
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = dict(
                step=torch.zeros((), dtype=torch.float32),
                exp_avg=torch.zeros_like(p, memory_format=torch.preserve_format),
                exp_avg_sq=torch.zeros_like(p, memory_format=torch.preserve_format),
            )
        return state

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    state = self._moments(p)
                    state["step"] += 1
                    self._update(p, state, float(state["step"]), group)

    def _update(self, p: Tensor, state: Dict[str, Tensor], step: float, group: Dict[str, Any]) -> None:
        """Update ``p`` in place from ``p.grad`` and its moments ``state``; ``step``: 1 on the first update."""
        raise NotImplementedError


class Adam(_Optimizer):
    """Adam (Kingma & Ba), torch's update: bias-corrected moments, eps added after the square root."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=False))

    def _update(self, p: Tensor, state: Dict[str, Tensor], step: float, group: Dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        grad = p.grad if not group["weight_decay"] else p.grad.add(p, alpha=group["weight_decay"])
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = (state["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(group["eps"])
        p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / bias_correction1)


class Lamb(_Optimizer):
    """LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning"), configured as Sample Factory's.

    Per tensor ``w``: ``r = m_hat / (sqrt(v_hat) + eps) + weight_decay * w`` (Adam's bias-corrected moments), then
    ``w -= lr * phi(||w||) / ||r|| * r`` with ``phi(z) = min(z, 10)`` and the trust ratio clipped to
    ``[min_trust, 1 / min_trust]`` (1 where either norm is 0). Sample Factory's learner builds its LAMB with these
    defaults (``weight_decay=1e-4``, ``min_trust=0.01``); so does pysf's.
    """

    MAX_WEIGHT_NORM = 10.0  # phi's cap: very large tensors do not take proportionally larger steps

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 1e-4,
        min_trust: float = 0.01,
    ):
        if not 0.0 < min_trust <= 1.0:
            raise ValueError(f"Lamb: min_trust must be in (0, 1], got {min_trust}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, min_trust=min_trust))

    def _update(self, p: Tensor, state: Dict[str, Tensor], step: float, group: Dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        min_trust = group["min_trust"]
        state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        m_hat = state["exp_avg"] / (1 - beta1**step)
        update = m_hat / (state["exp_avg_sq"].sqrt() / (1 - beta2**step) ** 0.5 + group["eps"])
        if group["weight_decay"]:
            update.add_(p, alpha=group["weight_decay"])
        weight_norm, update_norm = p.norm(), update.norm()
        trust_ratio = (weight_norm.clamp(max=self.MAX_WEIGHT_NORM) / update_norm).clamp(min_trust, 1.0 / min_trust)
        trust_ratio = torch.where((weight_norm > 0) & (update_norm > 0), trust_ratio, torch.ones_like(trust_ratio))
        p.add_(update * trust_ratio, alpha=-group["lr"])

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Also Sample Factory's LAMB state, whose ``step`` is an int counting the *next* step (one ahead)."""
        sf_format = any(isinstance(s.get("step"), int) for s in state_dict["state"].values())
        super().load_state_dict(state_dict)
        if sf_format:
            for state in self.state.values():
                state["step"] -= 1
