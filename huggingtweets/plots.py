"""The loss plot: train and validation loss against the step, as the app draws it while
training and the demo notebook after.

    from IPython.display import Image
    from huggingtweets.plots import loss_png
    metrics = ht.train(settings)
    Image(loss_png(metrics["log_history"], metrics["eval_loss_before"]))

Matplotlib only, imported when a plot is drawn, and no pyplot: its global state is not
safe in the app's background thread.
"""

from __future__ import annotations

import io
from typing import Any


def loss_history(log_history: list[dict[str, Any]], eval_loss_before: float | None) -> list[dict[str, Any]]:
    """`log_history` with the validation loss before training as its step-0 point: train()
    measures it before the first step, but the Trainer's history starts at step 1."""
    history = list(log_history)
    if eval_loss_before is not None and not any("eval_loss" in e and e.get("step") == 0 for e in history):
        history.insert(0, {"step": 0, "eval_loss": eval_loss_before})
    return history


def loss_png(log_history: list[dict[str, Any]], eval_loss_before: float | None = None) -> bytes:
    """Train and validation loss against the step, as a PNG; `eval_loss_before` (train()'s
    metrics have it) adds the step-0 point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    history = loss_history(log_history, eval_loss_before)
    train = [(e["step"], e["loss"]) for e in history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in history if "eval_loss" in e and "step" in e]
    fig = Figure(figsize=(6.4, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train), label="train loss", color="#1f77b4", linewidth=1.2)
    if evals:
        ax.plot(*zip(*evals), "o-", label="validation loss", color="#d62728", linewidth=1.2, markersize=4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (cross-entropy)")
    ax.set_title("Training: train and validation loss")
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend(loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
