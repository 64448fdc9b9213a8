import pytest
from transformers import AutoTokenizer

from huggingtweets import Post
from huggingtweets.dataset import DatasetInfo, build_dataset, load_blocks, split_posts
from huggingtweets.errors import NotEnoughTextError


def posts(n):
    return [Post(id=str(i), text=f"post number {i} says hello to everyone", handle="h", source="file")
            for i in range(n)]


def test_posts_not_blocks_are_split_and_the_split_is_seeded():
    train, val = split_posts(posts(100), 0.1, seed=1)
    assert len(val) == 10 and len(train) == 90
    assert not {p.id for p in train} & {p.id for p in val}
    assert split_posts(posts(100), 0.1, seed=1) == (train, val)
    assert split_posts(posts(100), 0.1, seed=2) != (train, val)
    with pytest.raises(NotEnoughTextError, match="at least 2"):
        split_posts(posts(1), 0.1, seed=1)


def test_blocks_are_packed_with_an_end_of_text_after_every_post(tmp_path, gpt2_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir)
    kept = posts(50)
    info = build_dataset(kept, tok, "tiny", block_size=16, validation_fraction=0.2, seed=0, out=tmp_path / "ds")
    blocks = load_blocks(tmp_path / "ds")
    assert info == DatasetInfo.read(tmp_path / "ds")
    assert (info.train_posts, info.validation_posts) == (40, 10)
    assert info.train_blocks == len(blocks["train"]) >= info.train_tokens // 16
    assert all(len(b) == 16 for b in blocks["train"]["input_ids"])
    assert blocks["train"]["labels"] == blocks["train"]["input_ids"]
    stream = [t for b in blocks["train"]["input_ids"] for t in b]
    text = tok.decode(stream)
    # Every post ends with <|endoftext|>; only the ragged tail of the last post can be cut.
    assert text.count("<|endoftext|>") >= info.train_posts - 1
    assert "hello to everyone<|endoftext|>post number" in text
    # Validation posts are not in the training text.
    train_text = tok.decode([t for ids in blocks["train"]["input_ids"] for t in ids])
    val_text = tok.decode([t for ids in blocks["validation"]["input_ids"] for t in ids])
    assert not any(f"number {i} " in train_text and f"number {i} " in val_text for i in range(50))
    assert not list(tmp_path.glob(".ds*"))  # no temp folder left behind


def test_every_block_starts_where_a_post_starts(tmp_path, gpt2_tokenizer_dir):
    # A block cut anywhere in the stream puts a mid-post token at position 0 of every block, so the model
    # learns that text at the start of its window continues a sentence: sampled from the end-of-post token
    # alone (the start of a post), it wrote ", and ..." or "was the host of ...". Every block must start
    # with the end-of-post token and then the first token of a post.
    tok = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir)
    kept = [Post(id=str(i), text=("word " * (3 + i % 9)) + f"end{i}", handle="h", source="file") for i in range(80)]
    kept.append(Post(id="long", text="long " * 40 + "tail", handle="h", source="file"))  # longer than a block
    build_dataset(kept, tok, "tiny", block_size=16, validation_fraction=0.1, seed=0, out=tmp_path / "ds")
    blocks = load_blocks(tmp_path / "ds")
    starts = {tok.decode(tok(p.text)["input_ids"][:1]) for p in kept}
    for split in ("train", "validation"):
        for ids in blocks[split]["input_ids"]:
            assert len(ids) == 16 or split == "validation"
            if tok.decode(ids[:2]) == "<|endoftext|>long" or "long" in tok.decode(ids[:1]):
                continue  # the post longer than a block goes on in the next block, where it must
            assert ids[0] == tok.eos_token_id, tok.decode(ids)
            assert tok.decode(ids[1:2]) in starts, tok.decode(ids)
    # No post is lost to the cuts: every training post's text is somewhere in the blocks, whole.
    text = tok.decode([t for ids in blocks["train"]["input_ids"] for t in ids])
    from huggingtweets.dataset import split_posts

    train, _ = split_posts(kept, 0.1, seed=0)
    assert sum(f"<|endoftext|>{p.text}<|endoftext|>" in text for p in train if p.id != "long") >= len(train) - 2


def test_a_split_shorter_than_a_block_becomes_one_shorter_block(tmp_path, gpt2_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir)
    info = build_dataset(posts(40), tok, "tiny", block_size=64, validation_fraction=0.05, seed=0, out=tmp_path / "ds")
    blocks = load_blocks(tmp_path / "ds")
    assert info.validation_tokens < 64
    # ... with the end-of-post token first, as every block starts
    assert info.validation_blocks == 1 and len(blocks["validation"][0]["input_ids"]) == info.validation_tokens + 1


def test_too_few_tokens_for_one_training_block_is_a_clear_error(tmp_path, gpt2_tokenizer_dir):
    tok = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir)
    with pytest.raises(NotEnoughTextError, match="less than one block of 1024: add posts, or lower --block-size"):
        build_dataset(posts(10), tok, "tiny", block_size=1024, validation_fraction=0.1, seed=0, out=tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_a_text_posted_twice_is_never_on_both_sides_of_the_split():
    # Two sources that share posts (an archive and the API of one account, with --name): every copy goes
    # where the first went, so no held-out post was also trained on.
    twice = posts(60) + [Post(id=f"again-{i}", text=p.text, handle="h2", source="file")
                         for i, p in enumerate(posts(60))]
    train, val = split_posts(twice, 0.1, seed=3)
    assert not {p.text for p in train} & {p.text for p in val}
    assert len(train) + len(val) == 120 and 12 <= len(val) <= 24
