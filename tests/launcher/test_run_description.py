"""pysf.launcher.run_description / launcher_utils / run's parser: Sample Factory's command lines, experiment names
and folder layout for the same run description."""

from __future__ import annotations

import logging
import os
import random
from os.path import join

import numpy as np
import pytest

from pysf.launcher.launcher_utils import seeds
from pysf.launcher.run import UnsupportedBackendError, launcher_argparser, main
from pysf.launcher.run_description import Experiment, ParamGrid, ParamList, RunDescription


# ---- ParamList / ParamGrid ---------------------------------------------------------------------------------


def test_param_list_keeps_order_without_randomize():
    combos = [{"p1": 1, "p2": "a"}, {"p2": "b", "p4": "test"}, {"p1": 3}]
    assert list(ParamList(combos).generate_params(randomize=False)) == combos


def test_param_list_randomize_is_a_seeded_permutation_that_keeps_value_types():
    combos = [{"seed": i, "env": f"e{i}"} for i in range(8)]
    np.random.seed(3)
    first = list(ParamList(combos).generate_params())  # randomize=True is ParamList's default
    np.random.seed(3)
    second = list(ParamList(combos).generate_params(randomize=True))
    assert first == second
    assert first != combos  # 8! orders: a seeded shuffle that returns the identity would be a bug here
    assert sorted(first, key=lambda c: c["seed"]) == combos
    assert all(type(c["seed"]) is int for c in first)


def test_param_list_rejects_non_dicts():
    with pytest.raises(TypeError, match="combination 1"):
        ParamList([{"a": 1}, ("a", 1)])


def test_param_grid_order_first_parameter_varies_slowest():
    grid = ParamGrid([("p1", [0, 1]), ("p2", ["a", "b", "c"]), ("p3", [None, {}])])
    combos = list(grid.generate_params(randomize=False))
    assert len(combos) == 12
    assert combos[0] == {"p1": 0, "p2": "a", "p3": None}
    assert combos[1] == {"p1": 0, "p2": "a", "p3": {}}
    assert combos[2] == {"p1": 0, "p2": "b", "p3": None}
    assert combos[-2] == {"p1": 1, "p2": "c", "p3": None}
    assert combos[-1] == {"p1": 1, "p2": "c", "p3": {}}
    assert [list(c) for c in combos] == [["p1", "p2", "p3"]] * 12  # key order = grid order (command order)


def test_param_grid_default_is_not_randomized_and_randomize_is_a_permutation():
    grid = ParamGrid([("seed", [1, 2, 3, 4]), ("env", ["a", "b"])])
    ordered = list(grid.generate_params())
    np.random.seed(0)
    shuffled = list(grid.generate_params(randomize=True))
    assert ordered == list(grid.generate_params(randomize=False))
    assert shuffled != ordered
    assert sorted(shuffled, key=lambda c: (c["seed"], c["env"])) == ordered
    assert all(type(c["seed"]) is int for c in shuffled)  # not numpy's str conversion of a mixed row


def test_param_grid_parameters_that_vary_together():
    grid = ParamGrid([("seed", [11, 22]), (("serial_mode", "async_rl"), ([True, False], [False, True]))])
    assert list(grid.generate_params()) == [
        {"seed": 11, "serial_mode": True, "async_rl": False},
        {"seed": 11, "serial_mode": False, "async_rl": True},
        {"seed": 22, "serial_mode": True, "async_rl": False},
        {"seed": 22, "serial_mode": False, "async_rl": True},
    ]
    np.random.seed(1)
    assert len(list(grid.generate_params(randomize=True))) == 4  # ragged rows: numpy could not shuffle these


def test_empty_param_grid_yields_nothing_and_the_experiment_runs_once():
    assert list(ParamGrid([]).generate_params()) == []
    cmds = list(Experiment("base", "python train.py", ParamGrid([]).generate_params()).generate_experiments("--experiment", True, "--"))
    assert cmds == [("python train.py --experiment=00_base", "00_base")]


@pytest.mark.parametrize(
    "grid_tuples, error, match",
    [
        ([("env", "CartPole-v1")], TypeError, r"write \['CartPole-v1'\]"),
        ([("seed", 5)], TypeError, "must be a list of values"),
        ([("seed", [])], ValueError, "has no values"),
        ([(("a", "b"), [(1, 2), (3,)])], ValueError, "tuple of 2 values"),
        ([(("a", "b"), ["xy"])], ValueError, "tuple of 2 values"),
        (["seed"], TypeError, r"\(name, values\) pair"),
    ],
)
def test_param_grid_rejects_malformed_entries(grid_tuples, error, match):
    with pytest.raises(error, match=match):
        ParamGrid(grid_tuples)


# ---- Experiment: command lines and names -------------------------------------------------------------------


def _generate(experiment: Experiment, customize: bool = True, prefix: str = "--"):
    return list(experiment.generate_experiments("--experiment", customize, prefix))


def test_experiment_command_and_name_are_sample_factorys():
    params = ParamGrid([("seed", [1111, 2222]), ("env", ["ant"]), ("use_rnn", [False, True]), ("num_epochs", [5])])
    cli = "python -m pysf.train --with_wandb=True"
    generated = _generate(Experiment("v083_brax", cli, params.generate_params()))
    assert [name for _, name in generated] == [
        "00_v083_brax_see_1111_env_ant_u.rnn_False_n.epo_5",
        "01_v083_brax_see_1111_env_ant_u.rnn_True_n.epo_5",
        "02_v083_brax_see_2222_env_ant_u.rnn_False_n.epo_5",
        "03_v083_brax_see_2222_env_ant_u.rnn_True_n.epo_5",
    ]
    assert generated[1][0] == (
        "python -m pysf.train --with_wandb=True --seed=1111 --env=ant --use_rnn=True --num_epochs=5 "
        "--experiment=01_v083_brax_see_1111_env_ant_u.rnn_True_n.epo_5"
    )


@pytest.mark.parametrize(
    "params, expected_name",
    [
        # short names are kept whole; every separator counts (".", "_", "-")
        ({"lr": 0.1, "env": "x"}, "00_t_lr_0.1_env_x"),
        ({"model.encoder-type": "conv"}, "00_t_m.e.typ_conv"),
        # the second parameter with the same shorthand takes more letters of its last word
        ({"num_workers": 1, "num_worlds": 2}, "00_t_n.wor_1_n.worl_2"),
        ({"a_bcd": 1, "a_bce": 2, "a_bcdf": 3}, "00_t_a.bcd_1_a.bce_2_a.bcdf_3"),
        # nothing left to add: the shorthands stay equal, as in Sample Factory
        ({"a.b": 1, "a-b": 2}, "00_t_a.b_1_a.b_2"),
        # an empty word (double separator) has no initial
        ({"x__y": 1}, "00_t_x.y_1"),
        ({"flag": [1, 2]}, "00_t_fla_[1, 2]"),
    ],
)
def test_parameter_shorthands(params, expected_name):
    [(cmd, name)] = _generate(Experiment("t", "run", [params]))
    assert name == expected_name
    assert cmd.endswith(f"--experiment={expected_name}")


def test_uncustomized_names_are_numbered_base_names_and_param_prefix_is_used():
    params = [{"seed": 1}, {"seed": 2}]
    generated = _generate(Experiment("exp", "python app.py", params), customize=False, prefix="")
    assert generated == [
        ("python app.py seed=1 --experiment=00_exp", "00_exp"),
        ("python app.py seed=2 --experiment=01_exp", "01_exp"),
    ]


def test_long_experiment_names_are_warned_about(caplog):
    params = [{"a_very_long_parameter_name_number_one": "x" * 40, "another_long_parameter_name": "y" * 40}]
    with caplog.at_level(logging.WARNING, logger="rl"):
        [(_, name)] = _generate(Experiment("long_base_name", "run", params))
    assert len(name) > 100
    assert "extra long" in caplog.text


def test_experiment_rejects_empty_name_or_command():
    with pytest.raises(ValueError, match="name"):
        Experiment("", "python x.py")
    with pytest.raises(ValueError, match="cmd"):
        Experiment("x", "  ")


# ---- RunDescription: folders -------------------------------------------------------------------------------


def test_run_description_layout_and_flags(tmp_path):
    params = ParamGrid([("p1", [3.14, 2.71]), ("p2", ["a", "b", "c"])])
    experiments = [
        Experiment("test1", "python super_rl1.py", params.generate_params()),
        Experiment("test2", "python super_rl2.py", params.generate_params(), env_vars={"OMP_NUM_THREADS": 1}),
    ]
    train_dir = str(tmp_path / "td")
    generated = list(RunDescription("test_run", experiments).generate_experiments(train_dir))
    assert len(generated) == 12
    cmd, name, root_dir, env_vars = generated[0]
    assert (name, root_dir, env_vars) == ("00_test1_p1_3.14_p2_a", join("test_run", "test1_"), None)
    assert cmd == f"python super_rl1.py --p1=3.14 --p2=a --experiment=00_test1_p1_3.14_p2_a --train_dir={train_dir}/test_run/test1_"
    cmd, name, root_dir, env_vars = generated[-1]
    assert (name, root_dir, env_vars) == ("05_test2_p1_2.71_p2_c", join("test_run", "test2_"), {"OMP_NUM_THREADS": 1})
    assert sorted(os.listdir(join(train_dir, "test_run"))) == ["test1_", "test2_"]


def test_run_description_suffix_custom_flag_names_and_no_makedirs(tmp_path):
    rd = RunDescription(
        "run", [Experiment("e", "python x.py", [{"seed": 1}])],
        experiment_arg_name="--experiment_tst", experiment_dir_arg_name="--dir",
    )
    rd.experiment_suffix = "slurm"
    [(cmd, name, root_dir, _)] = list(rd.generate_experiments(str(tmp_path), makedirs=False))
    assert cmd == f"python x.py --seed=1 --experiment_tst=00_e_see_1 --dir={tmp_path}/run/e_slurm"
    assert root_dir == join("run", "e_slurm")
    assert not os.path.exists(tmp_path / "run")


def test_run_description_rejects_experiments_sharing_a_name():
    with pytest.raises(ValueError, match=r"experiments\[0\] and experiments\[2\] are both named 'a'"):
        RunDescription("r", [Experiment("a", "x"), Experiment("b", "x"), Experiment("a", "y")])
    with pytest.raises(TypeError, match="expected an Experiment"):
        RunDescription("r", ["python x.py"])


# ---- seeds ---------------------------------------------------------------------------------------------------


def test_seeds_are_seven_digit_and_follow_random_seed():
    random.seed(42)
    first = seeds(50)
    random.seed(42)
    assert seeds(50) == first
    assert len(first) == 50 and len(set(first)) > 45
    assert all(1_000_000 <= s < 9_999_999 for s in first)
    assert seeds(0) == []
    with pytest.raises(ValueError):
        seeds(-1)


# ---- the launcher's flags ------------------------------------------------------------------------------------


def test_launcher_flags_and_defaults_are_sample_factorys():
    args = launcher_argparser([]).parse_args([])
    assert vars(args) == {
        "train_dir": "./train_dir", "run": None, "backend": "processes", "pause_between": 1,
        "experiment_suffix": "", "num_gpus": 1, "max_parallel": 4, "experiments_per_gpu": -1,
    }
    argv = ["--run=a.b", "--max_parallel=2", "--experiments_per_gpu=3", "--num_gpus=2", "--pause_between=0"]
    args = launcher_argparser(argv).parse_args(argv)
    assert (args.run, args.max_parallel, args.experiments_per_gpu, args.num_gpus, args.pause_between) == ("a.b", 2, 3, 2, 0)


def test_unknown_backend_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exc_info:
        launcher_argparser(["--backend=kubernetes"])
    assert exc_info.value.code == 2
    assert "invalid choice: 'kubernetes' (choose from 'processes', 'slurm', 'ngc')" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["slurm", "ngc"])
def test_slurm_and_ngc_stop_with_a_message(backend, caplog):
    with pytest.raises(UnsupportedBackendError, match=f"--backend={backend} .* is not supported by pysf yet"):
        launcher_argparser([f"--backend={backend}"])
    # main() says so before parsing the back-end's own flags (which it would otherwise reject)
    with caplog.at_level(logging.ERROR):
        status = main([f"--backend={backend}", "--run=whatever", f"--{backend}_print_only=True"])
    assert status == 1
    assert "Use --backend=processes" in caplog.text


def test_main_reports_a_missing_or_unusable_run_module(tmp_path, monkeypatch, caplog):
    (tmp_path / "no_description.py").write_text("X = 1\n")
    (tmp_path / "broken_import.py").write_text("import module_that_does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.ERROR):
        assert main(["--run=package_that_does_not_exist.experiments"]) == 1
        assert "Could not import the run module 'package_that_does_not_exist.experiments'" in caplog.text
        assert main(["--run=no_description"]) == 1
        assert "defines no RUN_DESCRIPTION" in caplog.text
        assert main([]) == 1
        assert "--run is required" in caplog.text
    # an import that fails inside the run module keeps its traceback
    with pytest.raises(ModuleNotFoundError, match="module_that_does_not_exist_anywhere"):
        main(["--run=broken_import"])
