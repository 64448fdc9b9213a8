"""The training loss without fp32 logits (huggingtweets/loss.py): the same loss and gradients as the
model's own, for both architectures the defaults train, holding half the bytes for backward; training
with it gives the model training without it gives; where it is not known to be exact, it is not used."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

import huggingtweets as ht
from huggingtweets.loss import LinearCrossEntropy, causal_lm_loss, fits


def batch(vocab: int):
    torch.manual_seed(1)
    ids = torch.randint(0, vocab, (4, 48))
    labels = ids.clone()
    labels[1, 10:20] = -100  # ignored labels count for nothing, as in ForCausalLMLoss
    return ids, labels


def saved_bytes(model, fn) -> int:
    """The bytes autograd keeps for fn()'s backward beyond the model's own weights (each storage once)."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_same_loss_and_gradients_as_the_model_s_own(arch, dtype, tiny_gpt2, tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2 if arch == "gpt2" else tiny_llama, dtype=torch.float32)
    assert fits(model, "bf16" if dtype == torch.bfloat16 else "fp32", on_gpu=False, world=1)
    ids, labels = batch(model.config.vocab_size)
    results = []
    for ours in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            loss = causal_lm_loss(model, ids, labels) if ours else model(input_ids=ids, labels=labels).loss
        (2 * loss).backward()  # a scale on the loss reaches the gradients
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (theirs, their_grads), (ours, our_grads) = results
    assert ours == pytest.approx(theirs, rel=1e-6 if dtype == torch.float32 else 1e-3)
    for name, grad in their_grads.items():
        scale = grad.abs().max().item()
        error = (our_grads[name] - grad).abs().max().item()
        # fp32: rounding only; bf16: the head's gradient rounded to bf16 once (as the model's own is)
        assert error <= (1e-5 if dtype == torch.float32 else 2e-2) * scale, (name, error, scale)


def test_it_keeps_half_the_bytes_for_backward_under_bf16(tiny_gpt2):
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2, dtype=torch.float32)
    ids, labels = batch(model.config.vocab_size)

    def kept(fn):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return saved_bytes(model, fn)

    theirs = kept(lambda: model(input_ids=ids, labels=labels).loss)
    ours = kept(lambda: causal_lm_loss(model, ids, labels))
    logits = ids.numel() * model.config.vocab_size  # 4 x 48 positions x 50,257 words
    # theirs keeps the logits in fp32 (4 bytes each), ours their gradient in bf16 (2 bytes each)
    assert theirs >= 4 * logits and ours <= theirs - 2 * logits, (theirs, ours)


def test_it_is_used_only_where_it_is_exact(tiny_gpt2):
    from peft import LoraConfig, get_peft_model

    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2, dtype=torch.float32)
    assert fits(model, "bf16", on_gpu=False, world=1)
    assert not fits(model, "fp16", on_gpu=False, world=1)  # fp16 gradients would underflow before scaling
    assert not fits(model, "bf16", on_gpu=True, world=1)  # not measured on a GPU
    assert not fits(model, "bf16", on_gpu=False, world=2)  # DDP must see the forward
    lora = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    assert not fits(lora, "bf16", on_gpu=False, world=1)
    model.config.model_type = "gemma2"  # soft-caps its logits
    assert not fits(model, "bf16", on_gpu=False, world=1)


def test_training_with_it_makes_the_model_training_without_it_makes(tmp_path, tiny_gpt2, monkeypatch):
    from safetensors.torch import load_file

    from huggingtweets import loss

    models = {}
    for fused in (True, False):
        if not fused:  # the model's own loss everywhere
            monkeypatch.setattr(loss, "fits", lambda *a, **k: False)
        settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / f"w{fused}", max_steps=3,
                               precision="fp32", learning_rate=1e-2)
        metrics = ht.train(settings, say=lambda _: None, write_card=False)
        folder = tmp_path / f"w{fused}" / "sample" / "model"
        models[fused] = (metrics["eval_loss_before"], metrics["eval_loss_after"], load_file(folder / "model.safetensors"))
        # trained with plain attention on the CPU, saved without it: whoever loads the bot gets their default
        assert "attn_implementation" not in json.loads((folder / "config.json").read_text())
    (ours_before, ours_after, ours), (before, after, theirs) = models[True], models[False]
    assert ours_before == pytest.approx(before, rel=1e-5) and ours_after == pytest.approx(after, rel=1e-4)
    assert after < before
    for name, weight in theirs.items():
        assert torch.allclose(ours[name], weight, atol=1e-5), name


def test_a_target_the_model_all_but_rules_out_gets_its_whole_loss():
    # The loss is -log(softmax) at each target; where that probability underflows fp32 (a confident wrong guess,
    # as early in a diverging run) it is worked out from the logits, not left infinite.
    torch.manual_seed(0)
    hidden, weight = torch.randn(6, 16), torch.randn(50, 16)
    hidden[0] *= 100  # logits spread over thousands: the target's probability is far below fp32's smallest
    labels = torch.tensor([3, 7, -100, 1, 2, 9])
    loss = LinearCrossEntropy.apply(hidden.requires_grad_(), weight, labels, torch.float32)
    expected = torch.nn.functional.cross_entropy(hidden @ weight.t(), labels, ignore_index=-100)
    assert torch.isfinite(loss) and expected.item() > 100
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
