"""Adam and LAMB for the learner, without ``torch.optim``.

``torch.optim.Optimizer.__init__`` imports ``torch._dynamo`` (about 2 s on this kind of machine) through its
``_disable_dynamo`` decorator; the learner is started often (tests, benchmarks measure time from process
start), so pysf keeps its own small optimizers. ``state_dict()`` has torch's layout (``state`` by parameter
index with ``step``, ``exp_avg``, ``exp_avg_sq``; ``param_groups`` with ``params`` indices), so Sample
Factory checkpoints' optimizer state loads, and the update math is torch's Adam (non-amsgrad) and LAMB.
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
            self.state[p] = {
                k: (v.to(p.device, p.dtype if k != "step" else torch.float32) if isinstance(v, Tensor) else torch.tensor(float(v)))
                for k, v in saved.items()
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

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter with a gradient."""
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if not group["weight_decay"] else p.grad.add(p, alpha=group["weight_decay"])
                state = self._moments(p)
                state["step"] += 1
                step = float(state["step"])
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1**step
                bias_correction2_sqrt = (1 - beta2**step) ** 0.5
                denom = (state["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(group["eps"])
                p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / bias_correction1)


class Lamb(_Optimizer):
    """LAMB (You et al. 2019): Adam's step scaled per tensor by the trust ratio ``||w|| / ||step||``."""

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self) -> None:
        """One LAMB update."""
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._moments(p)
                state["step"] += 1
                step = float(state["step"])
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                update = (state["exp_avg"] / (1 - beta1**step)) / ((state["exp_avg_sq"] / (1 - beta2**step)).sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                weight_norm, update_norm = p.norm(), update.norm()
                trust_ratio = torch.where(
                    (weight_norm > 0) & (update_norm > 0), weight_norm / update_norm, torch.ones_like(weight_norm)
                )
                p.add_(update * trust_ratio, alpha=-group["lr"])
