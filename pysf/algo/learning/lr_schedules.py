"""Learning-rate schedules (``--lr_schedule``, Sample Factory's ``LearningRateScheduler`` family).

One interface: the learner asks ``before_sgd_step`` for the rate of the coming step and reports the mean KL
divergence to the behaviour policy after each minibatch (``after_minibatch``) and each epoch's minibatch KLs
(``after_epoch``); each hook returns the new rate. A schedule reads the KL (a host sync) only where it uses it.
"""

from __future__ import annotations

from typing import Dict, Sequence, Type

import numpy as np
from torch import Tensor

from pysf.utils.typing import Config


class LearningRateSchedule:
    """``constant``: ``--learning_rate`` throughout (a checkpoint's rate when resumed)."""

    def __init__(self, cfg: Config):
        pass

    def before_sgd_step(self, lr: float, train_step: int) -> float:
        """The rate for the SGD step that makes ``train_step + 1``."""
        return lr

    def after_minibatch(self, lr: float, kl: Tensor) -> float:
        """After an SGD step; ``kl``: that minibatch's mean KL(pi_new || pi_old) over valid samples (0-dim)."""
        return lr

    def after_epoch(self, lr: float, kls: Sequence[Tensor]) -> float:
        """After a pass over the batch; ``kls``: the mean KL of each of its minibatches."""
        return lr


class KlAdaptiveSchedule(LearningRateSchedule):
    """Divide the rate by 1.5 when the KL exceeds twice ``--lr_schedule_kl_threshold``, multiply it by 1.5 when
    the KL is below half of it, within ``[--lr_adaptive_min, --lr_adaptive_max]``."""

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.kl_threshold = float(cfg.lr_schedule_kl_threshold)
        self.min_lr = float(cfg.lr_adaptive_min)
        self.max_lr = float(cfg.lr_adaptive_max)

    def adapt(self, lr: float, kl: float) -> float:
        """The rate after observing the mean KL ``kl``."""
        if kl > 2.0 * self.kl_threshold:
            return max(lr / 1.5, self.min_lr)
        if kl < 0.5 * self.kl_threshold:
            return min(lr * 1.5, self.max_lr)
        return lr


class KlAdaptivePerMinibatch(KlAdaptiveSchedule):
    """``kl_adaptive_minibatch``: adapt after every SGD step to that minibatch's KL."""

    def after_minibatch(self, lr: float, kl: Tensor) -> float:
        return self.adapt(lr, float(kl))


class KlAdaptivePerEpoch(KlAdaptiveSchedule):
    """``kl_adaptive_epoch``: adapt after every epoch to the mean of its minibatches' KLs."""

    def after_epoch(self, lr: float, kls: Sequence[Tensor]) -> float:
        if not kls:
            return lr
        return self.adapt(lr, float(np.mean([float(kl) for kl in kls])))


class LinearDecay(LearningRateSchedule):
    """``linear_decay``: ``--learning_rate`` down to 0 over the SGD steps that ``--train_for_env_steps`` makes."""

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.initial_lr = float(cfg.learning_rate)
        self.total_sgd_steps = max(1, int(cfg.train_for_env_steps) // int(cfg.batch_size) * int(cfg.num_epochs))

    def before_sgd_step(self, lr: float, train_step: int) -> float:
        return self.initial_lr * max(0.0, 1.0 - train_step / self.total_sgd_steps)


LR_SCHEDULES: Dict[str, Type[LearningRateSchedule]] = {
    "constant": LearningRateSchedule,
    "kl_adaptive_minibatch": KlAdaptivePerMinibatch,
    "kl_adaptive_epoch": KlAdaptivePerEpoch,
    "linear_decay": LinearDecay,
}


def make_lr_schedule(cfg: Config) -> LearningRateSchedule:
    """The schedule ``--lr_schedule`` names."""
    schedule = LR_SCHEDULES.get(cfg.lr_schedule)
    if schedule is None:
        raise ValueError(f"Unknown --lr_schedule={cfg.lr_schedule!r}: use one of {tuple(LR_SCHEDULES)}")
    return schedule(cfg)
