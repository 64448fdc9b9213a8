"""Fine-tune the base model on the packed blocks, with transformers' Trainer.

Reads top to bottom: precision, data, model, how long to train, Trainer,
perplexity before, training, perplexity after, save. Labels are the input ids
themselves (default_data_collator), so the end-of-post token is learned too:
DataCollatorForLanguageModeling would mask it wherever pad == eos.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import shutil
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .dataset import DatasetInfo, load_blocks
from .errors import OutOfMemoryError, SettingsError
from .files import atomic_dir, read_json, write_json
from .models import BaseModel, choose_precision, load_model, load_tokenizer
from .settings import Settings

# Passes over the posts, on a GPU as on a CPU. Chosen by voice match (bench/results/voice-sweep.md): at 2e-4-3e-4
# a third pass overfit (perplexity 54.9 -> 68.8, own voice 88% -> 81%, copies 0-1% -> 12%), so the original's 4
# passes would be worse still; no GPU was at hand to sweep, so the GPU default is reasoned from the CPU's.
GPU_EPOCHS = 2
CPU_EPOCHS = 2
CPU_MAX_STEPS = 120  # keeps a CPU run to minutes (about 2 s a step for a 135M model in bf16, 5 s in fp32)
# Blocks a step. On a CPU 8: a step there is compute-bound, and the learning rate was chosen by voice at 8. On a GPU
# a small model's step was bound by launching its kernels: on an H200 GPT-2 124M took 26.6 ms a step at 8 blocks and
# 30.0 ms at 32, so 32 trained 3.5x the tokens a second (bench/README.md). Replayed as CUDA graphs (cuda_graphs.py)
# a step is 10.1 ms at 8 and 15.2-17.1 ms at 32: 32 still trains 2.4-2.7x the tokens a second. Fewer where 32 would
# leave under GPU_MIN_STEPS steps (a small account), and halved, starting over, while a chosen batch does not fit.
CPU_BATCH = 8
GPU_BATCH = 32
GPU_MIN_STEPS = 50
# The most loss entries a run logs: every step on runs up to 200 steps. Each reads the loss on the host (a wait for the
# GPU), but with the steps as CUDA graphs logging every 4th step instead gained 3% (122,785 vs 119,739 tokens/s on an
# H200): not worth a coarser loss curve.
LOG_ENTRIES = 200
SMALLEST_CHOSEN_BATCH = 8  # a chosen batch is halved down to this; below it --gradient-checkpointing or --lora do more
# Attention when training on a CPU: the plain one. At blocks of 64 tokens SDPA's flash kernel for the CPU costs more
# than it saves: its backward alone was 8% of a GPT-2 124M step; plain attention made a step 8-10% faster on GPT-2
# and SmolLM2-135M (bench/README.md). On a GPU SDPA stays. The saved model's config does not keep the choice.
CPU_ATTENTION = "eager"


def one_kernel_gelu(model: Any) -> None:
    """GPT-2's activation (gelu_new, the tanh approximation written as six elementwise ops, each a pass over the
    MLP's activations forward and more backward) as PyTorch's tanh GELU, the same function in one kernel each way:
    a GPT-2 124M step 2-3% faster on the CPU (bench/README.md), and fewer launches on a GPU. The modules only; the
    saved config keeps gelu_new."""
    from transformers.activations import NewGELUActivation, PytorchGELUTanh

    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is NewGELUActivation:
                setattr(module, name, PytorchGELUTanh())


# What must match for a checkpoint to be resumed (with the dataset's own fingerprint).
FINGERPRINT = ("model", "block_size", "batch_size", "learning_rate", "epochs", "max_steps", "seed", "precision",
               "dropout", "freeze_embeddings", "lora", "lora_rank")
RUN_FILE = "huggingtweets-run.json"
CHECKPOINT_FILES = ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt")


def recipe(settings: Settings) -> dict[str, Any]:
    """The FINGERPRINT settings as they train: the learning rate given, or the default's value at 8 blocks a step,
    not None for "the default", so a model made under an older default is not taken for one of today's. The batch
    and rate a run chose for its device are in its checkpoints' fingerprint (resume_point) and metrics.json."""
    return {**{k: getattr(settings, k) for k in FINGERPRINT}, "learning_rate": settings.peak_learning_rate}


def usable_checkpoint(folder: Path, fingerprint: dict[str, Any], say: Callable[[str], None]) -> Path | None:
    """The newest checkpoint in `folder` that belongs to this run and is whole.
    Stale checkpoints (other data or settings) are removed; a damaged one (a
    crash while it was written) is skipped with a message, never loaded."""
    if not folder.is_dir():
        return None
    try:
        same_run = read_json(folder / RUN_FILE) == json.loads(json.dumps(fingerprint))
    except (OSError, ValueError):
        same_run = False
    if not same_run:
        if any(folder.glob("checkpoint-*")):
            say(f"The checkpoints in {folder} are from another run (other data or settings): starting over")
        shutil.rmtree(folder, ignore_errors=True)
        return None
    for checkpoint in checkpoints_newest_first(folder):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        say(f"Skipping {checkpoint.name}: {problem}")
        shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def checkpoints_newest_first(folder: Path) -> list[Path]:
    """Trainer's checkpoint-STEP folders in `folder`, the highest step first (by number: checkpoint-10 after
    checkpoint-9); a folder with no number after the dash comes last."""
    def step(path: Path) -> int:
        number = path.name.rsplit("-", 1)[-1]
        return int(number) if number.isascii() and number.isdigit() else -1
    return sorted(folder.glob("checkpoint-*"), key=step, reverse=True)


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be trusted, or None. Checks every file without
    unpickling anything: JSON parses, the safetensors header matches the file
    size, torch's zip archives have their central directory and good CRCs.
    A LoRA run's checkpoints hold the adapter's weights instead of the model's."""
    weights_name = "adapter_model.safetensors" if (checkpoint / "adapter_config.json").is_file() else "model.safetensors"
    expected = [weights_name if name == "model.safetensors" else name for name in CHECKPOINT_FILES]
    missing = [name for name in expected if not (checkpoint / name).is_file()]
    if missing:
        return f"{', '.join(missing)} missing (it was being written when the run stopped)"
    try:
        state = read_json(checkpoint / "trainer_state.json")
        if str(state.get("global_step")) != checkpoint.name.split("-")[-1]:
            return "trainer_state.json does not match the checkpoint's step"
    except (OSError, ValueError, AttributeError):
        return "trainer_state.json is damaged"
    weights = checkpoint / weights_name
    try:
        size = weights.stat().st_size
        with open(weights, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if not 0 < header_len <= size - 8:
                return f"{weights_name} is damaged"
            header = json.loads(f.read(header_len))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        if 8 + header_len + end != size:
            return f"{weights_name} is cut short"
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return f"{weights_name} is damaged"
    for name in ("optimizer.pt", "scheduler.pt"):
        try:
            with zipfile.ZipFile(checkpoint / name) as z:
                if z.testzip() is not None:
                    return f"{name} is damaged"
        except (OSError, zipfile.BadZipFile):
            return f"{name} is cut short or damaged"
    return None


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


def release_memory() -> None:
    """Give back what training held (Trainer, optimizer state: ~2 GiB for a 135M model) before
    sampling loads the bot, and to the notebook that goes on running. Trainer keeps reference
    cycles, so it goes at a collection, and glibc keeps freed memory unless asked to trim."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): the memory is reused, just not returned
        pass


# glibc's mallopt parameters, and their defaults (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536


@contextmanager
def freed_memory_kept() -> Iterator[None]:
    """Keep the memory a training step frees for the next step, instead of handing it back to the system.
    glibc serves every block over 128 KiB-32 MiB (weights cast to bf16, logits, gradients) with a fresh
    mmap and unmaps it when freed, so each step faults its gigabytes in again page by page: 3 million
    page faults in 30 s, a sixth of the CPU time in the kernel (GPT-2 124M, batch 8 x 64, 2-core Zen 4).
    Served from the heap and never trimmed while training, the same steps ran 1.3-1.45x faster (bench:
    python -m bench --quick, "ours"). The system's defaults come back afterwards, and release_memory()
    then hands everything back. Not glibc (macOS, musl): nothing changes."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_MMAP_MAX, 0)
    mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield
    finally:
        mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        release_memory()


def _memory_name(on_gpu: bool) -> str:
    import torch

    return f"the memory of the {torch.cuda.get_device_name()}" if on_gpu else "the accelerator's memory"


def _out_of_memory(settings: Settings, base: BaseModel, on_gpu: bool, batch_size: int) -> OutOfMemoryError:
    """What to change when training does not fit, cheapest first (checkpoints made so far are kept)."""
    where = _memory_name(on_gpu)
    tries = [f"--batch-size {max(1, batch_size // 2)}"] if batch_size > 1 else []
    if not settings.gradient_checkpointing:
        tries.append("--gradient-checkpointing")
    if not settings.lora:
        tries.append("--lora")
    tries.append("a smaller --model")
    return OutOfMemoryError(f"training {base.display} does not fit {where}: try {', '.join(tries[:-1])} or {tries[-1]}"
                            if len(tries) > 1 else f"training {base.display} does not fit {where}: try {tries[0]}")


def process_rank() -> tuple[int, int]:
    """(this process's rank, how many processes) under accelerate launch or torchrun; (0, 1) alone."""
    import os

    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """How long training runs: worked out from the data and the settings alone, so it is tested without training."""
    epochs: float
    batch_size: int  # blocks a step in each process: --batch-size, or chosen for the device
    learning_rate: float  # the peak, for that batch (Settings.learning_rate_at)
    steps_per_epoch: int
    planned: int  # the steps `epochs` passes take
    steps: int  # the steps it runs: `planned`, or fewer under a cap
    eval_every: int
    logging_steps: int
    capped: str | None  # the line that says why it stops early, when it does


def plan_steps(settings: Settings, train_blocks: int, on_gpu: bool, world: int = 1,
               batch_size: int | None = None) -> StepPlan:
    """2 passes at the batch for the device (GPU_BATCH, CPU_BATCH), or `batch_size`; on a CPU capped too
    (CPU_MAX_STEPS), so the main job ends in minutes."""
    epochs = settings.epochs or (GPU_EPOCHS if on_gpu else CPU_EPOCHS)
    given = batch_size or settings.batch_size
    batch = given or (GPU_BATCH if on_gpu else CPU_BATCH)
    while (not given and batch > SMALLEST_CHOSEN_BATCH
           and math.ceil(train_blocks / (batch * world)) * epochs < GPU_MIN_STEPS):
        batch //= 2
    steps_per_epoch = math.ceil(train_blocks / (batch * world))
    planned = math.ceil(steps_per_epoch * epochs)
    max_steps = settings.max_steps if settings.max_steps is not None else (-1 if on_gpu else CPU_MAX_STEPS)
    steps = planned if max_steps == -1 else min(planned, max_steps)
    capped = None
    if steps < planned:
        share = f"{steps / steps_per_epoch:.1f} of {epochs:g} passes over {train_blocks} blocks"
        capped = (f"CPU only: training capped at {steps} steps ({share}); use a GPU, or --max-steps -1 for the full run"
                  if settings.max_steps is None else f"Training capped at {steps} steps by --max-steps ({share})")
    return StepPlan(epochs=epochs, batch_size=batch, learning_rate=settings.learning_rate_at(batch * world),
                    steps_per_epoch=steps_per_epoch, planned=planned, steps=steps,
                    eval_every=max(1, steps // 4), logging_steps=max(1, steps // LOG_ENTRIES), capped=capped)


def setup_model(settings: Settings, base: BaseModel, say: Callable[[str], None], on_gpu: bool, precision: str,
                world: int = 1) -> tuple[Any, Any]:
    """(model, tokenizer), with the attention for the device (CPU_ATTENTION) and the settings' frozen embeddings,
    dropout and LoRA adapters applied. Weights in fp32 (bf16/fp16 run as autocast), or, for bf16 on a CPU,
    in bf16 with their lower 16 bits beside them: fp32 exactly, 10 bytes a weight to train instead of 16 and
    the main job's peak 2.7-2.8 GiB instead of 3.4-3.5 (huggingtweets/master.py)."""
    import torch

    from . import master

    tokenizer = load_tokenizer(base.path)
    model = load_model(base.path)
    if not on_gpu:
        model.set_attn_implementation(CPU_ATTENTION)
    one_kernel_gelu(model)
    # Trainer divides a batch's loss by the labels it counts, skipping each row's first (never predicted) only when
    # the model's loss_type says it is a causal LM; GPT-2's class name leaves it None, so its every loss and
    # perplexity came out 1/block_size too low (Llama's, SmolLM2's, were right).
    if getattr(model, "loss_type", None) is None:
        model.loss_type = "ForCausalLM"
    model.config.pad_token_id = tokenizer.pad_token_id
    if settings.freeze_embeddings:  # no gradient or optimizer state for the vocabulary's rows
        model.get_input_embeddings().weight.requires_grad_(False)
        model.get_output_embeddings().weight.requires_grad_(False)
    if settings.dropout != -1:  # the modules' rates, not the saved config: the model is shared as its base was
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = settings.dropout
    if settings.lora:
        # Low-rank adapters on every linear layer, the base weights frozen: no gradient or optimizer
        # state for them, so a model several times larger fits the same memory. Merged back at the end.
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise SettingsError("--lora needs peft: pip install 'huggingtweets[lora]'") from None
        model = get_peft_model(model, LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank,
                                                 target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM"))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        say(f"LoRA rank {settings.lora_rank}: training {trainable:,} of "
            f"{sum(p.numel() for p in model.parameters()):,} weights")
    if master.fits(model, precision, on_gpu, world):
        master.to_bf16_weights(model)
    return model, tokenizer


def training_arguments(settings: Settings, plan: StepPlan, precision: str, on_gpu: bool, rank: int,
                       checkpoints_dir: Path) -> Any:
    """Trainer's TrainingArguments for this run."""
    from transformers import TrainingArguments

    # transformers renamed gradient_checkpointing (a FutureWarning on every run); older 5.x lacks the new name
    checkpointing = ("activation_checkpointing" if "activation_checkpointing" in
                     {f.name for f in dataclasses.fields(TrainingArguments)} else "gradient_checkpointing")
    return TrainingArguments(
        output_dir=str(checkpoints_dir),
        per_device_train_batch_size=plan.batch_size,
        per_device_eval_batch_size=plan.batch_size,
        learning_rate=plan.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.1 if plan.steps > 1 else 0,  # a tenth, rounded up: one step would be all warmup, at rate 0
        num_train_epochs=plan.epochs,
        max_steps=plan.steps,
        eval_strategy="steps",
        eval_steps=plan.eval_every,
        save_strategy="no" if settings.no_checkpoints else "steps",
        save_steps=plan.eval_every,
        save_total_limit=1,  # a 135M model's checkpoint with optimizer state is 1.6 GB
        logging_steps=plan.logging_steps,
        # Trainer's filter logged a NaN or infinite step's loss as the average of the finite ones since the last log
        # (0.0 right after one): a diverged run showed a perfect loss. It also read every step's loss on the host,
        # which made the CPU wait for the GPU before queueing the optimizer's step.
        logging_nan_inf_filter=False,
        # One fused kernel for AdamW's update, on CPU too: measured 0.04 s a step against 0.25 s for
        # the per-tensor loop on GPT-2 124M (2-core Zen 4), an eighth of the step.
        optim="adamw_torch_fused",
        # use_reentrant=False works with frozen inputs (LoRA, frozen embeddings)
        **{checkpointing: settings.gradient_checkpointing, f"{checkpointing}_kwargs": {"use_reentrant": False}},
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not on_gpu,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        dataloader_pin_memory=on_gpu,
        disable_tqdm=bool(rank),  # one progress bar, the main process's
    )


def save_model(settings: Settings, trainer: Any, tokenizer: Any, model_dir: Path, checkpoints_dir: Path) -> None:
    """Model, tokenizer and sampling defaults into model_dir (whole or not at all), so pipeline() samples as we
    do; the checkpoints go, as the final model replaces them."""
    from .master import is_bf16_weights, to_fp32_weights

    model = trainer.model
    if is_bf16_weights(model):
        trainer.optimizer.state.clear()  # done with: its moments (0.75 GiB for the 135M default) make room for fp32
        to_fp32_weights(model)  # saved in fp32, as it trained
    model.generation_config.update(do_sample=True, top_p=settings.top_p, temperature=settings.temperature,
                                   max_new_tokens=settings.max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id)
    staging = checkpoints_dir / "final"
    trainer.save_model(str(staging))  # every process takes part (FSDP gathers the weights); the main one writes
    if process_rank()[0]:
        return
    with atomic_dir(model_dir) as tmp:
        if settings.lora:  # the adapters merged into the weights: a plain model that pipeline() loads without peft
            model.merge_and_unload().save_pretrained(str(tmp))
        else:
            for item in staging.iterdir():
                # Trainer's pickled arguments: the same facts are in huggingtweets.json, and a
                # pickle is nothing to hand to people who download the model.
                if item.name != "training_args.bin":
                    item.rename(tmp / item.name)
        tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(checkpoints_dir, ignore_errors=True)


def resume_point(settings: Settings, info: DatasetInfo, plan: StepPlan, args: Any, checkpoints_dir: Path,
                 say: Callable[[str], None]) -> Path | None:
    """The checkpoint to go on from, if any, after recording which run the checkpoints folder now belongs to."""
    fingerprint = {"dataset": info.__dict__, "settings": recipe(settings), "batch_size": plan.batch_size,
                   "steps": plan.steps}
    with args.main_process_first(local=False, desc="checking checkpoints"):  # the main one cleans up first
        last = usable_checkpoint(checkpoints_dir, fingerprint, say)
        if process_rank()[0] == 0:
            checkpoints_dir.mkdir(parents=True, exist_ok=True)
            write_json(checkpoints_dir / RUN_FILE, fingerprint)
    if last:
        say(f"Resuming from {last.name}")
    return last


def optimizer_name(trainer: Any) -> str:
    """Which AdamW ran: Trainer's own (its `optim`), or MasterAdamW on bf16 weights as the C loop or torch's ops
    (master.py; the two agree to a few ulps, so two hosts' runs differ in the last bits if one had no compiler)."""
    from .master import MasterAdamW, compiled_update

    optimizer = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # inside accelerate's wrapper
    if isinstance(optimizer, MasterAdamW):
        return "master_adamw_c" if compiled_update() is not None else "master_adamw_eager"
    return getattr(trainer.args.optim, "value", str(trainer.args.optim))


def run_metrics(settings: Settings, base: BaseModel, info: DatasetInfo, plan: StepPlan, trainer: Any, result: Any,
                before: dict[str, float], after: dict[str, float], train_seconds: float, precision: str,
                why: str) -> dict[str, Any]:
    """metrics.json: what was trained on what, how, and how well."""
    return {
        "base_model": base.hub_id or base.path,
        "base": {"hub_id": base.hub_id, "path": base.path, "display": base.display, "url": base.url,
                 "license": base.license, "limitations_url": base.limitations_url, "base_model": base.base_model},
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
        "batch_size": plan.batch_size,
        "learning_rate": plan.learning_rate,
        "cuda_graphs": trainer.graphed_loss is not None and trainer.graphed_loss.replaying,
        "optimizer": optimizer_name(trainer),
        "host": host_description(),
        "dataset": info.__dict__,
        "sources": list(settings.sources),
        "settings": {k: v for k, v in settings.to_dict().items() if k not in ("work", "sources")},
        "log_history": trainer.state.log_history,
    }


def train_model(settings: Settings, base: BaseModel, dataset_dir: Path, model_dir: Path,
                checkpoints_dir: Path, say: Callable[[str], None] = print,
                on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Fine-tune and save. `on_log` gets each Trainer log entry as it happens
    ({"step", "loss"} or {"step", "eval_loss"}, plus "max_steps"): the notebook
    app draws its live loss plot from it."""
    import torch
    from transformers import default_data_collator, set_seed
    from transformers.trainer_callback import ProgressCallback

    from . import cuda_graphs
    from .callbacks import QuietProgress, SaveNotTooOften
    from .loss import PackedTrainer, fits
    from .master import MasterAdamW, is_bf16_weights, lows_of, why_eager

    set_seed(settings.seed)
    on_gpu = torch.cuda.is_available()
    # Under `accelerate launch` or torchrun every process runs this function; Trainer shares the
    # batches out (DDP), and only the main process speaks and writes.
    rank, world = process_rank()
    say_all = say
    if rank:
        say = lambda _: None  # noqa: E731

    # Precision: measured on this machine, never assumed
    precision, why = choose_precision(settings.precision)
    say(f"Precision: {precision} ({why}); training on {host_description()}")

    # Data (packed blocks written by `prepare`), model, and how long
    info = DatasetInfo.read(dataset_dir)
    blocks = load_blocks(dataset_dir)
    model, tokenizer = setup_model(settings, base, say, on_gpu, precision, world)
    plan = plan_steps(settings, info.train_blocks, on_gpu, world)
    if plan.capped:
        say(plan.capped)
    say(f"Training {base.display} on {info.train_blocks} blocks of {info.block_size} tokens "
        f"({info.train_posts} posts), {plan.steps} steps at batch {plan.batch_size}"
        + (f" in each of {world} processes" if world > 1 else ""))
    if is_bf16_weights(model) and (slower := why_eager()):  # a tenth of a step more: said, not only in metrics.json
        say(f"Optimizer: torch's ops, about 3x slower than its C loop: {slower}")

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)  # autocast's, in a captured step
    graphs = True  # until they do not fit beside the model (below)

    def make_trainer(plan: StepPlan) -> Any:
        args = training_arguments(settings, plan, precision, on_gpu, rank, checkpoints_dir)
        # AdamW as optim="adamw_torch_fused" makes it, or on the exact fp32 weights of bf16 ones
        optimizer = (MasterAdamW, {"lr": args.learning_rate, "betas": (args.adam_beta1, args.adam_beta2),
                                   "eps": args.adam_epsilon, "lows": lows_of(model)}) if is_bf16_weights(model) else None
        trainer = PackedTrainer(model=model, args=args, train_dataset=blocks["train"],
                                eval_dataset=blocks["validation"], data_collator=default_data_collator,
                                processing_class=tokenizer, optimizer_cls_and_kwargs=optimizer)
        trainer.fused_loss = fits(model, precision, on_gpu, world)  # the loss without fp32 logits (loss.py)
        if graphs and on_gpu and cuda_graphs.fits(settings, on_gpu, world, sum(p.numel() for p in model.parameters()),
                                                  cuda_graphs.process_memory()):  # a step at once (cuda_graphs.py)
            trainer.graphed_loss = cuda_graphs.GraphedLoss(model, dtype, say)
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(QuietProgress(on_log))
        if world == 1:  # under accelerate every process must agree on when to save, so every evaluation saves
            trainer.add_callback(SaveNotTooOften(settings.checkpoint_minutes))
        return trainer

    trainer = make_trainer(plan)

    # Perplexity on held-out posts, before
    try:
        before = trainer.evaluate()
    except torch.OutOfMemoryError:
        raise _out_of_memory(settings, base, on_gpu, plan.batch_size) from None
    say(f"Validation perplexity before training: {math.exp(before['eval_loss']):.1f}")

    # Resume from the newest whole checkpoint of this same run (data and settings),
    # as after a crash or a disconnect; anything else there is stale or damaged.
    last = resume_point(settings, info, plan, trainer.args, checkpoints_dir, say)

    # Train, then perplexity after. A batch chosen for the device that does not fit (the optimizer's state is made
    # at the first update, so the second step can be the first that does not) is halved, and training starts over
    # from the base model. A batch the user gave stops with one line, as does any under several processes.
    while True:
        started = time.perf_counter()
        try:
            with freed_memory_kept():
                result = trainer.train(resume_from_checkpoint=str(last) if last else None)
                train_seconds = time.perf_counter() - started
                # Trainer's evaluation at the last step, where there was one, is already the perplexity after
                last_eval = next((e for e in reversed(trainer.state.log_history) if "eval_loss" in e), None)
                at_end = last_eval is not None and last_eval.get("step") == trainer.state.global_step
                after = {"eval_loss": last_eval["eval_loss"]} if at_end else trainer.evaluate()
            break
        except torch.OutOfMemoryError:
            # CUDA graphs keep a step's activations for the whole run: they give way first, at the same batch
            graphs_gave_way = trainer.graphed_loss is not None and not trainer.graphed_loss.off
            if trainer.graphed_loss is not None:
                trainer.graphed_loss.close()
            # Several processes would have to agree to start over: they stop, with the line, instead
            if not graphs_gave_way and (settings.batch_size or plan.batch_size <= SMALLEST_CHOSEN_BATCH or world > 1):
                raise _out_of_memory(settings, base, on_gpu, plan.batch_size) from None
        del trainer, model
        release_memory()
        if on_gpu:
            torch.cuda.empty_cache()
        if graphs_gave_way:
            graphs = False
            say(f"Batch {plan.batch_size} as CUDA graphs does not fit {_memory_name(on_gpu)}: starting over "
                "without them")
        else:
            plan = plan_steps(settings, info.train_blocks, on_gpu, world, batch_size=plan.batch_size // 2)
            say(f"Batch {2 * plan.batch_size} does not fit {_memory_name(on_gpu)}: starting over at batch "
                f"{plan.batch_size}, {plan.steps} steps")
        set_seed(settings.seed)
        model, tokenizer = setup_model(settings, base, lambda _: None, on_gpu, precision, world)
        trainer = make_trainer(plan)
        last = resume_point(settings, info, plan, trainer.args, checkpoints_dir, say)  # the new plan's fingerprint
    if not math.isfinite(after["eval_loss"]):  # nothing worth saving, or resuming from
        shutil.rmtree(checkpoints_dir, ignore_errors=True)
        raise SettingsError(f"training diverged: the validation loss is {after['eval_loss']} after "
                            f"{trainer.state.global_step} steps at a peak learning rate of {plan.learning_rate:g}; "
                            "try a lower --learning-rate")
    say(f"Validation perplexity after training: {math.exp(after['eval_loss']):.1f} (before: "
        f"{math.exp(before['eval_loss']):.1f}), {train_seconds:.0f} s of training")

    save_model(settings, trainer, tokenizer, model_dir, checkpoints_dir)
    if world > 1:
        say_all(f"Process {rank} of {world}: done")
    if rank:
        return {"rank": rank}
    return run_metrics(settings, base, info, plan, trainer, result, before, after, train_seconds, precision, why)
