"""Trainer callbacks for `train`: a progress bar with the loss beside it, and saves not too often.
A module of its own because it imports transformers, which `train` loads only when training starts."""

from __future__ import annotations

import time
from typing import Any, Callable

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback


class QuietProgress(ProgressCallback):
    """Trainer's progress bar, with the latest loss beside it instead of a printed dict a step;
    each log entry also goes to `listener` (the notebook app's live loss plot)."""

    def __init__(self, listener: Callable[[dict[str, Any]], None] | None = None):
        super().__init__()
        self.listener = listener

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.3f}")
        if self.listener and logs:
            self.listener({**logs, "step": state.global_step, "max_steps": state.max_steps})


class SaveNotTooOften(TrainerCallback):
    """Keep a save Trainer plans at an evaluation only once `minutes` have passed since the
    last: a 135M model's checkpoint with its optimizer state is 1.6 GB, 16 s of a 105 s CPU run."""

    def __init__(self, minutes: float):
        self.minutes = minutes
        self.last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save:
            if time.perf_counter() - self.last < self.minutes * 60:
                control.should_save = False
            else:
                self.last = time.perf_counter()
