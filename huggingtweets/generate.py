"""Sampling from a trained bot, without Trainer: nucleus sampling in one batch
(the KV cache makes 5 samples cost little more than 1), each sample cut at its
first end-of-post, and flagged when it copies a training post."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

COPY_WORDS = 8  # a sample sharing this many consecutive words with a kept post is a copy
COPY_SHARE = 0.8  # ... or 80% of that post's words


@dataclass
class Sample:
    text: str  # prompt + continuation, as pipeline('text-generation') shows it
    prompt: str
    seed: int
    shared_words: int = 0  # longest run of words shared with any kept post
    copy: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def load_bot(folder: Path, precision: str = "auto"):
    """The saved bot and its tokenizer, ready to sample (see `for_sampling`)."""
    from .models import load_model, load_tokenizer

    tokenizer = load_tokenizer(str(folder))
    return for_sampling(load_model(str(folder)), precision), tokenizer


def for_sampling(model, precision: str = "auto"):
    """On the GPU when there is one, and in bf16 (fp16 on a GPU without it) wherever training would
    choose that: each new token reads every weight once, so half the bytes is nearly half the time
    (sampling 1.7x faster on a 2-core Zen 4 with avx512_bf16). generate() turns the logits to fp32
    before sampling, so only the network runs in the narrower type."""
    import torch

    from .models import choose_precision

    chosen, _ = choose_precision(precision)
    if torch.cuda.is_available():
        model.to("cuda")
    if chosen == "bf16" or (chosen == "fp16" and torch.cuda.is_available()):
        model.to(torch.bfloat16 if chosen == "bf16" else torch.float16)
    return model.eval()


def nucleus_sampling(model, top_p: float, temperature: float, seed: int) -> dict:
    """generate()'s arguments for drawing each token as generate(do_sample=True) would (temperature, then the
    model's top-k, 50 unless its generation config says otherwise, then top-p), with the draw made over those
    top-k alone: HF's sampler sorts the whole vocabulary and draws over all of it for each token (for 50 rows of
    SmolLM2's 49,152, a 16 ms sort and 47 ms of exponential_ inside multinomial: 40% of sampling on a 2-core
    CPU; 100 samples 14.5 -> 8.9 s). The drawn token is handed back as the only one possible under greedy
    decoding, so generate still does the rest: the KV cache, end of post, the model's own processors.
    Seeded with a generator of its own; the same distribution as HF's, other draws than its."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    top_k = model.generation_config.top_k
    top_k = 50 if top_k is None else top_k  # generate()'s default where the model sets none; 0 turns it off
    generator = torch.Generator(model.device).manual_seed(seed)

    class Nucleus(LogitsProcessor):
        def __call__(self, input_ids, scores):
            probs, ids = nucleus(scores, top_k, top_p, temperature)
            chosen = ids.gather(-1, torch.multinomial(probs, 1, generator=generator))
            return torch.full_like(scores, float("-inf")).scatter_(-1, chosen, 0.0)

    return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None,
            "logits_processor": LogitsProcessorList([Nucleus()])}


def nucleus(scores, top_k: int, top_p: float, temperature: float):
    """The tokens a draw may give and their probabilities (0 for those top-p leaves out), over the top-k
    (0: all), highest first."""
    import torch

    k = min(top_k or scores.shape[-1], scores.shape[-1])
    top, ids = torch.topk(scores.float() / temperature, k, dim=-1)
    probs = top.softmax(-1)
    before = probs.cumsum(-1) - probs  # as HF's top-p: a token stays while less than top_p comes before it
    return probs.masked_fill(before >= top_p, 0.0), ids


def generate(model, tokenizer, prompt: str = "My dream is", num_samples: int = 5, max_new_tokens: int = 40,
             top_p: float = 0.95, temperature: float = 1.0, seed: int = 42,
             training_texts: list[str] | None = None) -> list[Sample]:
    import torch

    # The prompt opens a post, so the end-of-post token goes before it, as before every post in training.
    ids = torch.tensor([[tokenizer.eos_token_id] + tokenizer(prompt)["input_ids"]], device=model.device)
    prompt_len = ids.shape[1]
    ids = ids.repeat(num_samples, 1)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                             **nucleus_sampling(model, top_p, temperature, seed))
    samples = []
    for row in out.tolist():
        continuation = row[prompt_len:]
        if tokenizer.eos_token_id in continuation:
            continuation = continuation[:continuation.index(tokenizer.eos_token_id)]
        text = _decoded(tokenizer, row[1:prompt_len] + continuation)
        sample = Sample(text=text, prompt=prompt, seed=seed)
        if training_texts:
            sample.shared_words, sample.copy = copy_check(text, prompt, training_texts)
        samples.append(sample)
    return samples


def unprompted(model, tokenizer, num_samples: int = 100, max_new_tokens: int = 40, top_p: float = 0.95,
               temperature: float = 1.0, seed: int = 42, batch_size: int = 50) -> list[str]:
    """Samples drawn from the start of a post (nothing but the end-of-post token before them), as the bot
    writes when given no prompt: what the voice evaluation judges. Batched and seeded; each cut at its end."""
    import torch

    eos = tokenizer.eos_token_id
    sampling = nucleus_sampling(model, top_p, temperature, seed)  # one stream of draws across the batches
    texts: list[str] = []
    with torch.inference_mode():
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            ids = torch.tensor([[eos]] * n, device=model.device)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 eos_token_id=eos,
                                 pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
                                 **sampling)
            for row in out[:, 1:].tolist():
                if eos in row:
                    row = row[:row.index(eos)]
                texts.append(_decoded(tokenizer, row))
    return texts


def draw_identity(model, tokenizer, batch_size: int = 50, **draw) -> dict:
    """What `unprompted`'s samples depend on, as JSON: the weights as they are sampled from (after the
    precision's cast), config, tokenizer, the draw's settings, this code and the libraries' versions, and the
    host, whose threads and instructions round the sums differently. Seeded, equal identities draw equal samples;
    the weights are hashed whole (0.2 s for SmolLM2's), not named, so a changed file cannot pass for the old one."""
    import hashlib
    import tempfile

    import torch
    import transformers

    from . import __version__
    from .master import _host
    from .train import host_description

    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        weights.update(f"{name} {flat.dtype} {tuple(tensor.shape)}".encode())
        weights.update(flat.view(torch.uint8).numpy())
    if getattr(tokenizer, "backend_tokenizer", None) is not None:
        vocabulary = tokenizer.backend_tokenizer.to_str()
    else:  # one without the tokenizers library's backend: the files it saves
        with tempfile.TemporaryDirectory() as folder:
            tokenizer.save_pretrained(folder)
            vocabulary = str(sorted((p.name, p.read_bytes()) for p in Path(folder).iterdir()))
    return {
        "weights": weights.hexdigest(), "device": str(model.device),
        "config": model.config.to_json_string(), "generation_config": model.generation_config.to_json_string(),
        "tokenizer": hashlib.sha256(vocabulary.encode()).hexdigest(),
        "special_tokens": [tokenizer.eos_token_id, tokenizer.pad_token_id, sorted(tokenizer.all_special_tokens)],
        "draw": {**draw, "batch_size": batch_size},
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "versions": {"huggingtweets": __version__, "torch": torch.__version__, "transformers": transformers.__version__},
        "host": host_description(), "cpu": hashlib.sha256(_host().encode()).hexdigest(),
    }


def _decoded(tokenizer, ids: list[int]) -> str:
    """A sample's text: special tokens left out, also any spelled out as plain text, whitespace collapsed."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    for token in (t for t in tokenizer.all_special_tokens if t):
        text = text.replace(token, "")
    return " ".join(text.split())


def copy_check(text: str, prompt: str, training_texts: list[str]) -> tuple[int, bool]:
    """Longest run of consecutive words a sample shares with any training post,
    and whether that makes it a copy (8+ words, or 80% of the post)."""
    words = text.lower().split()
    best, copied = 0, False
    for post in training_texts:
        post_words = post.lower().split()
        if not post_words:
            continue
        # Longest common run of words, by dynamic programming over the two word lists.
        prev = [0] * (len(post_words) + 1)
        longest = 0
        for w in words:
            cur = [0] * (len(post_words) + 1)
            for j, pw in enumerate(post_words, 1):
                if w == pw:
                    cur[j] = prev[j - 1] + 1
                    longest = max(longest, cur[j])
            prev = cur
        best = max(best, longest)
        if longest >= COPY_WORDS or (len(post_words) >= 3 and longest >= COPY_SHARE * len(post_words)
                                     and longest > len(prompt.split())):
            copied = True
    return best, copied
