"""Fine-tune the base model on the packed blocks, with transformers' Trainer.

Reads top to bottom: precision, data, model, how long to train, Trainer,
perplexity before, training, perplexity after, save. Labels are the input ids
themselves (default_data_collator), so the end-of-post token is learned too:
DataCollatorForLanguageModeling would mask it wherever pad == eos.
"""

from __future__ import annotations

import math
import platform
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from .dataset import DatasetInfo, load_blocks
from .files import atomic_dir, write_json
from .models import BaseModel, choose_precision, load_model, load_tokenizer
from .settings import Settings

GPU_EPOCHS = 4  # as the original
CPU_EPOCHS = 2  # measured on the sample account: 2 passes at 1e-4 cut validation perplexity ~3x; 4 at 4e-4 overfit
CPU_MAX_STEPS = 120  # keeps a CPU run to minutes (about 2 s a step for a 135M model in bf16, 5 s in fp32)


def host_description() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    return f"CPU {cpu}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}"


def train_model(settings: Settings, base: BaseModel, dataset_dir: Path, model_dir: Path,
                checkpoints_dir: Path, say: Callable[[str], None] = print,
                on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Fine-tune and save. `on_log` gets each Trainer log entry as it happens
    ({"step", "loss"} or {"step", "eval_loss"}, plus "max_steps"): the notebook
    app draws its live loss plot from it."""
    import torch
    from transformers import Trainer, TrainingArguments, default_data_collator, set_seed
    from transformers.trainer_callback import ProgressCallback
    from transformers.trainer_utils import get_last_checkpoint

    listener = on_log

    class QuietProgress(ProgressCallback):
        """Trainer's progress bar, with the latest loss beside it instead of a printed dict a step."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.training_bar is not None and logs and "loss" in logs:
                self.training_bar.set_postfix(loss=f"{logs['loss']:.3f}")
            if listener and logs:
                listener({**logs, "step": state.global_step, "max_steps": state.max_steps})

    set_seed(settings.seed)
    on_gpu = torch.cuda.is_available()

    # Precision: measured on this machine, never assumed
    precision, why = choose_precision(settings.precision)
    say(f"Precision: {precision} ({why}); training on {host_description()}")

    # Data: packed blocks written by `prepare`
    info = DatasetInfo.read(dataset_dir)
    blocks = load_blocks(dataset_dir)

    # Model: fp32 master weights; bf16/fp16 run as autocast
    tokenizer = load_tokenizer(base.path)
    model = load_model(base.path)
    model.config.pad_token_id = tokenizer.pad_token_id

    # How long: the original's 4 passes on a GPU; on a CPU fewer, and capped
    epochs = settings.epochs or (GPU_EPOCHS if on_gpu else CPU_EPOCHS)
    steps_per_epoch = math.ceil(info.train_blocks / settings.batch_size)
    planned = math.ceil(steps_per_epoch * epochs)
    max_steps = settings.max_steps if settings.max_steps is not None else (-1 if on_gpu else CPU_MAX_STEPS)
    steps = planned if max_steps == -1 else min(planned, max_steps)
    if steps < planned:
        say(f"CPU only: training capped at {steps} steps ({steps / steps_per_epoch:.1f} of {epochs:g} passes over "
            f"{info.train_blocks} blocks); use a GPU, or --max-steps -1 for the full run")
    say(f"Training {base.display} on {info.train_blocks} blocks of {info.block_size} tokens "
        f"({info.train_posts} posts), {steps} steps at batch {settings.batch_size}")

    eval_every = max(1, steps // 4)
    args = TrainingArguments(
        output_dir=str(checkpoints_dir),
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        num_train_epochs=epochs,
        max_steps=steps,
        eval_strategy="steps",
        eval_steps=eval_every,
        save_strategy="steps",
        save_steps=eval_every,
        save_total_limit=1,  # a 135M model's checkpoint with optimizer state is 1.6 GB
        logging_steps=1 if steps <= 200 else steps // 200,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not on_gpu,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        dataloader_pin_memory=on_gpu,
        disable_tqdm=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=blocks["train"], eval_dataset=blocks["validation"],
                      data_collator=default_data_collator, processing_class=tokenizer)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(QuietProgress())

    # Perplexity on held-out posts, before
    before = trainer.evaluate()
    say(f"Validation perplexity before training: {math.exp(before['eval_loss']):.1f}")

    # Train (from the last checkpoint when resuming)
    last = get_last_checkpoint(str(checkpoints_dir)) if settings.resume and checkpoints_dir.is_dir() else None
    if settings.resume:
        say(f"Resuming from {Path(last).name}" if last else f"No checkpoint in {checkpoints_dir}: training from the start")
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    train_seconds = time.perf_counter() - started

    # Perplexity, after
    after = trainer.evaluate()
    say(f"Validation perplexity after training: {math.exp(after['eval_loss']):.1f} (before: "
        f"{math.exp(before['eval_loss']):.1f}), {train_seconds:.0f} s of training")

    # Save: model, tokenizer and sampling defaults, so pipeline() samples as we do
    model.generation_config.update(do_sample=True, top_p=settings.top_p, temperature=settings.temperature,
                                   max_new_tokens=settings.max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id)
    with atomic_dir(model_dir) as tmp:
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        # Trainer's pickled arguments: the same facts are in huggingtweets.json, and a
        # pickle is nothing to hand to people who download the model.
        (tmp / "training_args.bin").unlink(missing_ok=True)
    shutil.rmtree(checkpoints_dir, ignore_errors=True)  # the final model replaces them

    return {
        "base_model": base.hub_id or base.path,
        "base": {"hub_id": base.hub_id, "path": base.path, "display": base.display, "url": base.url,
                 "license": base.license, "limitations_url": base.limitations_url},
        "eval_loss_before": before["eval_loss"],
        "eval_loss_after": after["eval_loss"],
        "eval_perplexity_before": math.exp(before["eval_loss"]),
        "eval_perplexity_after": math.exp(after["eval_loss"]),
        "train_loss": result.training_loss,
        "train_seconds": train_seconds,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "precision": precision,
        "precision_reason": why,
        "host": host_description(),
        "dataset": info.__dict__,
        "sources": list(settings.sources),
        "settings": {k: v for k, v in settings.to_dict().items() if k not in ("work", "sources")},
        "log_history": trainer.state.log_history,
    }

