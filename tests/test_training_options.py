"""The training levers that change what is trained: frozen embeddings stay as the
base model had them; bad values are one-line errors."""

import pytest
from safetensors.torch import load_file

import huggingtweets as ht
from huggingtweets.errors import SettingsError


def test_frozen_embeddings_are_saved_as_the_base_had_them(tmp_path, tiny_gpt2):
    settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "work", max_steps=2,
                           freeze_embeddings=True, learning_rate=1e-2)
    metrics = ht.train(settings, say=lambda _: None, write_card=False)
    assert metrics["steps"] == 2
    base = load_file(tiny_gpt2 / "model.safetensors")
    tuned = load_file(tmp_path / "work" / "sample" / "model" / "model.safetensors")
    assert (tuned["transformer.wte.weight"] == base["transformer.wte.weight"]).all()
    assert not (tuned["transformer.h.0.mlp.c_fc.weight"] == base["transformer.h.0.mlp.c_fc.weight"]).all()


@pytest.mark.parametrize("dropout", [1.0, -0.5, 2])
def test_a_bad_dropout_is_refused(dropout):
    with pytest.raises(SettingsError, match="dropout must be"):
        ht.Settings(dropout=dropout)


def test_lora_trains_adapters_and_saves_a_plain_merged_model(tmp_path, tiny_gpt2, capsys):
    from transformers import pipeline

    settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "work", max_steps=3,
                           lora=True, lora_rank=4, learning_rate=1e-2)
    metrics = ht.train(settings)
    assert "LoRA rank 4: training 4,096 of " in capsys.readouterr().out
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
    folder = tmp_path / "work" / "sample" / "model"
    assert not (folder / "adapter_config.json").exists()  # merged: loads without peft
    assert "with LoRA adapters (rank 4) on every linear layer, merged into the weights." in \
        (folder / "README.md").read_text(encoding="utf-8")
    tuned = load_file(folder / "model.safetensors")
    base = load_file(tiny_gpt2 / "model.safetensors")
    assert tuned.keys() == base.keys()
    assert not (tuned["transformer.h.0.attn.c_attn.weight"] == base["transformer.h.0.attn.c_attn.weight"]).all()
    assert pipeline("text-generation", model=str(folder))("My dream is", max_new_tokens=2)[0]["generated_text"]


def test_an_interrupted_lora_run_resumes_from_its_adapter_checkpoint(tmp_path, tiny_gpt2, capsys):
    from huggingtweets.train import checkpoint_problem

    settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "work", max_steps=6,
                           lora=True, lora_rank=4, checkpoint_minutes=0)

    def stop(entry):
        if entry.get("step") == 4 and "loss" in entry:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ht.train(settings, on_log=stop, write_card=False)
    (checkpoint,) = (tmp_path / "work" / "sample" / "checkpoints").glob("checkpoint-*")
    assert (checkpoint / "adapter_model.safetensors").is_file() and checkpoint_problem(checkpoint) is None
    capsys.readouterr()
    metrics = ht.train(settings, write_card=False)
    assert f"Resuming from {checkpoint.name}" in capsys.readouterr().out and metrics["steps"] == 6


def checkpoints_seen(tmp_path, tiny_gpt2, name: str, **options) -> list[str]:
    """The checkpoints there at any moment of a 4-step run (one evaluation a step)."""
    folder = tmp_path / name / "sample" / "checkpoints"
    seen = []
    ht.train(ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / name, max_steps=4, **options),
             on_log=lambda entry: seen.extend(p.name for p in folder.glob("checkpoint-*")), write_card=False)
    assert (tmp_path / name / "sample" / "model" / "model.safetensors").is_file()
    return seen


@pytest.mark.slow  # over 30 s on 2 cores: keeps the default suite under 15 minutes; CI runs it
def test_checkpoints_are_saved_at_evaluations_but_not_more_often_than_asked(tmp_path, tiny_gpt2, capsys):
    assert "checkpoint-3" in checkpoints_seen(tmp_path, tiny_gpt2, "every", checkpoint_minutes=0)
    # the default, 2 minutes: a run this short saves none, and neither does --no-checkpoints
    assert checkpoints_seen(tmp_path, tiny_gpt2, "default") == []
    assert checkpoints_seen(tmp_path, tiny_gpt2, "none", no_checkpoints=True, checkpoint_minutes=0) == []
    # a cap the user set is named as theirs, not as the CPU's (the passes planned: 2)
    import torch

    from huggingtweets.train import CPU_EPOCHS, GPU_EPOCHS

    passes = GPU_EPOCHS if torch.cuda.is_available() else CPU_EPOCHS  # as train_model decides
    assert (f"Training capped at 4 steps by --max-steps (0.2 of {passes} passes over 136 blocks)"
            in capsys.readouterr().out)


def test_running_out_of_accelerator_memory_is_one_line_that_says_what_to_try(tmp_path, tiny_gpt2):
    """Raised by the allocator mid-step (torch.OutOfMemoryError), as on a GPU that is too small;
    the CLI prints HuggingtweetsError messages as one line."""
    import torch

    def too_big(entry):
        if entry.get("step") == 2 and "loss" in entry:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")

    settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "work", max_steps=4)
    with pytest.raises(ht.errors.OutOfMemoryError) as raised:
        ht.train(settings, on_log=too_big, write_card=False)
    assert str(raised.value) == (f"training {tiny_gpt2.name} does not fit the accelerator's memory: try "
                                 "--batch-size 4, --gradient-checkpointing, --lora or a smaller --model")
    assert not (tmp_path / "work" / "sample" / "model").exists()
    with pytest.raises(ht.errors.OutOfMemoryError, match=r"try --lora or a smaller --model$"):
        ht.train(ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "work", max_steps=4,
                             batch_size=1, gradient_checkpointing=True), on_log=too_big, write_card=False)


def test_gradient_checkpointing_is_turned_on_in_the_model_without_a_deprecation_warning(tmp_path, tiny_gpt2,
                                                                                      monkeypatch, recwarn):
    from transformers import PreTrainedModel

    real = PreTrainedModel.activation_checkpointing_enable
    calls = []

    def recorded(self, *args, **kwargs):
        calls.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "activation_checkpointing_enable", recorded)
    metrics = ht.train(ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "work", max_steps=2,
                                   gradient_checkpointing=True), say=lambda _: None, write_card=False)
    assert metrics["steps"] == 2 and len(calls) == 1
    assert "use_reentrant" in str(calls[0]) and "False" in str(calls[0])
    assert not [w for w in recwarn if "checkpointing" in str(w.message) and "deprecated" in str(w.message)]


def test_the_step_plan_caps_a_cpu_run_and_says_so_and_runs_a_gpu_one_whole():
    from huggingtweets.train import CPU_MAX_STEPS, plan_steps

    settings = ht.Settings(batch_size=8)
    cpu = plan_steps(settings, train_blocks=8 * 100, on_gpu=False)
    assert (cpu.steps_per_epoch, cpu.planned, cpu.steps) == (100, 200, CPU_MAX_STEPS)
    assert cpu.capped.startswith(f"CPU only: training capped at {CPU_MAX_STEPS} steps (1.2 of 2 passes")
    gpu = plan_steps(settings, train_blocks=8 * 100, on_gpu=True)
    assert (gpu.steps, gpu.capped, gpu.eval_every, gpu.logging_steps) == (200, None, 50, 1)
    # Under 2 processes each step takes twice the blocks; --max-steps caps with its own words
    two = plan_steps(ht.Settings(batch_size=8, max_steps=30), train_blocks=801, on_gpu=True, world=2)
    assert (two.steps_per_epoch, two.steps, two.eval_every) == (51, 30, 7)
    assert two.capped == "Training capped at 30 steps by --max-steps (0.6 of 2 passes over 801 blocks)"
    assert plan_steps(ht.Settings(epochs=1, max_steps=-1), 10, on_gpu=False).steps == 2


def test_a_chosen_batch_that_does_not_fit_is_halved_and_training_starts_over_from_the_base(tmp_path, tiny_gpt2,
                                                                                         monkeypatch):
    """The batch chosen for the device (GPU_BATCH, here 16 on either device) runs out of memory at its second step,
    when the optimizer's state has joined the activations, as gpt2-large's batch of 32 did under a 16 GiB cap on an
    H200: training starts over at batch 8 from the base model, and ends where a run at --batch-size 8 ends."""
    import importlib

    import torch

    train = importlib.import_module("huggingtweets.train")  # the module: ht.train is the pipeline's function
    monkeypatch.setattr(train, "CPU_BATCH", 16)
    monkeypatch.setattr(train, "GPU_BATCH", 16)
    monkeypatch.setattr(train, "GPU_MIN_STEPS", 1)

    def too_big_at_16(entry):  # 136 blocks: 18 steps at batch 16, 34 at batch 8
        if entry.get("max_steps") == 18 and entry.get("step") == 2 and "loss" in entry:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.")

    lines = []
    chosen = ht.train(ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "chosen"),
                      say=lines.append, on_log=too_big_at_16, write_card=False)
    assert f"Training {tiny_gpt2.name} on 136 blocks of 64 tokens (383 posts), 18 steps at batch 16" in lines
    assert any(line.startswith("Batch 16 does not fit ") and line.endswith(": starting over at batch 8, 34 steps")
               for line in lines)
    assert (chosen["batch_size"], chosen["steps"], chosen["learning_rate"]) == (8, 34, 2e-4)
    given = ht.train(ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "given", batch_size=8),
                     say=lambda _: None, write_card=False)
    a = load_file(tmp_path / "chosen" / "sample" / "model" / "model.safetensors")
    b = load_file(tmp_path / "given" / "sample" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:  # one update more or less moves a weight by about the learning rate, 2e-4
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5)
    assert chosen["eval_loss_after"] == pytest.approx(given["eval_loss_after"], abs=1e-4)


def test_a_gpu_takes_more_blocks_a_step_where_the_data_leaves_enough_steps_and_a_higher_learning_rate_with_them():
    from huggingtweets.train import plan_steps

    gpu = plan_steps(ht.Settings(), train_blocks=830, on_gpu=True)  # bench --gpu's 3,200 posts
    assert (gpu.batch_size, gpu.steps, gpu.learning_rate) == (32, 52, pytest.approx(4e-4))
    assert plan_steps(ht.Settings(), train_blocks=400, on_gpu=True).batch_size == 16  # 32 would leave 26 steps
    assert plan_steps(ht.Settings(), train_blocks=136, on_gpu=True).batch_size == 8  # the sample account
    cpu = plan_steps(ht.Settings(), train_blocks=830, on_gpu=False)
    assert (cpu.batch_size, cpu.learning_rate) == (8, 2e-4)
    given = plan_steps(ht.Settings(batch_size=64, learning_rate=1e-4), train_blocks=830, on_gpu=True)
    assert (given.batch_size, given.steps, given.learning_rate) == (64, 26, 1e-4)  # what the user gave, as given
    assert plan_steps(ht.Settings(batch_size=2), 830, on_gpu=False).learning_rate == pytest.approx(1e-4)
    assert plan_steps(ht.Settings(lora=True), 830, on_gpu=True).learning_rate == pytest.approx(2e-3)


def test_a_run_that_diverges_shows_its_loss_as_nan_and_stops_with_one_line_saving_nothing(tmp_path, tiny_gpt2):
    """At a learning rate far too high the loss becomes NaN. Trainer's logging_nan_inf_filter used to log such a step's
    loss as the average of the finite ones since the last log: 0.0 once a log had emptied it, so the progress bar
    and the app's plot showed a perfect loss for a run that had diverged (and it made the GPU wait every step)."""
    import math

    logs = []
    settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "work", max_steps=6,
                           learning_rate=1e6, precision="fp32")
    with pytest.raises(SettingsError) as raised:
        ht.train(settings, say=lambda _: None, write_card=False, on_log=logs.append)
    losses = [e["loss"] for e in logs if "loss" in e]
    assert len(losses) == 6 and math.isnan(losses[-1]) and 0.0 not in losses
    assert str(raised.value).startswith("training diverged: the validation loss is nan after 6 steps at a peak "
                                        "learning rate of 1e+06; try a lower --learning-rate")
    assert not (tmp_path / "work" / "sample" / "model").exists()
    assert not (tmp_path / "work" / "sample" / "checkpoints").exists()


def test_gpt2_trains_with_its_gelu_in_one_kernel_and_is_saved_with_its_own(tmp_path, tiny_gpt2):
    # gelu_new is six elementwise ops; PyTorch's tanh GELU is the same function in one kernel (huggingtweets/train.py)
    import json

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.activations import PytorchGELUTanh

    from huggingtweets.models import BaseModel
    from huggingtweets.train import setup_model

    base = BaseModel(requested=str(tiny_gpt2), path=str(tiny_gpt2), hub_id=None, display="tiny", license=None,
                     limitations_url=None)
    model, _ = setup_model(ht.Settings(model=str(tiny_gpt2), work=tmp_path), base, say=lambda _: None,
                           on_gpu=False, precision="fp32")
    assert [type(block.mlp.act) for block in model.transformer.h] == [PytorchGELUTanh, PytorchGELUTanh]
    original = AutoModelForCausalLM.from_pretrained(tiny_gpt2, attn_implementation="eager").eval()
    ids = torch.randint(0, original.config.vocab_size, (2, 16))
    assert torch.allclose(model.eval()(ids).logits, original(ids).logits, atol=1e-5)
    model.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["activation_function"] == "gelu_new"


def test_the_last_evaluation_is_not_run_twice(tmp_path, tiny_gpt2):
    # The evaluation Trainer runs at the last step (every eval_every steps) is the perplexity after training: the
    # same weights, the same held-out blocks. Running it again cost a pass over them (0.9 s of the main job) and put
    # the last point on the loss curve twice (on_log, W&B).
    def evaluations(name: str, max_steps: int) -> list[int]:
        entries: list[dict] = []
        settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / name, max_steps=max_steps,
                               learning_rate=1e-2)
        metrics = ht.train(settings, say=lambda _: None, write_card=False, on_log=entries.append)
        evals = [e for e in entries if "eval_loss" in e]
        assert metrics["eval_loss_after"] == evals[-1]["eval_loss"] and evals[0]["eval_loss"] != evals[-1]["eval_loss"]
        return [e["step"] for e in evals]

    assert evaluations("last-step-evaluated", 8) == [0, 2, 4, 6, 8]
    # 9 steps, evaluated every 9 // 4 = 2: the last step is not one of Trainer's, so it is evaluated after
    assert evaluations("last-step-not-evaluated", 9) == [0, 2, 4, 6, 8, 9]


def test_a_one_step_run_moves_the_weights(tmp_path, tiny_gpt2):
    # The warmup is a tenth of the steps, rounded up: with one step that one step was all warmup, at learning
    # rate 0, and `--max-steps 1` (a quick try) trained nothing: perplexity before and after the same.
    settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path, max_steps=1, learning_rate=1e-2)
    metrics = ht.train(settings, say=lambda _: None, write_card=False)
    assert metrics["steps"] == 1 and metrics["eval_loss_after"] < metrics["eval_loss_before"]
