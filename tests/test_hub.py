"""Publishing: --dry-run staged fully and loaded back, and a real upload with
huggingface_hub against a loopback server that speaks the endpoints whoami,
create_repo and upload_folder use; a Hub that cannot be reached, and a base model
whose licence nobody knows, are one line each."""

import base64
import json
import re
import socket

import pytest
import yaml

from conftest import run_cli
from huggingtweets.cli import main
from loopback import Reply
from test_card import assert_speaks_for_its_trainer, licensed_gpt2  # noqa: F401 (a fixture)

HF_TOKEN = "hf_loopbackSECRETtoken123"
HUB_USER = "jane-trains-bots"


@pytest.fixture
def trained(tmp_path, licensed_gpt2):
    assert main(["run", "--model", str(licensed_gpt2), "--max-steps", "2", "-n", "2", "--precision", "fp32"]) == 0
    return tmp_path / "work" / "sample"


def leftovers(folder):
    return [p for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".old")]


def test_dry_run_stages_a_folder_that_loads_and_a_card_the_hub_accepts(trained, capsys):
    assert main(["push", "sample", "--repo-id", "someone/sample-bot", "--dry-run"]) == 0
    out = capsys.readouterr().out
    upload = trained / "upload"
    files = sorted(p.name for p in upload.iterdir())
    assert f"Staged {len(files)} files in {upload}: {', '.join(files)}" in out
    assert {"README.md", "config.json", "model.safetensors", "generation_config.json", "tokenizer_config.json",
            "huggingtweets.json"} <= set(files)

    from huggingface_hub import ModelCard

    card = ModelCard.load(upload / "README.md")
    meta = card.data.to_dict()
    assert meta["pipeline_tag"] == "text-generation" and meta["widget"] == [{"text": "My dream is"}]
    assert meta["tags"] == ["huggingtweets"] and meta["language"] == "en"
    assert meta["license"] == "mit" and meta["base_model"] == "openai-community/gpt2"
    assert_speaks_for_its_trainer(card.content)
    assert "## About" not in card.content  # a dry run asks nobody who publishes it
    assert meta["model-index"][0]["name"] == "someone/sample-bot"
    results = card.data.eval_results
    assert [r.metric_type for r in results] == ["perplexity", "perplexity"]

    # The card's snippet works as written, pointed at the folder instead of the Hub.
    snippet = re.search(r"```python\n(.*?)```", card.text, re.S).group(1)
    assert "model='someone/sample-bot'" in snippet
    scope = {}
    exec(snippet.replace("someone/sample-bot", str(upload)), scope)
    out = scope["generator"]("My dream is", num_return_sequences=2, max_new_tokens=5)
    assert len(out) == 2 and out[0]["generated_text"].startswith("My dream is")


def test_an_account_needs_consent_and_the_card_records_it(tmp_path, licensed_gpt2, capsys):
    from huggingtweets.sources.sample import sample_posts

    (tmp_path / "me.txt").write_text("\n".join(p.text for p in sample_posts()) + "\n", encoding="utf-8")
    assert main(["run", "file:me.txt", "--model", str(licensed_gpt2), "--max-steps", "1", "-n", "1", "--precision", "fp32"]) == 0
    capsys.readouterr()
    assert main(["push", "me", "--dry-run"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: publishing a bot that imitates a real person needs their consent (the Hub's terms): pass "
        "--consent self if the account is yours, or --consent given if its owner agreed")
    assert not (tmp_path / "work" / "me" / "upload").exists()
    assert main(["push", "me", "--dry-run", "--consent", "self"]) == 0
    card = (tmp_path / "work" / "me" / "upload" / "README.md").read_text()
    assert "Published by the account's owner." in card and "model='me'" in card
    assert str(tmp_path) not in (tmp_path / "work" / "me" / "upload" / "huggingtweets.json").read_text()


class FakeHub:
    def __init__(self, server):
        self.repos, self.commits, self.server = {}, [], server
        server.route(r"/api/whoami-v2", self.whoami)
        server.route(r"/api/repos/create", self.create)
        server.route(r"/api/validate-yaml", lambda req, m: Reply(200, {}))
        server.route(r"/api/models/([^/]+/[^/]+)/preupload/main", self.preupload)
        server.route(r"/api/models/([^/]+/[^/]+)/commit/main", self.commit)

    def authorized(self, req):
        return req.headers.get("authorization") == f"Bearer {HF_TOKEN}"

    def whoami(self, req, m):
        if not self.authorized(req):
            return Reply(401, {"error": "Invalid credentials in Authorization header"})
        return Reply(200, {"type": "user", "name": HUB_USER, "fullname": "Jane Trains Bots", "orgs": []})

    def create(self, req, m):
        if not self.authorized(req):
            return Reply(401, {"error": "Invalid credentials in Authorization header"})
        body = json.loads(req.body)
        repo_id = f"{body.get('organization') or 'me'}/{body['name']}"
        self.repos[repo_id] = {"private": bool(body.get("private")) or body.get("visibility") == "private"}
        return Reply(200, {"url": f"{self.server.url}/{repo_id}", "name": repo_id, "id": "123"})

    def preupload(self, req, m):
        files = json.loads(req.body)["files"]
        return Reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                     for f in files]})

    def commit(self, req, m):
        lines = [json.loads(line) for line in req.body.decode().splitlines() if line.strip()]
        files = {x["value"]["path"]: base64.b64decode(x["value"]["content"]) for x in lines if x["key"] == "file"}
        self.commits.append((m.group(1), files))
        return Reply(200, {"commitUrl": f"{self.server.url}/{m.group(1)}/commit/abc123", "commitOid": "abc123" * 6 + "ab"})


def test_push_uploads_model_tokenizer_and_card_with_huggingface_hub(trained, loopback, tmp_path):
    hub = FakeHub(loopback)
    env = {"HF_ENDPOINT": loopback.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": HF_TOKEN,
           "HUGGINGTWEETS_WORK": str(tmp_path / "work")}
    done = run_cli("push", "sample", "--repo-id", "someone/sample-bot", "--private", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Published {loopback.url}/someone/sample-bot" in done.stdout
    assert hub.repos == {"someone/sample-bot": {"private": True}}
    (repo, files), = hub.commits
    staged = tmp_path / "work" / "sample" / "upload"
    assert repo == "someone/sample-bot"
    assert sorted(files) == sorted(p.name for p in staged.iterdir())
    assert files["model.safetensors"] == (staged / "model.safetensors").read_bytes()
    readme = files["README.md"].decode()
    assert "model='someone/sample-bot'" in readme
    assert HF_TOKEN not in done.stdout + done.stderr + readme

    # The card on the Hub speaks for the Hub user who pushed it, and the Hub's own parser reads it whole.
    from huggingface_hub import ModelCard

    card = ModelCard(readme)
    assert card.data.license == "mit" and card.data.base_model == "openai-community/gpt2"
    assert card.data.language == "en" and card.data.widget == [{"text": "My dream is"}]
    assert_speaks_for_its_trainer(readme)
    assert f"*Built by {HUB_USER}*" in readme and readme.count("Built by") == 1

    bad = run_cli("push", "sample", "--repo-id", "someone/sample-bot", env={**env, "HF_TOKEN": "hf_wrong"})
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == ["error: could not publish someone/sample-bot: the Hub refused the token: "
                                               "check HF_TOKEN"]


def test_push_without_a_known_licence_asks_for_one(tmp_path, tiny_gpt2, capsys):
    assert main(["run", "--model", str(tiny_gpt2), "--max-steps", "1", "-n", "1", "--precision", "fp32"]) == 0
    capsys.readouterr()
    assert main(["push", "sample", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: the base model's licence is not known (its card names none): check its terms and pass --license "
        "with the licence to publish under, e.g. --license mit"]
    assert not (tmp_path / "work" / "sample" / "upload").exists()

    assert main(["push", "sample", "--dry-run", "--license", "MIT License"]) == 1
    assert capsys.readouterr().err.startswith("error: --license 'MIT License' is not a licence id")

    assert main(["push", "sample", "--dry-run", "--license", "Apache-2.0", "--author", "Jane"]) == 0
    text = (tmp_path / "work" / "sample" / "upload" / "README.md").read_text(encoding="utf-8")
    from huggingface_hub import ModelCard

    assert ModelCard(text).data.license == "apache-2.0"
    assert "Its licence, `apache-2.0`, was chosen by whoever published it; the base model's own licence is not known." \
        in text
    assert "*Built by Jane*" in text


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_push_with_the_hub_unreachable_is_one_line_and_writes_nothing(trained, tmp_path):
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
           "HF_TOKEN": HF_TOKEN, "HUGGINGTWEETS_WORK": str(tmp_path / "work")}
    done = run_cli("push", "sample", "--repo-id", "someone/sample-bot", env=env)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: could not reach the Hub ({env['HF_ENDPOINT']}) to publish someone/sample-bot ")
    assert line.endswith("check your connection (and HF_ENDPOINT, if you set it), or stage the upload with --dry-run")
    assert HF_TOKEN not in done.stdout + done.stderr
    assert not (trained / "upload").exists() and not leftovers(tmp_path / "work")


def test_push_with_hf_hub_offline_set_is_one_line(trained, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)  # the tests run with HF_HUB_OFFLINE=1
    assert main(["push", "sample", "--repo-id", "someone/sample-bot"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: HF_HUB_OFFLINE is set, so nothing can be published: unset it, or stage the upload with --dry-run"]
    assert not (trained / "upload").exists()
