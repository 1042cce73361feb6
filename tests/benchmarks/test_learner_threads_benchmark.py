"""benchmarks/learner_threads.py: a round trains every learner once, both ways; the table reports each way."""

from __future__ import annotations

from benchmarks.learner_threads import WAYS, board_game_learners, synthetic_batch, table, train_round


def test_a_round_trains_every_learner_once_either_way():
    learners = board_game_learners(2)
    batches = [synthetic_batch(learner, seed) for seed, learner in enumerate(learners)]
    steps_per_iteration = int(learners[0].cfg.num_epochs) * int(learners[0].cfg.num_batches_per_epoch)
    for threaded in (False, True):
        before = [learner.train_step for learner in learners]
        assert train_round(learners, batches, threaded) > 0
        assert [learner.train_step - b for learner, b in zip(learners, before)] == [steps_per_iteration] * 2


def test_the_table_gives_each_ways_rounds_median_and_ratio():
    text = table({WAYS[0]: [1.0, 2.0, 3.0], WAYS[1]: [3.0, 4.0, 5.0]}, policies=2, torch_threads=2)
    assert "| one after another | 1.00 / 2.00 / 3.00 | 2.00 | 1.00 |" in text
    assert "| one thread each | 3.00 / 4.00 / 5.00 | 4.00 | 2.00 |" in text
