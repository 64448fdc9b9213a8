"""The voice evaluation: its figures on hand-made texts whose answers are known, then `eval` end to end."""

import json
import random

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
