"""The voice evaluation: its figures on hand-made texts whose answers are known, then `eval` end to end."""

import json
import random
import shutil

from conftest import run_cli
from huggingtweets.voice import distinct_2, real_vs_bot_auc, short_share, voice_match

CASUAL = ["lol", "omg", "cant", "even", "sooo", "tired", "tbh", "gonna", "nap", "ugh", "coffee", "pls", "haha", "rn"]
FORMAL = ["Moreover,", "the", "committee", "concluded", "that", "legislation", "remains", "necessary", "however",
          "considerable", "uncertainty", "persists", "regarding", "implementation."]


def texts(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))) for _ in range(n)]


def test_two_clearly_different_voices_match_near_100_percent_and_0():
    casual, formal = texts(CASUAL, 200, 1), texts(FORMAL, 200, 2)
    match = voice_match(casual[:150], formal[:150], bot_samples=casual[150:], held_out=casual[150:],
                        base_samples=formal[150:])
    assert match.bot >= 0.95 and match.real >= 0.95  # the account's own voice, unseen texts
    assert match.base is not None and match.base <= 0.05  # the other voice, scored out of fold


def test_a_bot_writing_in_the_other_voice_is_not_matched():
    casual, formal = texts(CASUAL, 200, 3), texts(FORMAL, 200, 4)
    match = voice_match(casual[:150], formal[:150], bot_samples=formal[150:], held_out=casual[150:])
    assert match.bot <= 0.05 and match.real >= 0.95 and match.base is None


def test_identical_texts_give_an_auc_near_one_half_and_different_ones_near_one():
    same = texts(CASUAL, 120, 5)
    assert abs(real_vs_bot_auc(same[:60], same[60:]) - 0.5) < 0.15  # one voice on both sides
    assert real_vs_bot_auc(["the same post"] * 30, ["the same post"] * 50) == 0.5
    assert real_vs_bot_auc(texts(CASUAL, 60, 6), texts(FORMAL, 60, 7)) > 0.95
    assert real_vs_bot_auc(["only one"], ["a", "b"]) is None  # too few to cross-validate


def test_distinct_2_and_short_share_count_what_they_say():
    assert distinct_2(["a b c", "a b c"]) == 0.5  # 4 pairs, 2 distinct
    assert distinct_2(["a b", "c d"]) == 1.0
    assert distinct_2(["one", ""]) == 0.0
    assert short_share([".", "", "lol", "two words", "and three words"]) == 0.6


def test_eval_on_the_tiny_model_end_to_end(tiny_gpt2, tmp_path):
    work = tmp_path / "w"
    done = run_cli("run", "--model", str(tiny_gpt2), "--max-steps", "2", "--eval-samples", "20", "--work", str(work))
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("Voice match "))
    assert "base model" in line and "real posts" in line and "bits per byte" in line
    figures = json.loads((work / "sample" / "eval.json").read_text())
    assert figures["num_samples"] == 20 and 0 <= figures["voice_match"] <= 1
    assert figures["reference"]["base model samples"] == 20 and "sample:tweets" not in figures["reference"]
    assert set(figures["reference"]) == {"sample:reviews", "sample:editorials", "sample:movies", "base model samples"}
    assert figures["bits_per_byte_after"] > 0 and figures["held_out_posts"] > 0
    card = (work / "sample" / "model" / "README.md").read_text()
    assert "## Evaluation" in card and f"{figures['voice_match']:.0%}" in card

    from huggingface_hub import ModelCard

    data = ModelCard(card).data
    names = {r.metric_name for r in data.eval_results}
    assert "Voice match" in names and "Held-out bits per byte after fine-tuning" in names

    # Asked again with nothing changed: read back, not measured again.
    again = run_cli("eval", "--model", str(tiny_gpt2), "--max-steps", "2", "--eval-samples", "20", "--work", str(work))
    assert again.returncode == 0 and "Evaluating:" not in again.stdout and line in again.stdout



def test_the_base_models_samples_are_kept_and_are_those_it_would_draw_again(tiny_gpt2, tmp_path):
    # The base model's samples are the same for every account (same weights, settings, host): the next account
    # reads them back. What it reads must be what drawing them again gives.
    import huggingtweets as ht
    from huggingtweets.files import cache_dir

    def evaluated(source: str, name: str) -> tuple[dict, list[str]]:
        said: list[str] = []
        ht.evaluate(ht.Settings(sources=[source], model=str(tiny_gpt2), work=tmp_path / name, max_steps=1,
                                eval_samples=12), say=said.append)
        folder = next((tmp_path / name).iterdir())
        return json.loads((folder / "eval.json").read_text()), [s for s in said if "samples are those" in s]

    kept = cache_dir() / "base-samples"
    shutil.rmtree(kept, ignore_errors=True)
    tweets, said = evaluated("sample", "tweets")
    assert said == [] and len(list(kept.iterdir())) == 1
    reviews, said = evaluated("sample:reviews", "reviews")
    assert said == ["The base model's 12 samples are those it drew before, with the same weights, settings and host"]
    assert reviews["base_samples"] == tweets["base_samples"] and len(reviews["base_samples"]) == 12
    # a damaged file is drawn again, silently; drawn anew, every figure is what the kept samples gave
    (path,) = kept.iterdir()
    path.write_text("{")
    anew, said = evaluated("sample:reviews", "reviews-anew")
    assert said == [] and anew == reviews and json.loads(path.read_text())["samples"] == reviews["base_samples"]


def test_nothing_else_passes_for_the_base_models_draw(tiny_gpt2):
    import torch

    import huggingtweets as ht
    from huggingtweets.generate import draw_identity

    model, tokenizer = ht.load_bot(tiny_gpt2, "fp32")
    draw = dict(num_samples=12, max_new_tokens=40, top_p=0.95, temperature=1.0, seed=42)
    identity = draw_identity(model, tokenizer, **draw)
    assert draw_identity(ht.load_bot(tiny_gpt2, "fp32")[0], tokenizer, **draw) == identity  # loaded again
    assert draw_identity(model, tokenizer, **{**draw, "top_p": 0.9}) != identity
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)  # the sums round differently
        assert draw_identity(model, tokenizer, **draw) != identity
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():  # one weight, one step of its last bit
        weight = model.get_input_embeddings().weight
        weight[7, 3] = torch.nextafter(weight[7, 3], torch.tensor(1.0))
    assert draw_identity(model, tokenizer, **draw) != identity
    assert draw_identity(model.to(torch.bfloat16), tokenizer, **draw)["weights"] != identity["weights"]
