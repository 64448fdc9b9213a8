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
