"""Publishing a bot to the Hugging Face Hub with huggingface_hub (create_repo,
upload_folder). The token comes from the call, HF_TOKEN or the user's login,
never from a file in the project; `dry_run` stages exactly what would be
uploaded in WORK/<name>/upload/ and needs no network.

Imitating someone without their consent breaks the Hub's terms, so publishing
an account asks the user to say it is theirs (`self`) or that its owner agreed
(`given`), and the card records which.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Callable

from .errors import HuggingtweetsError, MissingStepError
from .files import atomic_dir
from .settings import Settings

CONSENTS = ("self", "given")
REPO_ID = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def stage(bot_settings: Settings, name: str, repo_id: str, consent: str | None) -> Path:
    """WORK/<name>/upload/: the model, tokenizer, generation config and a card naming `repo_id`.
    `bot_settings` are the bot's own (see `_settings_for`)."""
    from .pipeline import card

    root = bot_settings.work / name
    model = root / "model"
    if not (model / "config.json").exists():
        raise MissingStepError(f"there is no trained model in {model}: run `huggingtweets run` first")
    upload = root / "upload"
    with atomic_dir(upload) as tmp:
        for item in model.iterdir():
            if item.is_file() and item.name != "README.md":
                shutil.copy2(item, tmp / item.name)
        # The card, rendered for where it is going (its snippet names the repo id).
        card(bot_settings, say=lambda _: None, repo_id=repo_id, consent=consent, out=tmp / "README.md")
    return upload


def _settings_for(settings: Settings, root: Path) -> Settings:
    """The settings of the bot in `root`, from the sources recorded when it was fetched."""
    from .files import read_json

    recorded = root / "metrics.json"
    sources = read_json(recorded).get("sources") if recorded.exists() else None
    return Settings(**{**settings.to_dict(), "sources": sources or settings.sources, "work": settings.work})


def push(settings: Settings, name: str, repo_id: str | None = None, private: bool = False,
         consent: str | None = None, token: str | None = None, dry_run: bool = False,
         say: Callable[[str], None] = print) -> str:
    """Stage the bot and upload it; returns the repo URL (or the staged folder for a dry run)."""
    repo_id = repo_id or name
    if not REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise HuggingtweetsError(f"`{repo_id}` is not a Hub repo id: write ORG/NAME with letters, digits, - _ .")
    if consent is not None and consent not in CONSENTS:
        raise HuggingtweetsError("--consent must be `self` (the account is yours) or `given` (its owner agreed)")
    bot_settings = _settings_for(settings, settings.work / name)
    from .sources import parse_source

    if consent is None and any(parse_source(s).kind != "sample" for s in bot_settings.sources):
        raise HuggingtweetsError(
            "publishing a bot that imitates a real person needs their consent (the Hub's terms): pass --consent self "
            "if the account is yours, or --consent given if its owner agreed")
    upload = stage(bot_settings, name, repo_id, consent)
    files = sorted(p.name for p in upload.iterdir())
    say(f"Staged {len(files)} files in {upload}: {', '.join(files)}")
    if dry_run:
        return str(upload)

    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HuggingtweetsError("publishing needs a Hugging Face token: set HF_TOKEN (a write token) "
                                 "or run `hf auth login`")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=url.repo_id, folder_path=str(upload), repo_type="model",
                          commit_message=f"huggingtweets: {name}")
    except HfHubHTTPError as e:
        status = getattr(e.response, "status_code", None)
        why = {401: "the Hub refused the token: check HF_TOKEN",
               403: f"the token may not write to {repo_id}: use a write token, or a repo id in your namespace"}.get(
            status, f"the Hub answered {status}")
        raise HuggingtweetsError(f"could not publish {repo_id}: {why}".replace(token, "***")) from None
    except OSError as e:
        raise HuggingtweetsError(f"could not reach the Hub to publish {repo_id} ({type(e).__name__}): "
                                 "check your connection, or use --dry-run") from None
    say(f"Published {url}")
    return str(url)
