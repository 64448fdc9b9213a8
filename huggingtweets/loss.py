"""The training loss, without the logits in fp32.

A causal language model's loss needs the logits of every position: a batch of 8 x 64
tokens against a vocabulary of 49,152-50,257 words is 100 MB in fp32. The standard path
(`model(labels=...)`, transformers' ForCausalLMLoss) keeps them in the compute dtype,
again in fp32 and log-softmaxed for backward, and makes their gradient and the head's in
full beside them. Here the head runs a slice of the vocabulary at a time into one buffer
in the autocast dtype (as the model's own head would run it); the loss and its gradient
with respect to the logits are worked out in fp32 a chunk of rows at a time and written
back into that buffer; backward is the two products, a slice at a time. On SmolLM2-135M
at batch 8 x 64 what a step keeps for backward went from 800 to 698 MiB and the main
job's peak from 3.49-3.50 to 3.30-3.37 GiB, at the same speed (bench/README.md). The loss
is ForCausalLMLoss's: labels shifted inside, -100 ignored, the mean over the labels counted.

Used where it is known to be exact (`fits`): a plain linear head on the backbone's normed
output (PLAIN_HEADS), bf16 or fp32, on the CPU, one process. Anything else (LoRA, fp16, a
GPU, several processes) trains with the model's own loss.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

IGNORE_INDEX = -100
CHUNK_ROWS = 128  # logits rows turned to fp32 at a time: 128 x 50,257 x 4 B = 26 MB
CHUNK_WORDS = 8192  # vocabulary rows of the head's weight (and its gradient) cast and multiplied at a time
# Architectures whose logits are exactly `lm_head(base_model(...).last_hidden_state)`: the final norm inside the
# backbone, a linear head without bias, no scaling or soft-capping after it.
PLAIN_HEADS = frozenset({"gpt2", "llama", "mistral", "qwen2", "qwen3"})


class LinearCrossEntropy(torch.autograd.Function):
    """cross_entropy(hidden @ weight.T, labels), the mean over labels != -100. The gradient is
    worked out in forward, so only one (rows x vocabulary) buffer in `dtype` is ever held."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype):
        device = hidden.device.type
        with torch.autocast(device, enabled=False):  # a slice of the vocabulary at a time: no whole copy of the weight
            h = hidden.to(dtype)
            logits = torch.empty((h.shape[0], weight.shape[0]), dtype=dtype, device=hidden.device)
            for start in range(0, weight.shape[0], CHUNK_WORDS):
                # into the buffer itself (out=): no product made beside it and copied in
                torch.mm(h, weight[start:start + CHUNK_WORDS].to(dtype).t(), out=logits[:, start:start + CHUNK_WORDS])
        valid = labels != IGNORE_INDEX
        count = valid.sum().clamp(min=1)
        targets = labels.clamp(min=0)
        wants_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        part = torch.empty((min(CHUNK_ROWS, logits.shape[0]), logits.shape[1]), dtype=torch.float32,
                           device=hidden.device)  # one fp32 chunk, reused
        for start in range(0, logits.shape[0], CHUNK_ROWS):
            rows = slice(start, start + CHUNK_ROWS)
            chunk, target, keep = part[:logits[rows].shape[0]], targets[rows], valid[rows]
            # Three passes over the chunk: to fp32, softmax in place (one fused kernel, a row at a time), back into
            # the buffer (aten's _softmax / _log_softmax with out=: the public functions have no in-place form).
            # The loss is -log(p) of each target; the 1/count is applied in backward, to the small operands.
            chunk.copy_(logits[rows])
            if not wants_grad:  # evaluation: the log-softmax is all it needs
                torch._log_softmax(chunk, -1, False, out=chunk)
                total -= chunk.gather(1, target[:, None])[:, 0].masked_fill(~keep, 0).sum()
                continue
            torch._softmax(chunk, -1, False, out=chunk)
            p = chunk.gather(1, target[:, None])[:, 0]
            nll = -p.log()
            tiny = p < 1e-30  # -log(p) loses digits as p nears fp32's smallest: those rows from the logits instead
            if tiny.any():
                x = logits[rows][tiny].float()
                nll[tiny] = torch.logsumexp(x, -1) - x.gather(1, target[tiny][:, None])[:, 0]
            total += nll.masked_fill(~keep, 0).sum()
            # d loss / d logits * count = softmax - one-hot, on the labels counted
            chunk[torch.arange(chunk.shape[0], device=chunk.device), target] -= 1
            if not keep.all():
                chunk[~keep] = 0
            logits[rows] = chunk
        if wants_grad:
            ctx.save_for_backward(logits, hidden, weight, count)
            ctx.dtype = dtype
        return total / count

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        # A slice of the vocabulary at a time, so that no copy of the whole weight (in the compute dtype) or of its
        # gradient (in it, then in fp32) is made beside the gradient itself: backward starts at the loss, when every
        # activation is still held, and that is the peak of a step's memory.
        grad_logits, hidden, weight, count = ctx.saved_tensors
        grad_hidden = grad_weight = None
        scale = grad_loss.float() / count  # the buffer holds the gradient times count (see forward)
        with torch.autocast(hidden.device.type, enabled=False):
            h = (hidden.float() * scale).to(ctx.dtype)  # scaled here, on 8 x 64 rows, not on the whole buffer
            if ctx.needs_input_grad[0]:
                grad_hidden = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device)
            if ctx.needs_input_grad[1]:
                grad_weight = torch.empty_like(weight)
            for start in range(0, weight.shape[0], CHUNK_WORDS):
                words = slice(start, start + CHUNK_WORDS)
                g = grad_logits[:, words]
                if grad_hidden is not None:
                    grad_hidden += g @ weight[words].to(ctx.dtype)
                if grad_weight is not None:
                    if grad_weight.dtype == h.dtype:  # bf16 weights: straight into the gradient
                        torch.mm(g.t(), h, out=grad_weight[words])
                    else:  # fp32 weights under autocast: the product in the compute dtype, turned to fp32
                        grad_weight[words] = g.t() @ h
            if grad_hidden is not None:
                grad_hidden *= scale
        return (grad_hidden.to(hidden.dtype) if grad_hidden is not None else None), grad_weight, None, None


def causal_lm_loss(model: Any, input_ids: torch.Tensor, labels: torch.Tensor,
                   attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The model's next-token loss on `labels` (each position predicts the next label), as
    `model(input_ids, labels=labels).loss` gives it, through LinearCrossEntropy."""
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    hidden = hidden[:, :-1].reshape(-1, hidden.shape[-1])
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    return LinearCrossEntropy.apply(hidden, model.get_output_embeddings().weight, labels[:, 1:].reshape(-1), dtype)


def fits(model: Any, precision: str, on_gpu: bool, world: int) -> bool:
    """Whether causal_lm_loss gives this model's own loss here (see the module's docstring)."""
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):  # LoRA's PeftModel: its base_model is not the backbone
        return False
    head = model.get_output_embeddings()
    return (getattr(model.config, "model_type", None) in PLAIN_HEADS and isinstance(head, torch.nn.Linear)
            and head.bias is None and model.base_model is not model and precision in ("bf16", "fp32")
            and not on_gpu and world == 1)


class PackedTrainer(Trainer):
    """Trainer that computes the loss with causal_lm_loss when `fused_loss` is set, or replays a training step's
    forward and backward as CUDA graphs when `graphed_loss` is set (cuda_graphs.py)."""

    fused_loss = False
    graphed_loss = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if (self.graphed_loss is not None and model.training and torch.is_grad_enabled() and not return_outputs
                and self.args.gradient_accumulation_steps == 1 and set(inputs) == {"input_ids", "labels"}):
            loss = self.graphed_loss(inputs["input_ids"], inputs["labels"])
            if loss is not None:
                return loss
        if not self.fused_loss or self.args.gradient_accumulation_steps != 1:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        with self.accelerator.autocast():  # the backbone is called directly, not through the patched forward
            loss = causal_lm_loss(self.accelerator.unwrap_model(model), inputs["input_ids"], inputs["labels"],
                                  inputs.get("attention_mask"))
        return (loss, {"loss": loss}) if return_outputs else loss
