"""huggingtweets: turn an account's posts into a language model that writes like it.

    import huggingtweets as ht
    settings = ht.Settings(sources=["sample"])
    posts = ht.fetch(settings)          # -> list[Post], WORK/sample/posts.jsonl
    stats = ht.prepare(settings)        # -> Stats (renders as the card's table)
    metrics = ht.train(settings)        # -> dict: perplexity before/after, log_history
    samples = ht.generate(settings)     # -> list[Sample]
    figures = ht.evaluate(settings)     # -> Evaluation: voice match, bits per byte, AUC (eval.json)
    ht.card(settings)                   # -> Path of model/README.md
    ht.export(settings, quant="f16")    # -> Path of export/<name>.gguf, beside an Ollama Modelfile

Lower-level pieces work on their own too: `filter_posts`, `clean_text`,
`load_bot` + `generate_samples` (no Trainer involved).
"""

# The step modules share names with the step functions below. Importing them
# first means a later lazy import cannot rebind `huggingtweets.train` (or
# `.card`) from the function to the module.
from . import card as _card_module, export as _export_module, train as _train_module  # noqa: F401
from .clean import Filtered, Stats, clean_text, filter_posts, is_retweet, is_short
from .errors import HuggingtweetsError
from .generate import Sample, load_bot
from .generate import generate as generate_samples
from .pipeline import Workspace, card, evaluate, export, fetch, generate, prepare, read_evaluation, read_samples, run, train
from .posts import Post, read_posts, write_posts
from .settings import Settings
from .voice import Evaluation
from .sources import parse_source

__version__ = "0.1.0"

__all__ = [
    "Evaluation", "Filtered", "HuggingtweetsError", "Post", "Sample", "Settings", "Stats", "Workspace", "card",
    "clean_text", "evaluate", "export", "fetch", "filter_posts", "generate", "generate_samples", "is_retweet", "is_short", "load_bot", "parse_source",
    "prepare", "read_evaluation", "read_posts", "read_samples", "run", "train", "write_posts",
]
