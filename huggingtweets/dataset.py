"""From kept posts to training blocks.

Posts (not blocks) are split into train and validation, so no post is in both.
Each post is tokenized with an end-of-text token after it, so the model learns
where a post ends; the posts are then packed into fixed-length blocks
(`group_texts`, after transformers' run_clm.py), so no compute goes to padding.

Unlike run_clm, a block never starts mid-post: each begins with the end-of-post
token and then a post's first token. Cut anywhere, every block put a mid-post
token at position 0, and the model learned that whatever opens its window is
followed by the middle of a sentence: sampled from the end-of-post token alone
(the start of a post) it wrote ", and ..." or "was the host of ..." (measured:
after training, the likeliest next tokens there were ",", "-", " the"; after
"<eos> a post <eos>" they were "@", "I", "The"). A post that does not fit the
rest of a block fills it with its first tokens and starts the next block whole;
only a post longer than a block goes on at the top of the next.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import NotEnoughTextError
from .files import atomic_dir, read_json, write_json
from .posts import Post

PACKING = "post-start"  # recorded with each dataset: one packed otherwise is made again


@dataclass
class DatasetInfo:
    base_model: str  # whose tokenizer made the blocks
    block_size: int
    seed: int
    train_posts: int
    validation_posts: int
    train_tokens: int
    validation_tokens: int
    train_blocks: int
    validation_blocks: int

    @classmethod
    def read(cls, folder: Path) -> "DatasetInfo":
        return cls(**read_json(folder / "info.json"))


def split_posts(posts: list[Post], validation_fraction: float, seed: int) -> tuple[list[Post], list[Post]]:
    if len(posts) < 2:
        raise NotEnoughTextError(f"only {len(posts)} post was kept, and training needs at least 2 "
                                 "(one to learn from, one to check on): add more posts")
    order = list(range(len(posts)))
    random.Random(seed).shuffle(order)
    n_val = min(len(posts) - 1, max(1, round(len(posts) * validation_fraction)))
    # A text posted twice (a repost kept from two sources, an archive and the API) goes where its first copy
    # went: a held-out post the model also trained on would make the validation figures lie.
    held_out = {posts[i].text for i in order[:n_val]}
    train = [posts[i] for i in order[n_val:] if posts[i].text not in held_out]
    validation = [posts[i] for i in order[:n_val]] + [posts[i] for i in order[n_val:] if posts[i].text in held_out]
    if not train:
        raise NotEnoughTextError(f"the {len(posts)} kept posts are all the same text: add other posts")
    return train, validation


def build_dataset(kept: list[Post], tokenizer, base_model: str, block_size: int,
                  validation_fraction: float, seed: int, out: Path) -> DatasetInfo:
    """Write `out/posts` (the split posts' text) and `out/blocks` (packed token blocks)."""
    from datasets import Dataset, DatasetDict

    train_posts, val_posts = split_posts(kept, validation_fraction, seed)
    texts = DatasetDict({
        "train": Dataset.from_dict({"id": [p.id for p in train_posts], "handle": [p.handle for p in train_posts],
                                    "text": [p.text for p in train_posts]}),
        "validation": Dataset.from_dict({"id": [p.id for p in val_posts], "handle": [p.handle for p in val_posts],
                                         "text": [p.text for p in val_posts]}),
    })
    eos = tokenizer.eos_token_id

    def tokenize(batch):
        ids = tokenizer(batch["text"])["input_ids"]
        return {"input_ids": [x + [eos] for x in ids]}

    def group_texts(batch, short_ok=False):
        blocks = pack(batch["input_ids"], block_size, eos)
        if short_ok and not blocks and batch["input_ids"]:
            # A validation split shorter than one block (a small account) becomes one shorter block.
            blocks = [[eos] + [t for ids in batch["input_ids"] for t in ids]]
        return {"input_ids": blocks, "labels": [list(b) for b in blocks]}

    # datasets names each map's output by hashing the function, which here pickles the whole tokenizer:
    # 3 s of each prepare with GPT-2's (none measurable with SmolLM2's). These datasets live in memory (no cache files to find again), so each output
    # is named here instead, from its input's name (which datasets takes from the content) and what was done.
    def named(dataset, step: str) -> str:
        done = f"{dataset._fingerprint} {step} {tokenizer.name_or_path} {len(tokenizer)} {eos} {block_size}"
        return hashlib.sha256(done.encode()).hexdigest()[:16]

    with _quiet_datasets():
        tokenized = DatasetDict({split: texts[split].map(tokenize, batched=True, remove_columns=["id", "handle", "text"],
                                                         new_fingerprint=named(texts[split], "tokenize"))
                                 for split in texts})
        # One batch per split, so the whole split is one token stream.
        blocks = DatasetDict({split: tokenized[split].map(group_texts, batched=True, batch_size=None,
                                                          remove_columns=["input_ids"],
                                                          fn_kwargs={"short_ok": split == "validation"},
                                                          new_fingerprint=named(tokenized[split], "group_texts"))
                              for split in tokenized})
    tokens = {split: sum(len(x) for x in tokenized[split]["input_ids"]) for split in tokenized}
    if len(blocks["train"]) == 0:
        raise NotEnoughTextError(f"the kept posts make only {tokens['train']} training tokens, less than one block "
                                 f"of {block_size}: add posts, or lower --block-size")
    info = DatasetInfo(base_model=base_model, block_size=block_size, seed=seed,
                       train_posts=len(train_posts), validation_posts=len(val_posts),
                       train_tokens=tokens["train"], validation_tokens=tokens["validation"],
                       train_blocks=len(blocks["train"]), validation_blocks=len(blocks["validation"]))
    with atomic_dir(out) as tmp, _quiet_datasets():
        texts.save_to_disk(str(tmp / "posts"))
        blocks.save_to_disk(str(tmp / "blocks"))
        write_json(tmp / "info.json", info.__dict__)
    return info


LOOKAHEAD = 64  # posts looked at for one that fits the rest of a block, before a post is cut


def pack(posts: list[list[int]], size: int, eos: int) -> list[list[int]]:
    """Blocks of `size` tokens from posts (each ending in `eos`), every block starting with `eos` and then a
    post's first token (see the module's docstring). Where the next post does not fit the rest of a block, a
    later one that does goes in first (so few posts are cut, and few tokens are seen twice); failing that the
    block is filled with the post's first tokens and the post starts the next block. The last, partly filled
    block is dropped, as run_clm drops its ragged tail."""
    blocks: list[list[int]] = []
    pending = collections.deque(range(len(posts)))  # taken from the front and from near it: a list's pop(0) is O(n)
    block = [eos]
    while pending:
        room = size - len(block)
        pick = next((j for j, i in enumerate(itertools.islice(pending, LOOKAHEAD)) if len(posts[i]) <= room), None)
        if pick is not None:
            block += posts[pending[pick]]
            del pending[pick]
            continue
        post = posts[pending[0]]
        if len(block) == 1:  # longer than a block: cut it, and its rest goes on at the top of the next blocks
            pending.popleft()
            blocks.append(block + post[:room])
            rest = post[room:]
            while len(rest) >= size:
                blocks.append(rest[:size])
                rest = rest[size:]
            block = rest or [eos]  # the rest ends with the post's eos: the next post follows it
            continue
        blocks.append(block + post[:room])  # filled with the next post's start, which then starts the next block
        block = [eos]
    return blocks


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """A few hundred posts take milliseconds: per-step progress bars would be noise."""
    import datasets

    was_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            datasets.enable_progress_bars()


def load_blocks(folder: Path):
    from datasets import load_from_disk

    return load_from_disk(str(folder / "blocks"))


def load_post_texts(folder: Path) -> list[str]:
    from datasets import load_from_disk

    posts = load_from_disk(str(folder / "posts"))
    return list(posts["train"]["text"]) + list(posts["validation"]["text"])
