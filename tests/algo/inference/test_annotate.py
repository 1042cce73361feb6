"""pysf supplies component contracts' types to unannotated user code, on a copy, for TorchScript."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from torch import nn

from pysf.algo.inference.annotate import (
    ANNOTATED_FILE_SUFFIX,
    annotated_copy,
    forget_compiled_classes,
    supply_contract_annotations,
    torchscript_type_source,
)
from pysf.cfg.arguments import default_cfg
from pysf.model.encoder import Encoder

CFG = default_cfg(env="CartPole-v1")


def script(module: nn.Module):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        return torch.jit.script(module)


class TensorEncoder(Encoder):
    """A nested encoder of one tensor: must keep TorchScript's Tensor default."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(x)


class DictEncoder(Encoder):
    """Top-level style: receives the observation dict, written without annotations; helper with defaults."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.inner = TensorEncoder(cfg)

    def forward(self, obs_dict):
        return self.scaled(obs_dict["obs"], obs_dict)

    def scaled(self, x, extras, double=False, offset=0.0, mask=None):
        y = self.inner(x) + offset + extras["obs"].sum()
        if double:
            y = y * 2
        if mask is not None:
            y = y * mask
        return y


class Wrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = DictEncoder(CFG)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder(obs)


def test_dict_users_get_dict_types_and_tensor_encoders_keep_theirs():
    model = Wrapper()
    annotated = supply_contract_annotations(model)
    assert annotated == ["encoder.forward", "encoder.scaled"]  # not encoder.inner: it takes one tensor
    scripted = script(model)
    obs = {"obs": torch.ones(2, 4)}
    assert torch.allclose(scripted(obs), Wrapper.forward(model, obs))
    assert "Dict(str, Tensor)" in str(scripted.encoder.forward.schema)
    helper = str(scripted.encoder.scaled.schema)
    assert "Dict(str, Tensor) extras" in helper and "bool double=False" in helper and "Tensor? mask=None" in helper


def test_the_users_classes_stay_as_written():
    model = Wrapper()
    supply_contract_annotations(model)
    assert type(model.encoder) is not DictEncoder and isinstance(model.encoder, DictEncoder)
    params = inspect.signature(DictEncoder.forward).parameters
    assert params["obs_dict"].annotation is inspect.Parameter.empty
    assert type(Wrapper().encoder) is DictEncoder


def test_closures_defaults_and_line_numbers_are_kept():
    factor = 3

    def forward(self, x, flag=True):
        return x * factor if flag else x

    copy = annotated_copy(forward, {1: "torch.Tensor", 2: "bool"})
    assert copy(None, 2) == 6 and copy(None, 2, False) == 2
    assert copy.__code__.co_firstlineno == forward.__code__.co_firstlineno
    assert copy.__code__.co_filename == __file__ + ANNOTATED_FILE_SUFFIX
    lines, first = inspect.getsourcelines(copy)
    assert first == forward.__code__.co_firstlineno and "flag: bool=True" in lines[0] and "x: torch.Tensor" in lines[0]


class FailsOnLine(Encoder):
    def __init__(self, cfg):
        super().__init__(cfg)

    def forward(self, obs_dict):  # ünïcode before the parameter list must not shift the edit
        value = obs_dict["obs"]
        return value.no_such_method()


def test_errors_point_at_the_users_line_and_a_retry_reports_the_same():
    messages = []
    for _ in range(2):
        model = Wrapper()
        model.encoder = FailsOnLine(CFG)
        supply_contract_annotations(model)
        with pytest.raises(RuntimeError) as error:
            script(model)
        forget_compiled_classes(model)
        messages.append(str(error.value))
    line = inspect.getsourcelines(FailsOnLine.forward)[1] + 2
    assert f'{__file__}{ANNOTATED_FILE_SUFFIX}", line {line}' in messages[0]
    assert "no_such_method" in messages[0] and messages[0] == messages[1]


def test_type_spelling():
    from typing import Dict, List, Optional, Tuple

    assert torchscript_type_source(Dict[str, torch.Tensor]) == "Dict[str, torch.Tensor]"
    assert torchscript_type_source(Tuple[torch.Tensor, torch.Tensor]) == "Tuple[torch.Tensor, torch.Tensor]"
    assert torchscript_type_source(Optional[torch.Tensor]) == "Optional[torch.Tensor]"
    assert torchscript_type_source(List[int]) == "List[int]"
    with pytest.raises(TypeError):
        torchscript_type_source(set)
