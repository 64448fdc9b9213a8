"""`huggingtweets COMMAND [SOURCE...] [options]`. Errors a user can cause become one
line on stderr, `error: ...`; --debug (or HUGGINGTWEETS_DEBUG=1) shows the traceback."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import MISSING, fields

from . import pipeline
from .errors import HuggingtweetsError
from .settings import Settings

COMMANDS = {
    "run": "fetch, prepare, train, generate and write the card: a bot from an account, in one go",
    "fetch": "download the posts into WORK/<name>/posts.jsonl",
    "prepare": "filter the posts (stats.json) and build the packed dataset (dataset/)",
    "train": "fine-tune the base model (model/, metrics.json)",
    "generate": "sample from the trained bot (samples.jsonl)",
    "card": "write the model card, model/README.md",
}
SHORT = {"num_samples": ["-n"]}


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """One option per Settings field, with the field's own help, so the CLI and
    the library can never disagree."""
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="`sample` (default), `file:PATH`, `archive:PATH`, `@handle`, `bsky:handle`, "
                             "`mastodon:user@instance`")
    for f in fields(Settings):
        if f.name == "sources" or f.metadata.get("secret"):
            continue  # secrets come from the environment, never the command line (shell history, ps)
        flags = SHORT.get(f.name, []) + ["--" + f.name.replace("_", "-")]
        default = f.default if f.default is not MISSING else None
        help_text = f.metadata.get("help", "")
        if f.type in ("bool", bool):
            parser.add_argument(*flags, dest=f.name, action="store_true", help=help_text)
            continue
        kind = {"int": int, "float": float, "int | None": int, "float | None": float}.get(str(f.type), str)
        if default is not None:
            help_text += f" (default: {default})"
        parser.add_argument(*flags, dest=f.name, type=kind, default=None, metavar=f.name.upper(), help=help_text)


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
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    given = {f.name: getattr(args, f.name) for f in fields(Settings)
             if f.name != "sources" and not f.metadata.get("secret") and getattr(args, f.name, None) not in (None, False)}
    return Settings(sources=args.sources or ["sample"], **given)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("HUGGINGTWEETS_DEBUG", "") not in ("", "0")
    started = time.perf_counter()
    try:
        settings = settings_from_args(args)
        if args.command == "run":
            result = pipeline.run(settings)
            m = result["metrics"]
            print(f"\nDone in {time.perf_counter() - started:.0f} s: validation perplexity "
                  f"{m['eval_perplexity_before']:.1f} -> {m['eval_perplexity_after']:.1f}; "
                  f"model and card in {result['folder'] / 'model'}")
        elif args.command == "card":
            pipeline.card(settings, repo_id=args.repo_id)
        else:
            getattr(pipeline, args.command)(settings)
    except HuggingtweetsError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted; run the same command with --resume to continue training from the last checkpoint",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
