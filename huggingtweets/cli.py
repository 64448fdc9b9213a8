"""`huggingtweets COMMAND [SOURCE...] [options]`. Errors a user can cause become one
line on stderr, `error: ...`; --debug (or HUGGINGTWEETS_DEBUG=1) shows the traceback."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import time
import types
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from . import pipeline
from .errors import HuggingtweetsError
from .settings import Settings
from .train import checkpoints_newest_first

COMMANDS = {
    "run": "fetch, prepare, train, generate, eval and write the card: a bot from an account, in one go",
    "fetch": "download the posts into WORK/<name>/posts.jsonl",
    "prepare": "filter the posts (stats.json) and build the packed dataset (dataset/)",
    "train": "fine-tune the base model (model/, metrics.json)",
    "generate": "sample from the trained bot (samples.jsonl)",
    "eval": "measure how much the bot sounds like the account (eval.json): voice match, bits per byte, AUC",
    "card": "write the model card, model/README.md",
    "export": "write the bot as GGUF for llama.cpp and Ollama, with a Modelfile (export/<name>.gguf)",
}
SHORT = {"num_samples": ["-n"]}
PUSH_HELP = "publish a bot to the Hugging Face Hub (model, tokenizer, card), or stage it with --dry-run"
APP_HELP = "serve the notebook app in your browser (Voila, on 127.0.0.1 only)"
APP_PORT = 8866


class _StoreTuple(argparse.Action):
    """nargs="+" gives a list; a tuple[X, ...] setting gets a tuple."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, tuple(values))


def _option_kwargs(name: str, hint: Any, default: Any) -> dict[str, Any]:
    """add_argument's type (or action) for a setting's resolved type. A type not named here is a TypeError
    when the parser is built, so a new setting can never silently parse as a string."""
    if get_origin(hint) in (Union, types.UnionType):
        kinds = [a for a in get_args(hint) if a is not type(None)]
        if len(kinds) != 1 or len(kinds) == len(get_args(hint)):
            raise TypeError(f"setting {name}: {hint} is not X or X | None, so it cannot be one option")
        hint = kinds[0]  # X | None: None is "not given"
    if hint is bool:
        if default is not False and default is not None:
            raise TypeError(f"setting {name}: a bool defaulting to {default!r} cannot be a store_true flag")
        return {"action": "store_true"}
    if hint in (int, float, str, Path):
        return {"type": hint}
    if get_origin(hint) is Literal:
        kinds = {type(choice) for choice in get_args(hint)}
        if len(kinds) != 1 or not kinds <= {int, float, str}:
            raise TypeError(f"setting {name}: {hint} mixes or has choices argparse cannot parse")
        return {"type": kinds.pop(), "choices": get_args(hint)}
    item = get_args(hint)[0] if get_args(hint) else None
    if get_origin(hint) is list and len(get_args(hint)) == 1 and item in (int, float, str, Path):
        return {"type": item, "nargs": "+"}
    if get_origin(hint) is tuple and get_args(hint)[1:] == (Ellipsis,) and item in (int, float, str, Path):
        return {"type": item, "nargs": "+", "action": _StoreTuple}
    raise TypeError(f"setting {name}: no command-line option for type {hint}; map it in cli._option_kwargs")


def _add_settings(parser: argparse.ArgumentParser, settings_class: type = Settings) -> None:
    """One option per Settings field, with the field's own help and type, so the CLI and
    the library can never disagree."""
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="`sample` (default), `file:PATH`, `archive:PATH`, `@handle`, `bsky:handle`, "
                             "`mastodon:user@instance`")
    hints = get_type_hints(settings_class)  # settings.py's annotations are strings (from __future__)
    for f in fields(settings_class):
        if f.name == "sources" or f.metadata.get("secret"):
            continue  # secrets come from the environment, never the command line (shell history, ps)
        flags = SHORT.get(f.name, []) + ["--" + f.name.replace("_", "-")]
        default = f.default if f.default is not MISSING else None
        help_text = f.metadata.get("help", "")
        kwargs = _option_kwargs(f.name, hints[f.name], f.default)
        if kwargs.get("action") != "store_true":
            # Every option defaults to None, so "not given" stays apart from a given default (settings_from_args)
            kwargs.update(default=None, metavar=f.name.upper())
            if default is not None:
                help_text += f" (default: {default})"
        parser.add_argument(*flags, dest=f.name, help=help_text, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="huggingtweets", description="Turn an account's posts into a bot that writes like it.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_settings(p)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors")
        if name == "card":
            p.add_argument("--repo-id", help="the Hub repo id the card's snippet names (default: huggingtweets/<name>)")
            p.add_argument("--author", help="who trained the bot, for the card's About (default: no About)")
        if name == "export":
            p.add_argument("--gguf", action="store_true", help="GGUF, for llama.cpp and Ollama (the one format, "
                                                               "so also the default)")
            p.add_argument("--quant", choices=["f16", "q8_0"], default="f16",
                           help="f16 (the weights as trained, half the bytes of fp32) or q8_0 (8-bit, about half "
                                "again) (default: f16)")
    p = sub.add_parser("push", help=PUSH_HELP, description=PUSH_HELP)
    p.add_argument("name", metavar="NAME", help="the bot's name: its folder in WORK (sample, jack, a-b ...)")
    p.add_argument("--work", help="work folder (default: ./huggingtweets-work, env HUGGINGTWEETS_WORK)")
    p.add_argument("--repo-id", help="ORG/NAME on the Hub (default: NAME in your namespace)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--consent", choices=["self", "given"],
                   help="`self`: the account is yours; `given`: its owner agreed (needed for any real account)")
    p.add_argument("--dry-run", action="store_true", help="stage the upload in WORK/NAME/upload/ and stop")
    p.add_argument("--author", help="who trained the bot, for the card's About (default: your Hub user name)")
    p.add_argument("--license", help="the licence to publish under, as the Hub writes it (mit, apache-2.0 ...): "
                                     "needed when the base model's card names none (default: the base model's)")
    p.add_argument("--gguf", action="store_true",
                   help="upload the GGUF export too (WORK/NAME/export/, made by `huggingtweets export`)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors")
    # Not a step: serves the notebook app (huggingtweets/app.ipynb) with Voila, on 127.0.0.1 only.
    p = sub.add_parser("app", help=APP_HELP, description=APP_HELP)
    p.add_argument("--port", type=int, default=APP_PORT, help=f"port on 127.0.0.1 (default: {APP_PORT})")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the full traceback on errors")
    return parser


def app_command(port: int) -> list[str]:
    """Voila serving the app-only notebook shipped in the package; never opens a browser itself."""
    notebook = Path(__file__).with_name("app.ipynb")
    return [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"]


def serve_app(port: int) -> int:
    """Replace this process with Voila (so Ctrl-C and SIGTERM reach it directly)."""
    import importlib.util
    import json

    from .files import cache_dir

    missing = [m for m in ("voila", "ipywidgets", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise HuggingtweetsError(f"the app needs {', '.join(missing)}: pip install 'huggingtweets[app]'")
    if not 0 < port < 65536:
        raise HuggingtweetsError(f"--port must be between 1 and 65535, not {port}")
    env = dict(os.environ)
    # The notebook's kernel runs in the notebook's folder: give it this folder's work folder.
    env["HUGGINGTWEETS_WORK"] = str(Path(env.get("HUGGINGTWEETS_WORK") or "huggingtweets-work").resolve())
    # ... and this Python, whatever other `python3` kernel is installed.
    kernels = cache_dir() / "jupyter"
    spec = kernels / "kernels" / "python3" / "kernel.json"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                "display_name": "Python 3 (huggingtweets)", "language": "python"}))
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(kernels), env.get("JUPYTER_PATH")]))
    print(f"huggingtweets app: http://127.0.0.1:{port}/ (work folder {env['HUGGINGTWEETS_WORK']}; Ctrl-C stops it)",
          flush=True)
    sys.stderr.flush()
    command = app_command(port)
    os.execve(command[0], command, env)
    return 0  # not reached


def settings_from_args(args: argparse.Namespace) -> Settings:
    given = {}
    for f in fields(Settings):
        value = getattr(args, f.name, None)
        # `is`, not `in (None, False)`: 0 == False, and --min-chars 0 or --checkpoint-minutes 0 are real values
        if f.name != "sources" and not f.metadata.get("secret") and value is not None and value is not False:
            given[f.name] = value
    return Settings(sources=args.sources or ["sample"], **given)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("HUGGINGTWEETS_DEBUG", "") not in ("", "0")
    started = time.perf_counter()
    settings = None
    try:
        if args.command == "app":
            return serve_app(args.port)
        if args.command == "push":
            from .hub import push

            settings = Settings(**({"work": args.work} if args.work else {}))
            push(settings, args.name, repo_id=args.repo_id, private=args.private, consent=args.consent,
                 dry_run=args.dry_run, author=args.author, license=args.license, gguf=args.gguf)
            return 0
        settings = settings_from_args(args)
        if args.command == "run":
            result = pipeline.run(settings)
            m = result["metrics"]
            print(f"\nDone in {time.perf_counter() - started:.0f} s: validation perplexity "
                  f"{m['eval_perplexity_before']:.1f} -> {m['eval_perplexity_after']:.1f}; "
                  f"model and card in {result['folder'] / 'model'}")
        elif args.command == "card":
            pipeline.card(settings, repo_id=args.repo_id, author=args.author)
        elif args.command == "eval":
            pipeline.evaluate(settings)
        elif args.command == "export":
            pipeline.export(settings, quant=args.quant)
        else:
            getattr(pipeline, args.command)(settings)
    except HuggingtweetsError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        message = os_error_line(e, args)
        if debug or message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        step = "push" if args.command == "push" else pipeline.interrupted_step
        saved = None
        if step == "train" and settings is not None:
            with contextlib.suppress(HuggingtweetsError, OSError):
                saved = next(iter(checkpoints_newest_first(pipeline.Workspace.of(settings).checkpoints)), None)
        # On a line of its own: a progress bar (or the terminal's ^C) may have left the cursor mid-line
        print(f"\nerror: {interrupted_line(step, saved)}", file=sys.stderr)
        return 130
    return 0


# Disk problems a user can fix; any other OSError is a bug and keeps its traceback.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
NOT_A_FOLDER = {errno.ENOTDIR, errno.EEXIST}


def os_error_line(e: OSError, args: argparse.Namespace) -> str | None:
    """One line for a disk problem the user can fix (nothing half-written is kept: every
    file is written under a temp name first)."""
    where = e.filename or getattr(args, "work", None) or "the work folder"
    if e.errno in DISK_FULL:
        return (f"the disk is full ({where}): free some space, or point --work at another disk, and run the same "
                "command again")
    if e.errno in NOT_WRITABLE:
        return f"cannot write {where} ({e.strerror}): point --work at a folder you can write to"
    if e.errno in NOT_A_FOLDER:
        return f"{where} is in the way ({e.strerror}): point --work at a folder, or move that file"
    return None


def interrupted_line(step: str | None, checkpoint: Path | None = None) -> str:
    """What stopped, and what running the same command again does."""
    again = "run the same command again"
    resume = (f"training goes on from {checkpoint.name} in {checkpoint.parent}" if checkpoint else
              "no checkpoint was saved yet (one is saved every --checkpoint-minutes), so training starts over")
    return "interrupted" + {
        "fetch": f" while fetching the posts; {again}: a network fetch goes on from its last page, "
                 "a file or archive is read again",
        "prepare": f" while preparing the dataset; nothing half-written was kept: {again}",
        "train": f" while training; {again}: {resume}",
        "generate": f" while sampling; the model is saved: {again}",
        "eval": f" while evaluating; the model is saved: {again}",
        "card": f" while writing the card; {again}",
        "export": f" while exporting; nothing half-written was kept: {again}",
        "push": " while publishing; the upload may be incomplete: run `huggingtweets push` again, "
                "which uploads the whole folder again",
    }.get(step or "", f"; nothing half-written was kept: {again}")


if __name__ == "__main__":
    sys.exit(main())
