"""The whole pipeline with recognisable fake tokens for X, the Hub and W&B:
not one occurrence in anything it prints or writes."""

from conftest import run_cli
from test_hub import HF_TOKEN as HF, FakeHub
from test_x import TOKEN as X_TOKEN, FakeX

WANDB = "wandbFAKEkeyFORleakCHECK" + "9" * 16


def test_no_token_reaches_output_files_runs_or_the_card(loopback, tmp_path, tiny_gpt2):
    FakeX(loopback, n=450)
    FakeHub(loopback)
    wandb_dir = tmp_path / "wandb-files"
    env = {"X_BEARER_TOKEN": X_TOKEN, "HF_TOKEN": HF, "WANDB_API_KEY": WANDB, "WANDB_MODE": "offline",
           "WANDB_DIR": str(wandb_dir), "WANDB_DATA_DIR": str(wandb_dir / "data"),
           "WANDB_CACHE_DIR": str(wandb_dir / "cache"), "WANDB_CONFIG_DIR": str(wandb_dir / "config"),
           "HF_ENDPOINT": loopback.url, "HF_HUB_DISABLE_XET": "1", "HUGGINGTWEETS_WORK": str(tmp_path / "work")}
    for d in ("", "data", "cache", "config"):
        (wandb_dir / d).mkdir(parents=True, exist_ok=True)
    runs = [
        run_cli("run", "@jack", "--api-base", loopback.url, "--model", str(tiny_gpt2), "--max-steps", "3", "-n", "2",
                env=env),
        # A bad token for X on a fresh account: the error must not echo it either.
        run_cli("fetch", "@nobody", "--api-base", loopback.url, env={**env, "X_BEARER_TOKEN": X_TOKEN + "x"}),
        # the tiny model's card names no licence: push asks for one
        run_cli("push", "jack", "--repo-id", "me/jack-bot", "--consent", "self", "--license", "mit",
                env={**env, "HF_HUB_OFFLINE": "0"}),
        run_cli("push", "jack", "--repo-id", "me/jack-bot", "--consent", "self", "--license", "mit",
                env={**env, "HF_HUB_OFFLINE": "0", "HF_TOKEN": HF + "x"}),
    ]
    assert [r.returncode for r in runs] == [0, 1, 0, 1], [r.stderr[-1500:] for r in runs]
    secrets = [X_TOKEN, HF, WANDB]
    printed = "".join(r.stdout + r.stderr for r in runs)
    assert [s for s in secrets if s in printed] == []
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.name == "README.md" for p in files)
    leaks = [(str(p), s) for p in files for s in secrets if s.encode() in p.read_bytes()]
    assert leaks == []
    # And what reached the servers carried the tokens only where they belong: the Authorization header.
    for request in loopback.requests:
        for secret in secrets:
            assert secret not in request.path and secret.encode() not in request.body
