"""What a launcher run consists of (Sample Factory's ``sample_factory.launcher.run_description``).

A run module defines ``RUN_DESCRIPTION``, a :class:`RunDescription` holding :class:`Experiment` objects; each
experiment is a base command plus the parameter combinations of a :class:`ParamGrid` or :class:`ParamList`.
Every combination becomes one command line::

    <cmd> --p1=v1 --p2=v2 --experiment=<NN>_<name>_<p1 shorthand>_v1_<p2 shorthand>_v2 --train_dir=<train_dir>/<run_name>/<name>_<suffix>

so the runs of an experiment share the folder ``<train_dir>/<run_name>/<name>_<suffix>`` (``suffix`` is the
launcher's ``--experiment_suffix``, empty by default, which leaves a trailing ``_``) and each gets its own
sub-folder named after its parameters. The command lines, names and folders are those Sample Factory generates
for the same description, so sweeps started with either tool land in the same places.

A parameter's shorthand is the first letter of each ``.``/``_``/``-``-separated word but the last, then the
first three letters of the last word, joined by dots (``use_rnn`` -> ``u.rnn``, ``seed`` -> ``see``); when two
parameters of one run would get the same shorthand, the later one takes more letters of its last word.
"""

from __future__ import annotations

import itertools
import os
import re
from os.path import join
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from pysf.utils.utils import log

__all__ = ["ParamGenerator", "ParamList", "ParamGrid", "Experiment", "RunDescription"]

ParamDict = Dict[str, Any]
# A grid entry: ("lr", [1e-3, 1e-4]) or, for parameters that vary together, (("a", "b"), [(1, 2), (3, 4)]).
GridEntry = Tuple[Union[str, Tuple[str, ...]], Sequence[Any]]

# Sample Factory warns about experiment names longer than this (they make unwieldy folder names).
_LONG_NAME_WARNING_CHARS = 100
_SHORTHAND_LAST_WORD_CHARS = 3
_PARAM_WORD_SEPARATORS = "[._-]"


class ParamGenerator:
    """Base class of parameter generators: ``generate_params`` yields one dict of parameters per run."""

    def generate_params(self, randomize: bool = True) -> Iterator[ParamDict]:
        """Yield the parameter combinations (in random order when ``randomize``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement generate_params()")


def _shuffled(items: List[Any], randomize: bool) -> List[Any]:
    # numpy's global generator, as Sample Factory uses: np.random.seed() makes the order reproducible, and the
    # order is the one Sample Factory draws for the same seed. Shuffling indices (not the items) keeps the
    # values' Python types (numpy would turn a mixed str/int combination into strings).
    if not randomize:
        return list(items)
    return [items[i] for i in np.random.permutation(len(items))]


class ParamList(ParamGenerator):
    """An explicit list of parameter combinations (dicts), e.g. for combinations a grid cannot express."""

    def __init__(self, combinations: Sequence[Mapping[str, Any]]):
        combinations = list(combinations)
        for index, combination in enumerate(combinations):
            if not isinstance(combination, Mapping):
                raise TypeError(
                    f"ParamList: combination {index} is a {type(combination).__name__}, expected a dict of "
                    f"parameter name -> value, e.g. ParamList([{{'seed': 1, 'env': 'CartPole-v1'}}])"
                )
        self.combinations = combinations

    def generate_params(self, randomize: bool = True) -> Iterator[ParamDict]:
        """Yield the combinations, shuffled when ``randomize`` (the default, as in Sample Factory)."""
        yield from _shuffled(self.combinations, randomize)


class ParamGrid(ParamGenerator):
    """Grid search: every combination of the values of each parameter.

    ``grid_tuples`` is a list of ``(name, values)`` in the order the parameters should appear in commands and
    names; the first parameter varies slowest. A name may be a tuple of names whose values are tuples, for
    parameters that must change together: ``(("use_rnn", "recurrence"), [(False, 1), (True, 16)])``.
    """

    def __init__(self, grid_tuples: Iterable[GridEntry]):
        self.grid: Dict[Union[str, Tuple[str, ...]], List[Any]] = {}
        for entry in grid_tuples:
            try:
                name, values = entry
            except (TypeError, ValueError):
                raise TypeError(
                    f"ParamGrid: each entry must be a (name, values) pair, got {entry!r}, "
                    f"e.g. ParamGrid([('seed', [1, 2]), ('env', ['CartPole-v1'])])"
                ) from None
            self.grid[name] = self._checked_values(name, values)

    @staticmethod
    def _checked_values(name: Union[str, Tuple[str, ...]], values: Any) -> List[Any]:
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise TypeError(
                f"ParamGrid: the values of {name!r} must be a list of values, got {values!r} "
                f"(write [{values!r}] for a single value)"
            )
        values = list(values)
        if not values:
            raise ValueError(f"ParamGrid: {name!r} has no values, so the grid would have no combinations")
        if isinstance(name, (list, tuple)):
            for value in values:
                if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != len(name):
                    raise ValueError(
                        f"ParamGrid: the parameters {tuple(name)!r} vary together, so each of their values must be "
                        f"a tuple of {len(name)} values; got {value!r}"
                    )
        return values

    def _all_combinations(self) -> List[ParamDict]:
        combinations = []
        for values in itertools.product(*self.grid.values()):
            combination: ParamDict = {}
            for name, value in zip(self.grid.keys(), values):
                if isinstance(name, (list, tuple)):
                    combination.update(zip(name, value))
                else:
                    combination[name] = value
            combinations.append(combination)
        return combinations

    def generate_params(self, randomize: bool = False) -> Iterator[ParamDict]:
        """Yield every combination, in grid order unless ``randomize``. An empty grid yields nothing."""
        if not self.grid:
            return
        yield from _shuffled(self._all_combinations(), randomize)


def _param_shorthand(param: str, taken: Sequence[str]) -> str:
    """The abbreviation of ``param`` used in experiment names (see the module docstring), avoiding ``taken``."""
    words = re.split(_PARAM_WORD_SEPARATORS, param)
    last_word = words[-1]
    initials = [word[0] for word in words[:-1] if word]  # an empty word (e.g. from "a__b") has no initial

    def shorthand_with(num_chars: int) -> str:
        return ".".join(initials + [last_word[:num_chars]])

    num_chars = min(_SHORTHAND_LAST_WORD_CHARS, len(last_word))
    shorthand = shorthand_with(num_chars)
    while num_chars <= len(last_word) and shorthand in taken:
        num_chars += 1
        shorthand = shorthand_with(num_chars)
    return shorthand


class Experiment:
    """One base command and the parameter combinations to run it with.

    Args:
        name: base name of the runs (their folder is ``<run_name>/<name>_<suffix>``).
        cmd: the command the parameters are appended to, e.g. ``"python -m pysf.train --env=CartPole-v1"``; a
            leading ``python``/``python3`` is replaced by the launcher's own interpreter.
        param_generator: parameter dicts, usually ``ParamGrid(...).generate_params()``; none runs ``cmd`` once.
        env_vars: extra environment variables for the runs' processes.
    """

    def __init__(
        self,
        name: str,
        cmd: str,
        param_generator: Iterable[Mapping[str, Any]] = (),
        env_vars: Optional[Mapping[str, Any]] = None,
    ):
        if not isinstance(name, str) or not name:
            raise ValueError(f"Experiment: name must be a non-empty string, got {name!r}")
        if not isinstance(cmd, str) or not cmd.strip():
            raise ValueError(f"Experiment {name!r}: cmd must be a non-empty command line, got {cmd!r}")
        self.base_name = name
        self.cmd = cmd
        self.params: List[Mapping[str, Any]] = list(param_generator)
        self.env_vars = env_vars

    def generate_experiments(
        self, experiment_arg_name: str, customize_experiment_name: bool, param_prefix: str
    ) -> Iterator[Tuple[str, str]]:
        """Yield ``(command line, experiment name)`` for each parameter combination (once when there are none).

        The name is ``<NN>_<base name>`` followed, when ``customize_experiment_name``, by ``_<shorthand>_<value>``
        for each parameter; it is passed to the command as ``<experiment_arg_name>=<name>``.
        """
        combinations: List[Mapping[str, Any]] = self.params if self.params else [{}]
        for experiment_idx, params in enumerate(combinations):
            cmd_tokens = [self.cmd]
            name_tokens = [self.base_name]
            shorthands: List[str] = []
            for param, value in params.items():
                cmd_tokens.append(f"{param_prefix}{param}={value}")
                shorthand = _param_shorthand(str(param), shorthands)
                shorthands.append(shorthand)
                name_tokens.append(f"{shorthand}_{value}")

            if customize_experiment_name:
                experiment_name = f"{experiment_idx:02d}_" + "_".join(name_tokens)
                if len(experiment_name) > _LONG_NAME_WARNING_CHARS:
                    log.warning("Experiment name is extra long! (%d characters)", len(experiment_name))
            else:
                experiment_name = f"{experiment_idx:02d}_{self.base_name}"

            cmd_tokens.append(f"{experiment_arg_name}={experiment_name}")
            yield " ".join(cmd_tokens), experiment_name


class RunDescription:
    """A launcher run: its name (the root folder under ``--train_dir``) and its experiments.

    Args:
        run_name: name of the run and of its root folder.
        experiments: the :class:`Experiment` objects to run.
        experiment_arg_name: the flag that names a run for the training script (``--experiment``).
        experiment_dir_arg_name: the flag that sets the script's root folder (``--train_dir``).
        customize_experiment_name: add the parameters to experiment names (``00_name_see_1``), or number them
            only (``00_name``).
        param_prefix: written before each parameter name (``--``; e.g. ``""`` for Hydra-style ``key=value``).

    ``experiment_suffix`` (set by the launcher from ``--experiment_suffix``) is appended to each experiment's
    folder name.
    """

    def __init__(
        self,
        run_name: str,
        experiments: Sequence[Experiment],
        experiment_arg_name: str = "--experiment",
        experiment_dir_arg_name: str = "--train_dir",
        customize_experiment_name: bool = True,
        param_prefix: str = "--",
    ):
        if not isinstance(run_name, str) or not run_name:
            raise ValueError(f"RunDescription: run_name must be a non-empty string, got {run_name!r}")
        experiments = list(experiments)
        seen: Dict[str, int] = {}
        for index, experiment in enumerate(experiments):
            if not isinstance(experiment, Experiment):
                raise TypeError(
                    f"RunDescription {run_name!r}: experiments[{index}] is a {type(experiment).__name__}, "
                    f"expected an Experiment"
                )
            if experiment.base_name in seen:
                # Same base name -> same folder and the same run names: the runs would resume each other.
                raise ValueError(
                    f"RunDescription {run_name!r}: experiments[{seen[experiment.base_name]}] and "
                    f"experiments[{index}] are both named {experiment.base_name!r}, so their runs would share "
                    f"experiment folders; give each Experiment its own name"
                )
            seen[experiment.base_name] = index

        self.run_name = run_name
        self.experiments: List[Experiment] = experiments
        self.experiment_suffix = ""
        self.experiment_arg_name = experiment_arg_name
        self.experiment_dir_arg_name = experiment_dir_arg_name
        self.customize_experiment_name = customize_experiment_name
        self.param_prefix = param_prefix

    def experiment_root_dir(self, experiment: Experiment) -> str:
        """``<run_name>/<experiment name>_<suffix>``, relative to the train dir."""
        return join(self.run_name, f"{experiment.base_name}_{self.experiment_suffix}")

    def generate_experiments(
        self, train_dir: str, makedirs: bool = True
    ) -> Iterator[Tuple[str, str, str, Optional[Mapping[str, Any]]]]:
        """Yield ``(command line, experiment name, root dir, env vars)`` for every run of every experiment.

        ``root dir`` is relative to ``train_dir``; the command gets ``<experiment_dir_arg_name>=<train_dir>/<root
        dir>``. With ``makedirs`` the folders are created as they are generated.
        """
        for experiment in self.experiments:
            root_dir = self.experiment_root_dir(experiment)
            experiment_dir = join(train_dir, root_dir)
            for experiment_cmd, experiment_name in experiment.generate_experiments(
                self.experiment_arg_name, self.customize_experiment_name, self.param_prefix
            ):
                if makedirs:
                    os.makedirs(experiment_dir, exist_ok=True)
                experiment_cmd += f" {self.experiment_dir_arg_name}={experiment_dir}"
                yield experiment_cmd, experiment_name, root_dir, experiment.env_vars
