"""bf16 weights, and the optimizer that keeps them exact to fp32.

Under autocast the model's weights stay fp32 and every step casts each of them to bf16 again, and
keeps those copies for backward; the gradients come back in fp32. Here the weights of the matrix
products (linear layers, GPT-2's Conv1D, the embeddings) are stored in bf16: nothing to cast, and
their gradients are bf16 too. The fp32 weight is not lost: a bf16 number is the top 16 bits of an
fp32 one, so each weight keeps the other 16 bits (the difference between the fp32 weight and its
rounding, an int16) beside it. The optimizer puts the two together into the exact fp32 weight,
updates it with AdamW in fp32 (the first moment kept in bf16, the second in fp32), and splits it
again: in one pass of a C loop (master_adamw.c, built with the host's C compiler on first use and
kept in the cache), or where there is no compiler in a dozen passes of torch's eager ops around
its fused AdamW, three times slower (a tenth of a step). The norms stay fp32 and the embedding's
output is turned to fp32, so the residual stream is fp32 as under autocast: the forward pass multiplies the numbers autocast would (rounded to nearest, ties
away from zero where autocast's cast goes to even: a few weights in a million), except that the
embedding rows, which autocast looks up in fp32, come out of the lookup rounded to bf16.

Against autocast on the 135M default (weights, gradients, lower bits, moments): 10 bytes a
weight instead of 16, and no bf16 copies of the weights kept for backward. Used where measured
(`fits`): bf16 on a CPU, one process, not LoRA. Figures in bench/README.md.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

SLICE = 1 << 20  # elements updated at a time: a thread's share of the C loop, or the size of the eager ops' buffers
KERNEL_SOURCE = Path(__file__).with_name("master_adamw.c")


def fits(model: Any, precision: str, on_gpu: bool, world: int) -> bool:
    """Whether training here keeps bf16 weights (see the module's docstring)."""
    from transformers import PreTrainedModel

    return isinstance(model, PreTrainedModel) and precision == "bf16" and not on_gpu and world == 1


def split(fp32: torch.Tensor, high: torch.Tensor, low: torch.Tensor, bits: torch.Tensor) -> None:
    """fp32 -> its bf16 rounding (into `high`) and what is left (an int16, into `low`), through `bits` (an int32
    buffer); all the same size. `fp32` is used up: it holds the leftover afterwards."""
    fp32_bits = fp32.view(torch.int32)
    torch.add(fp32_bits, 0x8000, out=bits).bitwise_and_(-0x10000)  # the sign and magnitude rounded, ties away
    high.copy_(bits.view(torch.float32))  # exact: the lower 16 bits are zero
    low.copy_(fp32_bits.sub_(bits))  # in [-0x8000, 0x7fff]


def bf16_and_lower_bits(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`weight` (left as it is) as its bf16 rounding and its lower 16 bits, each in memory of its own (split)."""
    high = torch.empty(weight.shape, dtype=torch.bfloat16)
    low = torch.empty(weight.shape, dtype=torch.int16)
    split(weight.to(torch.float32, copy=True), high, low, torch.empty(weight.shape, dtype=torch.int32))
    return high, low


def join(high: torch.Tensor, low: torch.Tensor, out: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """The fp32 numbers split() split, exactly, into `out`, through `bits` (an int32 buffer); all the same size."""
    out.copy_(high)  # a bf16 number turned to fp32 is its bits << 16
    out.view(torch.int32).add_(bits.copy_(low))
    return out


def matmul_params(model: torch.nn.Module) -> Iterable[torch.nn.Parameter]:
    """The weights of the model's matrix products (linear layers, GPT-2's Conv1D, the embeddings), each once."""
    from transformers.pytorch_utils import Conv1D

    seen = set()
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding, Conv1D)):
            for param in module.parameters(recurse=False):
                if id(param) not in seen:  # a tied head and embedding are one weight
                    seen.add(id(param))
                    yield param


def fp32_output(module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
    """A forward hook: the module's output in fp32 (on the embedding, the residual stream stays fp32)."""
    return output.float()


def to_bf16_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Store the weights of the matrix products in bf16, each with its lower 16 bits beside it (in place);
    the norms and buffers stay as they are."""
    lows = {}
    for param in matmul_params(model):
        param.data, lows[param] = bf16_and_lower_bits(param.data)
    # The rest (norms) into memory of their own: transformers maps the weights file and a tensor left on it keeps
    # the whole mapping, so the fp32 pages the split read (0.5 GiB for the 135M default) would stay resident.
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.dtype != torch.bfloat16:
            tensor.data = tensor.data.clone()
    model._bf16_lows = lows
    model._fp32_embedding_hook = model.get_input_embeddings().register_forward_hook(fp32_output)
    return model


def is_bf16_weights(model: Any) -> bool:
    """Whether to_bf16_weights was applied (and to_fp32_weights not yet)."""
    return hasattr(model, "_bf16_lows")


def lows_of(model: Any) -> dict[torch.Tensor, torch.Tensor]:
    """Each bf16 weight's lower 16 bits, for MasterAdamW."""
    return model._bf16_lows


def to_fp32_weights(model: torch.nn.Module) -> torch.nn.Module:
    """The model in fp32 again, each weight exactly its fp32 self (what is saved and shared)."""
    model._fp32_embedding_hook.remove()
    for param, low in model._bf16_lows.items():
        param.data = join(param.data, low, torch.empty(param.shape, dtype=torch.float32),
                          torch.empty(param.shape, dtype=torch.int32))
    del model._fp32_embedding_hook, model._bf16_lows
    return model


_kernel: Any = False  # not looked for yet in this process
_why_eager: str | None = None  # why there is no C loop, and what to do, once looked for and not found
_pool: tuple[int, int, Any] = (0, 0, None)  # threads, the process that made the pool (a fork has no threads), pool


def compiled_update() -> Callable | None:
    """The update of bf16 weights as one C loop (master_adamw.c), built with the system's C compiler the first
    time on each host and kept in the cache; None where there is no compiler or the build fails: the optimizer
    then runs torch's eager ops a slice at a time (the same AdamW, three times the time)."""
    global _kernel, _why_eager
    if _kernel is False:
        _kernel, _why_eager = _build_kernel()
    return _kernel


def why_eager() -> str | None:
    """Why the update runs as torch's ops and what would give the C loop, or None where the C loop runs."""
    return None if compiled_update() is not None else _why_eager


def _host() -> str:
    """What -march=native builds for: the CPU's model and flags (a cache shared by two hosts keeps one for each)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _build_kernel() -> tuple[Callable | None, str | None]:
    """The C loop, or None and why (a line a run says, ending in what to do)."""
    import contextlib
    import ctypes
    import hashlib
    import shlex
    import shutil
    import subprocess

    from .files import cache_dir

    compiler = shlex.split(os.environ.get("CC", "")) or [shutil.which("cc") or shutil.which("gcc")
                                                          or shutil.which("clang") or ""]  # CC may be "ccache gcc"
    if not compiler[0] or not shutil.which(compiler[0]):
        named = f" ({compiler[0]})" if compiler[0] else ""
        return None, f"no C compiler was found{named}; install gcc or clang, or set CC to one"
    why = None
    source, host = KERNEL_SOURCE.read_bytes(), _host().encode()
    # IEEE arithmetic (no -ffast-math) with every operation rounded on its own (-ffp-contract=off: no fused
    # multiply-adds), so that every host and compiler works out the same bits; -fno-math-errno: sqrtf may not set
    # errno, or the loop stays scalar.
    for flags in (["-O3", "-march=native"], ["-O3"]):  # the second for a compiler that knows no -march=native
        flags = [*flags, "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]
        key = hashlib.sha256(b"\0".join([source, " ".join([*compiler, *flags]).encode(), host]))
        built = cache_dir() / "kernels" / f"master_adamw-{key.hexdigest()[:16]}.so"
        if not built.exists():
            part = built.with_name(f".{built.name}.{os.getpid()}")  # no half-written library if killed
            try:
                built.parent.mkdir(parents=True, exist_ok=True)  # a cache that cannot be written: the eager slices
            except OSError:
                return None, (f"the cache folder {built.parent} cannot be written; set HUGGINGTWEETS_CACHE to a "
                              "folder that can")
            try:
                subprocess.run([*compiler, *flags, "-o", str(part), str(KERNEL_SOURCE)], check=True,
                               capture_output=True, timeout=120)
                os.replace(part, built)
            except (OSError, subprocess.SubprocessError):
                with contextlib.suppress(OSError):
                    part.unlink()
                why = f"the C compiler ({compiler[0]}) could not build it; set CC to another compiler (gcc or clang)"
                continue
        try:
            update = ctypes.CDLL(str(built)).master_adamw
        except (OSError, AttributeError):
            continue
        update.restype = None
        update.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int64] + [ctypes.c_float] * 7
        return update, None
    return None, why or f"the library {compiler[0]} built could not be loaded; set CC to another compiler"


def _run_in_threads(calls: list[Callable[[], None]]) -> None:
    """Run the calls on torch's number of threads (ctypes lets go of the GIL while C runs)."""
    global _pool
    threads = torch.get_num_threads()
    if threads == 1 or len(calls) <= 1:
        for call in calls:
            call()
        return
    if _pool[:2] != (threads, os.getpid()):
        from concurrent.futures import ThreadPoolExecutor

        if _pool[1] == os.getpid():
            _pool[2].shutdown(wait=False)  # torch's thread count changed (torch.set_num_threads)
        _pool = (threads, os.getpid(), ThreadPoolExecutor(threads, thread_name_prefix="master-adamw"))
    for future in [_pool[2].submit(call) for call in calls]:
        future.result()


class MasterAdamW(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, torch's fused kernel's arithmetic) on the exact fp32 weights of bf16
    parameters (their lower 16 bits in `lows`), the first moment in bf16 and the second in fp32; fp32 parameters
    (the norms) are updated as they are by torch's fused kernel, their moments in fp32. The update of bf16 weights
    is elementwise and runs a slice at a time: as the C loop in threads, or without a compiler through buffers
    made once, so that a step allocates nothing either way. (Turning each gradient to fp32 whole, the heap grew
    by 0.1 GiB a step: temporaries of every size left holes.)"""

    def __init__(self, params: Any, lows: dict[torch.Tensor, torch.Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        # The state is made now, before the first step's activations: made at the first update, it would fill
        # the holes the freed activations left, and the next forward pass grow the heap by as much.
        for group in self.param_groups:
            for p in group["params"]:
                if p.dtype not in (torch.bfloat16, torch.float32):
                    raise ValueError(f"MasterAdamW keeps bf16 or fp32 parameters, not {p.dtype}")
                state = self.state[p]
                state["step"] = torch.zeros((), dtype=torch.float32)
                if p.dtype == torch.bfloat16:
                    state["low"] = lows[p]
                # The first moment in the weight's own dtype: at beta1 = 0.9 it moves a tenth a step, far above
                # bf16's resolution (1/256). Not the second: at beta2 = 0.999 a step's change can be below it.
                state["exp_avg"] = torch.zeros(p.shape, dtype=p.dtype)
                state["exp_avg_sq"] = torch.zeros(p.shape, dtype=torch.float32)
        self._weight32 = self._grad32 = self._exp_avg32 = self._bits = None  # the eager slices' buffers, if used

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        update = compiled_update()
        calls, kept = [], []  # the C loop's, a slice at a time, run in threads after the loop; their tensors
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr = group["lr"].item() if torch.is_tensor(group["lr"]) else group["lr"]
            kernel = dict(lr=lr, beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                          amsgrad=False, maximize=False)
            fp32 = [], [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] += 1  # the kernel reads the count; torch's own fused AdamW adds 1 first too
                if p.dtype == torch.float32:
                    for tensors, t in zip(fp32, (p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"])):
                        tensors.append(t)
                    continue
                tensors = [p, state["low"], p.grad.contiguous(), state["exp_avg"], state["exp_avg_sq"]]
                if update is not None:
                    # torch's fused AdamW works out its bias corrections in double and each factor once
                    step = state["step"].item()
                    scalars = (1 - lr * group["weight_decay"], 1 - beta1, beta2, 1 - beta2, lr / (1 - beta1 ** step),
                               math.sqrt(1 - beta2 ** step), group["eps"])
                    pointers = [t.data_ptr() for t in tensors]
                    sizes = [t.element_size() for t in tensors]
                    for start in range(0, p.numel(), SLICE):
                        at = [pointer + start * size for pointer, size in zip(pointers, sizes)]
                        calls.append(lambda at=at, n=min(SLICE, p.numel() - start), s=scalars: update(*at, n, *s))
                    kept.append(tensors)  # alive until the calls have run (a gradient made contiguous)
                    continue
                if self._weight32 is None:  # four 4 MiB buffers, made once: a step allocates nothing
                    self._weight32, self._grad32, self._exp_avg32 = (torch.empty(SLICE) for _ in range(3))
                    self._bits = torch.empty(SLICE, dtype=torch.int32)
                flat = [t.view(-1) for t in tensors]
                for start in range(0, p.numel(), SLICE):
                    high, low, grad, m, v = (t[start:start + SLICE] for t in flat)
                    n = high.numel()
                    weight = join(high, low, self._weight32[:n], self._bits[:n])
                    grad32, m32 = self._grad32[:n].copy_(grad), self._exp_avg32[:n].copy_(m)
                    torch._fused_adamw_([weight], [grad32], [m32], [v], [], [state["step"]], **kernel)
                    m.copy_(m32)
                    split(weight, high, low, self._bits[:n])
            if fp32[0]:  # the norms, all in one call of torch's fused kernel
                torch._fused_adamw_(*fp32[:4], [], fp32[4], **kernel)
        _run_in_threads(calls)
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Not torch's: it copies every saved tensor and turns floating-point state to its parameter's dtype (the
        # moments would come back in bf16), and accelerate loads the state it has just saved when it wraps the
        # optimizer: that copy alone was 1.5 GiB on the heap for the 135M default. The saved values go into the
        # tensors there are (the model's lower bits among them), and a tensor that is already its own is left.
        groups = state_dict["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the optimizer state saved does not match the model's parameters")
        for saved, group in zip(groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
            for i, p in zip(saved["params"], group["params"]):
                for key, value in state_dict["state"].get(i, {}).items():
                    mine = self.state[p].get(key)
                    if mine is None or not torch.is_tensor(value):
                        self.state[p][key] = value
                    elif mine is not value:
                        mine.copy_(value)
