"""A training step's forward and backward as two CUDA graphs: captured at the first step, replayed at every step.

On a GPU a small model's step is bound by launching kernels, not by the GPU: GPT-2 124M at 32 x 64 tokens took
34.0 ms a step in a plain loop on an H200 whose kernels were busy 13.9 ms of it, in 846 launches (bench/README.md).
A CUDA graph launches a whole pass at once: the same loop 13.5 ms a step, and `train`'s steps 15.2-17.1 ms against
40.1 ms (119,739-134,753 tokens/s against 51,034), at the same validation loss. The capture costs three warm-up
passes and one captured pass at the first step (a few tenths of a second); the graph then holds a step's
activations and gradients in a pool of its own for the run.

The graph takes one shape, the first batch's: a shorter batch (the last of an epoch) is padded to it with rows
whose labels are ignored (-100), so its loss and gradients are the shorter batch's own (`pad_batch`, tested on
the CPU). The loss is the model's own, the mean over the labels counted, as Trainer's with gradient accumulation 1.

Used where it fits (`fits`): a GPU, one process, no LoRA, no gradient checkpointing, memory to spare;
`--no-cuda-graphs` turns it off. Anything the capture cannot take turns it off for the run with one line, and
training goes on as before; where the graphs run out of memory, training starts over without them.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .loss import IGNORE_INDEX


def fits(settings: Any, on_gpu: bool, world: int, params: int = 0, memory: float = 0.0) -> bool:
    """Whether this run's steps are captured as CUDA graphs (see the module's docstring): not where the model's
    training state (`params` weights at 16 bytes each: fp32 weights, gradients, AdamW's two moments) takes over a
    quarter of the `memory` the process may use. There the graphs' own memory (a step's activations and gradients,
    held all run) is what is short: GPT-2 large under a 16 GiB cap fit batch 32 without them, and only 16 after
    trying them (14,810 tokens/s against 21,627-22,789 on an H200); and a step that big keeps the GPU busy anyway."""
    return (on_gpu and world == 1 and not settings.lora and not settings.gradient_checkpointing
            and not settings.no_cuda_graphs and 16 * params <= memory / 4)


def process_memory() -> float:
    """The bytes of GPU memory this process may use: the device's, under torch's per-process cap if one is set."""
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    cap = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    return total * (cap() if cap else 1.0)


def pad_batch(input_ids: torch.Tensor, labels: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch with rows added up to `rows`: copies of its first row's tokens, every label ignored. The loss
    (a mean over the labels counted) and its gradients are the batch's own: padded rows add nothing to either."""
    missing = rows - input_ids.shape[0]
    if missing <= 0:
        return input_ids, labels
    return (torch.cat([input_ids, input_ids[:1].expand(missing, -1)]),
            torch.cat([labels, labels.new_full((missing, labels.shape[1]), IGNORE_INDEX)]))


class _Loss(torch.nn.Module):
    """model(input_ids, labels=labels).loss as one module, so its parameters are the graph's inputs."""

    def __init__(self, model: Any, dtype: torch.dtype | None):
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Autocast without its cache of cast weights: a cached cast would be captured as it was at the capture,
        # and every replay would multiply by the weights as they were then. The class's forward, not the
        # instance's: accelerate wraps that one in an autocast with the cache on. The model's cache stays as its
        # config has it, as in Trainer's own steps: with one, transformers takes the causal attention kernel without
        # looking at the positions (without one it would look, which a capture cannot, and build a mask instead).
        with torch.autocast("cuda", dtype=self.dtype or torch.float32, enabled=self.dtype is not None,
                            cache_enabled=False):
            return type(self.model).forward(self.model, input_ids=input_ids, labels=labels).loss


class GraphedLoss:
    """The training loss of `model` (autocast to `dtype`, or none), its forward and backward replayed as CUDA
    graphs. Called with a training batch: the loss, ready for backward; None where the graph cannot take the batch
    (longer rows or more of them than the first batch's, or the capture failed): the caller runs the model itself."""

    def __init__(self, model: Any, dtype: torch.dtype | None, say: Callable[[str], None]):
        self.loss = _Loss(model, dtype)
        self.say = say
        self.shape: tuple[int, int] | None = None
        self.off = False

    @property
    def replaying(self) -> bool:
        """Whether the steps are replayed: captured, and not turned off since."""
        return self.shape is not None and not self.off

    def __call__(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        if self.off:
            return None
        if self.shape is None:
            # Each weight's gradient node is made in the warm-up, on a stream of its own: torch warns at the capture
            # and at every backward that it is not the replay's stream (an event between the two streams on the
            # GPU, not a wait on the host)
            quiet = getattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch", None)
            if quiet:
                quiet(False)
            try:
                torch.cuda.make_graphed_callables(self.loss, (input_ids.clone(), labels.clone()), num_warmup_iters=3,
                                                allow_unused_input=True)
            except torch.OutOfMemoryError:
                raise  # as an uncaptured step would: train() starts over without graphs
            except Exception as e:  # noqa: BLE001 - whatever stops the capture, the run goes on without graphs
                self.off = True
                reason = (str(e).strip().splitlines() or [""])[0][:200]
                self.say(f"CUDA graphs off for this run ({type(e).__name__}: {reason}); training goes on without them")
                return None
            self.shape = (input_ids.shape[0], input_ids.shape[1])
            # The warm-up passes ran on a stream of their own, whose freed memory (a step's activations and
            # gradients) no other stream reuses: handed back, for the optimizer's state and the evaluations.
            torch.cuda.empty_cache()
        rows, length = input_ids.shape
        if length != self.shape[1] or rows > self.shape[0]:
            return None
        return self.loss(*pad_batch(input_ids, labels, self.shape[0]))

    def close(self) -> None:
        """Let the graphs and the memory they hold go (after the next collection and torch.cuda.empty_cache())."""
        self.off = True
        if self.loss is not None:
            self.loss.__dict__.pop("forward", None)  # the graphed forward refers to the module: a cycle, broken here
            self.loss = None
