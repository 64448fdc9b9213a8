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


def stage(bot_settings: Settings, name: str, repo_id: str, consent: str | None, author: str | None = None,
          license: str | None = None, gguf: bool = False) -> Path:
    """WORK/<name>/upload/: the model, tokenizer, generation config and a card naming `repo_id`, `author`
    (its About) and `license` (else the base model's); with `gguf`, the GGUF export and its Modelfile too.
    `bot_settings` are the bot's own (see `_settings_for`)."""
    from .pipeline import card, read_export

    root = bot_settings.work / name
    model = _trained_model(root)
    exported = read_export(bot_settings) if gguf else None
    if gguf and exported is None:
        raise MissingStepError(f"there is no GGUF export of this model in {root / 'export'}: run `huggingtweets "
                               "export` with the options it was trained with first (or push without --gguf)")
    upload = root / "upload"
    with atomic_dir(upload) as tmp:
        for item in model.iterdir():
            if item.is_file() and item.name != "README.md":
                shutil.copy2(item, tmp / item.name)
        if exported is not None:
            shutil.copy2(exported, tmp / exported.name)
            shutil.copy2(exported.with_name("Modelfile"), tmp / "Modelfile")
        # The card, rendered for where it is going (its snippet names the repo id).
        card(bot_settings, say=lambda _: None, repo_id=repo_id, consent=consent, out=tmp / "README.md",
             author=author, license=license, gguf=exported.name if exported is not None else None)
    return upload


def _trained_model(root: Path) -> Path:
    model = root / "model"
    if not (model / "config.json").exists():
        raise MissingStepError(f"there is no trained model in {model}: run `huggingtweets run` first")
    return model


def _settings_for(settings: Settings, root: Path) -> Settings:
    """The settings of the bot in `root`, as recorded when it was trained (sources, model, prompt ...), so its
    card is the one `run` wrote: what the caller gives counts only where nothing was recorded."""
    from dataclasses import fields

    from .files import read_json

    recorded_file = root / "metrics.json"
    try:
        recorded = read_json(recorded_file) if recorded_file.exists() else {}
    except (OSError, ValueError):
        recorded = {}
    recorded = recorded if isinstance(recorded, dict) else {}
    given = settings.to_dict()
    kept = {f.name for f in fields(Settings) if not f.metadata.get("secret")} - {"work", "sources"}
    old = recorded.get("settings") if isinstance(recorded.get("settings"), dict) else {}
    sources = recorded.get("sources") or settings.sources
    try:
        return Settings(**{**given, **{k: v for k, v in old.items() if k in kept}, "sources": sources,
                           "work": settings.work})
    except HuggingtweetsError:  # recorded by another version, with values this one refuses: the sources suffice
        return Settings(**{**given, "sources": sources, "work": settings.work})


def _base_license(root: Path) -> str | None:
    """The base model's licence, as the card would name it."""
    from .card import base_facts
    from .files import read_json

    try:
        base = read_json(root / "metrics.json").get("base")
    except (OSError, ValueError, AttributeError):
        return None
    return base_facts(base)[0] if isinstance(base, dict) else None


def _network_errors() -> tuple[type[BaseException], ...]:
    """What a failed connection raises: OSError (requests, sockets), and the request errors of httpx or
    httpx2 (huggingface_hub 1.x and 2.x), which are not OSErrors."""
    import importlib

    errors: list[type[BaseException]] = [OSError]
    for module in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(module).RequestError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _hub_error(e: BaseException, repo_id: str, token: str) -> HuggingtweetsError:
    """One line saying what went wrong and what to do, for whatever huggingface_hub raised."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(e, HfHubHTTPError):
        status = getattr(e.response, "status_code", None)
        why = {401: "the Hub refused the token: check HF_TOKEN",
               403: f"the token may not write to {repo_id}: use a write token, or a repo id in your namespace"}.get(
            status, f"the Hub answered {status}")
        message = f"could not publish {repo_id}: {why}"
    else:
        where = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        message = (f"could not reach the Hub ({where}) to publish {repo_id} ({type(e).__name__}): check your "
                   "connection (and HF_ENDPOINT, if you set it), or stage the upload with --dry-run")
    return HuggingtweetsError(message.replace(token, "***"))


def push(settings: Settings, name: str, repo_id: str | None = None, private: bool = False,
         consent: str | None = None, token: str | None = None, dry_run: bool = False,
         say: Callable[[str], None] = print, author: str | None = None, license: str | None = None,
         gguf: bool = False) -> str:
    """Stage the bot and upload it; returns the repo URL (or the staged folder for a dry run).
    The card's About names `author`, else the Hub user the token belongs to; its licence is `license`,
    else the base model's, and a bot whose base model's licence is not known is refused without one."""
    from .models import license_id

    repo_id = repo_id or name
    if not REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise HuggingtweetsError(f"`{repo_id}` is not a Hub repo id: write ORG/NAME with letters, digits, - _ .")
    if consent is not None and consent not in CONSENTS:
        raise HuggingtweetsError("--consent must be `self` (the account is yours) or `given` (its owner agreed)")
    if license is not None and not license_id(license):
        raise HuggingtweetsError(f"--license {license!r} is not a licence id as the Hub writes them: use one like "
                                 "mit, apache-2.0 or cc-by-4.0 (or `other`)")
    license = license_id(license) if license is not None else None
    root = settings.work / name
    bot_settings = _settings_for(settings, root)
    from .sources import parse_source

    if consent is None and any(parse_source(s).kind != "sample" for s in bot_settings.sources):
        raise HuggingtweetsError(
            "publishing a bot that imitates a real person needs their consent (the Hub's terms): pass --consent self "
            "if the account is yours, or --consent given if its owner agreed")
    _trained_model(root)
    if not license and not _base_license(root):
        raise HuggingtweetsError("the base model's licence is not known (its card names none): check its terms and "
                                 "pass --license with the licence to publish under, e.g. --license mit")
    if dry_run:
        return str(_stage(bot_settings, name, repo_id, consent, author, license, say, gguf))

    from huggingface_hub import HfApi, constants, get_token

    if constants.is_offline_mode():
        raise HuggingtweetsError("HF_HUB_OFFLINE is set, so nothing can be published: unset it, or stage the upload "
                                 "with --dry-run")
    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HuggingtweetsError("publishing needs a Hugging Face token: set HF_TOKEN (a write token) "
                                 "or run `hf auth login`")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    from huggingface_hub.errors import HfHubHTTPError

    failures = _network_errors()  # HfHubHTTPError is an OSError too: one handler, which tells them apart
    try:
        # Before anything is staged: checks the token and that the Hub answers, and says who publishes.
        user = api.whoami()
    except HfHubHTTPError as e:
        if getattr(e.response, "status_code", None) == 401:
            raise _hub_error(e, repo_id, token) from None
        user = {}  # a Hub that will not say who this is: the card's About is left out, unless --author
    except failures as e:
        raise _hub_error(e, repo_id, token) from None
    author = author or (user.get("name") if isinstance(user, dict) else None)
    upload = _stage(bot_settings, name, repo_id, consent, author, license, say, gguf)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=url.repo_id, folder_path=str(upload), repo_type="model",
                          commit_message=f"huggingtweets: {name}")
    except failures as e:
        raise _hub_error(e, repo_id, token) from None
    say(f"Published {url}")
    return str(url)


def _stage(bot_settings: Settings, name: str, repo_id: str, consent: str | None, author: str | None,
           license: str | None, say: Callable[[str], None], gguf: bool = False) -> Path:
    upload = stage(bot_settings, name, repo_id, consent, author=author, license=license, gguf=gguf)
    files = sorted(p.name for p in upload.iterdir())
    say(f"Staged {len(files)} files in {upload}: {', '.join(files)}")
    return upload
