"""The README's Python example, as written, on the tiny model."""

import huggingtweets as ht


def test_the_readme_steps_work_from_python_and_can_be_called_again(tmp_path, tiny_gpt2):
    (tmp_path / "my-posts.csv").write_text(
        "text\n" + "\n".join(f'"{p.text}"' for p in ht.sources.sample.sample_posts() if '"' not in p.text) + "\n",
        encoding="utf-8")
    settings = ht.Settings(sources=["file:my-posts.csv"], model=str(tiny_gpt2), max_steps=3, num_samples=2)
    said = []
    posts = ht.fetch(settings, say=said.append)
    stats = ht.prepare(settings, say=said.append)
    metrics = ht.train(settings, say=said.append)
    samples = ht.generate(settings, say=said.append)
    card = ht.card(settings, say=said.append)
    assert len(posts) == stats.tweets_downloaded and stats.tweets_kept > 300
    assert "<td>Tweets kept</td>" in stats._repr_html_()
    assert metrics["steps"] == 3 and len(samples) == 2 and card.name == "README.md"
    # Step modules share names with the step functions: calling again still works.
    assert callable(ht.train) and callable(ht.card) and callable(ht.generate)
    assert ht.train(settings, say=said.append)["steps"] == 3

    model, tokenizer = ht.load_bot(card.parent)
    more = ht.generate_samples(model, tokenizer, "My dream is", num_samples=3, max_new_tokens=5)
    assert [s.text.startswith("My dream is") for s in more] == [True] * 3


def test_the_bot_samples_in_the_precision_training_would_choose(tiny_gpt2):
    """Sampling reads every weight once a token: in bf16 where this host runs it natively, else fp32;
    --precision fp32 keeps fp32."""
    import torch

    from huggingtweets.models import choose_precision

    chosen = choose_precision("auto")[0]
    model, tokenizer = ht.load_bot(tiny_gpt2)
    # fp16 is chosen only on a GPU without bf16, and used only there (as for_sampling does)
    expected = {"bf16": torch.bfloat16, "fp16": torch.float16 if torch.cuda.is_available() else torch.float32}
    assert model.dtype == expected.get(chosen, torch.float32) and not model.training
    assert ht.load_bot(tiny_gpt2, "fp32")[0].dtype == torch.float32
    (sample,) = ht.generate_samples(model, tokenizer, "My dream is", num_samples=1, max_new_tokens=5)
    assert sample.text.startswith("My dream is") and len(sample.text) > len("My dream is")
