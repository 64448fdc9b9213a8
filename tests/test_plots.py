"""The loss plot the app draws while training and the demo notebook draws after: a library
function that needs matplotlib only, never ipywidgets."""

import subprocess
import sys

from huggingtweets.plots import loss_history, loss_png

HISTORY = [{"step": 1, "loss": 4.0}, {"step": 2, "loss": 3.5}, {"step": 2, "eval_loss": 3.9},
           {"step": 3, "loss": 3.1}, {"step": 4, "loss": 2.9}, {"step": 4, "eval_loss": 3.6}]


def test_the_evaluation_before_training_is_the_plot_s_step_0():
    history = loss_history(HISTORY, 4.4)
    assert history[0] == {"step": 0, "eval_loss": 4.4} and history[1:] == HISTORY
    assert loss_history(history, 4.4) == history  # once only, however often it is drawn
    assert loss_history(HISTORY, None) == HISTORY
    assert HISTORY[0] == {"step": 1, "loss": 4.0}  # the caller's list is left as it was


def test_the_plot_is_a_png_drawn_without_ipywidgets_or_pyplot():
    code = ("import sys; from huggingtweets.plots import loss_png; "
            f"png = loss_png({HISTORY!r}, 4.4); "
            "print(png[:4] == b'\\x89PNG', len(png) > 5000, 'ipywidgets' in sys.modules, "
            "'matplotlib.pyplot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "False", "False"]
    assert loss_png([]).startswith(b"\x89PNG")  # nothing logged yet: empty axes, no error
