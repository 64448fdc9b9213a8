"""`export --gguf`: llama.cpp's converter writes a GGUF that transformers loads back with the logits
of the saved model (to f16 rounding; q8_0 within a stated tolerance), for both architectures the
defaults train (GPT-2, and Llama as SmolLM2 is); the Modelfile beside it; `push --gguf` and the card;
a missing model or an architecture the converter does not know is one line, with nothing left behind."""

import json

import pytest
import torch

from huggingtweets.cli import main
from huggingtweets.export import to_gguf
from test_card import licensed_gpt2  # noqa: F401 (a fixture)
from test_trust import one_error_line

TEXT = "I just had the best coffee of my life this morning, and the day can only go downhill from here."


def logits(model, ids):
    with torch.inference_mode():
        return model.eval()(ids).logits.float()


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_the_gguf_loads_back_with_the_saved_models_logits(arch, tiny_gpt2, tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_gpt2 if arch == "gpt2" else tiny_llama
    saved = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    ids = torch.tensor([AutoTokenizer.from_pretrained(folder)(TEXT)["input_ids"]])
    exact = logits(saved, ids)
    rounded = logits(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).half().float(), ids)
    # transformers 5 reads gpt2.context_length into n_ctx, which GPT2Config ignores: say n_positions
    extra = {"n_positions": saved.config.n_positions} if arch == "gpt2" else {}
    for quant in ("f16", "q8_0"):
        out = to_gguf(folder, tmp_path / f"{arch}-{quant}.gguf", quant)
        assert out.is_file() and not list(tmp_path.glob(".*.tmp"))  # no temp file of the converter's left
        back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=out.name, dtype=torch.float32, **extra)
        assert back.config.model_type == arch
        got = logits(back, ids)
        if quant == "f16":
            # f16 rounding and nothing else: no further from the saved model's logits than rounding every weight
            # to f16 puts them, give or take the order of float sums (the GGUF keeps norms and biases in f32)
            rounding = (rounded - exact).abs().max()
            assert 0 < rounding < 1e-3 and (got - exact).abs().max() <= 1.5 * rounding, ((got - exact).abs().max(), rounding)
        else:
            # 8-bit blocks: within a tenth of the logits' spread, and the same likeliest token at every position
            assert (got - exact).abs().max() < 0.1 * exact.std(), ((got - exact).abs().max(), exact.std())
            assert torch.equal(got.argmax(-1), exact.argmax(-1))
    assert (tmp_path / f"{arch}-q8_0.gguf").stat().st_size < 0.7 * (tmp_path / f"{arch}-f16.gguf").stat().st_size


def test_export_writes_the_gguf_and_a_modelfile_and_push_takes_them(tmp_path, licensed_gpt2, capsys):
    args = ["--model", str(licensed_gpt2), "--max-steps", "2", "--precision", "fp32"]
    assert main(["train", *args]) == 0
    capsys.readouterr()
    assert main(["export", *args, "--gguf"]) == 0
    out = capsys.readouterr().out
    export = tmp_path / "work" / "sample" / "export"
    assert sorted(p.name for p in export.iterdir()) == ["Modelfile", "export.json", "sample.gguf"]
    size = (export / "sample.gguf").stat().st_size
    assert f"GGUF: {export / 'sample.gguf'} ({size / 2**20:,.0f} MiB)" in out
    assert (export / "Modelfile").read_text().splitlines()[1:] == [
        "FROM ./sample.gguf",
        "# Raw completion: each post was learned after the end-of-post token, so it opens the prompt.",
        'TEMPLATE """<|endoftext|>{{ .Prompt }}"""',
        'PARAMETER stop "<|endoftext|>"',
        "PARAMETER temperature 1",
        "PARAMETER top_p 0.95",
        "PARAMETER num_predict 40",
    ]
    assert json.loads((export / "export.json").read_text())["quant"] == "f16"

    assert main(["push", "sample", "--dry-run", "--gguf"]) == 0
    upload = tmp_path / "work" / "sample" / "upload"
    assert {"sample.gguf", "Modelfile", "model.safetensors", "README.md"} <= {p.name for p in upload.iterdir()}
    card = (upload / "README.md").read_text()
    assert "ollama create sample -f Modelfile" in card and 'ollama run sample "My dream is"' in card
    assert 'llama-cli -m sample.gguf -no-cnv -p "My dream is"' in card

    # a model trained again with other settings leaves the export behind: push --gguf says so
    assert main(["train", "--model", str(licensed_gpt2), "--max-steps", "3", "--precision", "fp32"]) == 0
    capsys.readouterr()
    assert main(["push", "sample", "--dry-run", "--gguf"]) == 1
    assert "there is no GGUF export of this model" in one_error_line(capsys.readouterr().err)


def test_a_missing_model_or_an_unknown_architecture_is_one_line(tmp_path, tiny_gpt2, capsys):
    assert main(["export", "--model", str(tiny_gpt2)]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"error: there is no trained model in {tmp_path / 'work' / 'sample' / 'model'}: run `huggingtweets train` "
        "(or `huggingtweets run`) first")

    strange = tmp_path / "strange"
    strange.mkdir()
    (strange / "config.json").write_text(json.dumps({"architectures": ["MadeUpForCausalLM"],
                                                     "model_type": "made-up"}))
    from huggingtweets.errors import ExportError

    with pytest.raises(ExportError, match="does not know the architecture MadeUpForCausalLM"):
        to_gguf(strange, tmp_path / "out" / "strange.gguf")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(ExportError, match="there is no saved model in"):
        to_gguf(tmp_path / "nothing", tmp_path / "out" / "x.gguf")
