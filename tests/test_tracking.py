"""W&B offline runs, read back from their files, and the mode chosen up front."""

import json

import pytest

from conftest import run_cli
from huggingtweets.cli import main
from wandb_files import read_run, records

FAKE = {"X_BEARER_TOKEN": "xtok-SECRET-1111", "HF_TOKEN": "hf_SECRET2222abcd", "WANDB_API_KEY": "wb" + "3" * 38}


@pytest.fixture
def wandb_dirs(tmp_path, monkeypatch):
    root = tmp_path / "wandb-files"
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        (root / var).mkdir(parents=True)
        monkeypatch.setenv(var, str(root / var))
    return root


def test_offline_run_leaves_two_finished_runs_whose_artifacts_chain(tmp_path, tiny_gpt2, wandb_dirs, monkeypatch,
                                                                     capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    for k, v in FAKE.items():
        monkeypatch.setenv(k, v)
    assert main(["run", "--model", str(tiny_gpt2), "--max-steps", "4", "-n", "3"]) == 0
    out = capsys.readouterr()

    run_dirs = sorted((wandb_dirs / "WANDB_DIR" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 2
    runs = {r["job_type"]: r for r in map(read_run, run_dirs)}
    prep, train = runs["preprocess"], runs["train"]
    assert prep["exit_code"] == 0 and train["exit_code"] == 0
    assert prep["name"] == "sample-preprocess" and train["name"] == "sample-train"

    raw, dataset = prep["artifacts"]["raw-posts"], prep["artifacts"]["train-dataset"]
    assert raw["files"] == ["posts.jsonl"] and raw["metadata"]["inputs"] == []
    assert dataset["metadata"]["inputs"] == [{"name": "raw-posts", "digest": raw["digest"]}]
    assert "info.json" in dataset["files"]
    assert {k: prep["summary"][k] for k in ("tweets_downloaded", "retweets", "short_tweets", "tweets_kept")} == {
        "tweets_downloaded": 450, "retweets": 10, "short_tweets": 15, "tweets_kept": 425}

    model = train["artifacts"]["finetuned-model"]
    assert model["type"] == "model" and "model.safetensors" in model["files"]
    assert model["metadata"]["inputs"] == [{"name": "train-dataset", "digest": dataset["digest"]}]
    tables = [a for name, a in train["artifacts"].items() if name.endswith("-predictions")]
    assert len(tables) == 1
    table_file = next((run_dirs[0].parent).rglob("predictions_*.table.json"))
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["prompt", "sample", "seed"] and len(table["data"]) == 3
    assert all(row[0] == "My dream is" and row[1].startswith("My dream is") and row[2] == 42 for row in table["data"])
    assert train["summary"]["eval_perplexity_after"] > 0
    losses = [(h["_step"], h["loss"]) for h in train["history"] if "loss" in h]
    assert [step for step, _ in losses] == [1, 2, 3, 4]
    assert any("eval_loss" in h for h in train["history"])

    config = train["config"]
    assert config["learning_rate"] == 2e-4 and config["max_steps"] == 4 and config["block_size"] == 64
    assert config["batch_size"] == 8  # chosen for the device (8 on a GPU too: 136 blocks), recorded when it ends
    assert {"torch", "transformers", "datasets", "python"} <= set(config["versions"])
    assert config["model"] == "local folder " + tiny_gpt2.name
    assert "x_bearer_token" not in config and "work" not in config

    # No token anywhere a run wrote (paths: test_no_path_of_a_local_source_reaches_wandb).
    for folder in (wandb_dirs, tmp_path / "work"):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for secret in FAKE.values():
                    assert secret.encode() not in data, (secret, path)
    for secret in FAKE.values():
        assert secret not in out.out + out.err

    card = (tmp_path / "work" / "sample" / "model" / "README.md").read_text()
    assert "Explore the data" not in card and "W&B training run" not in card  # offline: no link that would be dead
    assert " after (4 steps at batch 8 (blocks of 64 tokens), " in card  # the batch is the device's: the card says it


def test_with_no_key_and_no_mode_nothing_waits_and_one_line_says_tracking_is_off(tmp_path, tiny_gpt2, wandb_dirs):
    env = {"HOME": str(tmp_path), "WANDB_MODE": "", "WANDB_API_KEY": ""}
    done = run_cli("run", "--model", str(tiny_gpt2), "--max-steps", "2", "-n", "1", "--work", str(tmp_path / "w"),
                   env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if "W&B" in line]
    assert lines == ["W&B tracking is off: set WANDB_API_KEY (or run `wandb login`) to track runs online, "
                     "or WANDB_MODE=offline to keep them on disk"]
    assert not list(wandb_dirs.rglob("*.wandb")) and not (tmp_path / "wandb").exists()


def test_online_without_credentials_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert main(["prepare", "--wandb", "online"]) == 1
    assert capsys.readouterr().err.strip() == ("error: W&B online tracking needs WANDB_API_KEY or `wandb login`; "
                                               "or use WANDB_MODE=offline to keep runs on disk")


def local_posts(path, n: int, who: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    path.write_text("\n".join(f"{who} post {i} says {words[i % 12]} and {words[i * 7 % 12]} about the day"
                              for i in range(n)) + "\n")


def test_no_path_of_a_local_source_reaches_wandb(tmp_path, tiny_gpt2, wandb_dirs):
    """A file: or archive: source is published by its file name only (as the model's huggingtweets.json
    does): its folders (a home folder, a user name, a project's name) never reach a W&B run."""
    home = tmp_path / "home-of-alice"
    mine = home / "Private-Folder-Q7" / "alice.txt"  # under the home folder: `~/...` would still show the folders
    theirs = tmp_path / "Elsewhere-Folder-Z9" / "bob.txt"  # outside it: an absolute path
    local_posts(mine, 300, "alice")
    local_posts(theirs, 300, "bob")
    done = run_cli("run", f"file:{mine}", f"file:{theirs}", "--model", str(tiny_gpt2), "--max-steps", "2", "-n", "1",
                   env={"HOME": str(home), "WANDB_MODE": "offline"})
    assert done.returncode == 0, done.stderr[-2000:]

    run_dirs = sorted((wandb_dirs / "WANDB_DIR" / "wandb").glob("offline-run-*"))
    runs = {r["job_type"]: r for r in map(read_run, run_dirs)}
    assert set(runs) == {"preprocess", "train"}
    shown = ["file:alice.txt", "file:bob.txt"]
    assert runs["preprocess"]["artifacts"]["raw-posts"]["metadata"]["sources"] == shown
    assert runs["preprocess"]["config"]["sources"] == runs["train"]["config"]["sources"] == shown
    assert runs["train"]["config"]["model"] == "local folder " + tiny_gpt2.name
    # Nothing a run records (config, artifacts, the command line it ran with) names the folders.
    for run_dir in run_dirs:
        for record in records(next(run_dir.glob("run-*.wandb"))):
            text = str(record)
            for folder in ("Private-Folder-Q7", "Elsewhere-Folder-Z9", str(home), str(tiny_gpt2)):
                assert folder not in text, (folder, record.WhichOneof("record_type"), text[:3000])


# --- W&B online, against a fake server on 127.0.0.1 ---------------------------------------------------------------

class FakeWandb:
    """Just enough of the W&B API (GraphQL, file_stream, wandb-core's telemetry) for a run to start;
    `refuse` answers every GraphQL call with that status (a wrong key: 401), `refuse_artifacts` every call
    but the run's own (a project you may not write to: 403)."""

    RUN_CALLS = {"UpsertBucket", "Viewer", "ServerFeaturesQuery", "OrganizationCoreWeaveOrganizationID"}

    def __init__(self, loopback, refuse: int | None = None, refuse_artifacts: int | None = None):
        from loopback import Reply

        self.refuse, self.refuse_artifacts, self.calls = refuse, refuse_artifacts, []

        def graphql(req, m):
            operation = json.loads(req.body or b"{}").get("operationName") or req.body.decode()[:60]
            self.calls.append(operation)
            status = self.refuse or (self.refuse_artifacts if operation not in self.RUN_CALLS else None)
            if status:
                return Reply(status, {"errors": [{"message": "permission denied"}]})
            if operation == "UpsertBucket":
                v = json.loads(req.body)["variables"]
                return Reply(200, {"data": {"upsertBucket": {"inserted": True, "bucket": {
                    "id": "QnVja2V0OjE=", "name": v.get("name"), "displayName": v.get("displayName") or "run",
                    "description": None, "config": "{}", "sweepName": None, "historyLineCount": 0,
                    "project": {"id": "UHJvamVjdDox", "name": v.get("project"),
                                "entity": {"id": "RTox", "name": "alice"}}}}}})
            if operation == "Viewer":
                return Reply(200, {"data": {"viewer": {"id": "VXNlcjox", "entity": "alice", "username": "alice",
                                                       "email": "alice@example.com", "flags": "{}",
                                                       "teams": {"edges": []}}}})
            return Reply(200, {"data": {}})

        loopback.route(r"/graphql", graphql)
        loopback.route(r"/files/.*/file_stream", lambda req, m: Reply(200, {"exitcode": None, "limits": {}}))
        loopback.route(r"/sdk/otel/.*", lambda req, m: Reply(200, b""))
        self.url = loopback.url


def online_env(url: str, home) -> dict[str, str]:
    return {"WANDB_MODE": "online", "WANDB_BASE_URL": url, "WANDB_API_KEY": "wb" + "7" * 38, "HOME": str(home),
            "WANDB_INIT_TIMEOUT": "3"}


def closed_port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def check_one_error_line(done, starts: str) -> str:
    """Exit 1, no traceback, and the last line on stderr is the one `error:` line."""
    assert done.returncode == 1, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], done.stderr[-3000:]
    assert lines[-1].startswith(starts), lines[-1]
    assert lines[-1].endswith("check WANDB_API_KEY (or `wandb login`), WANDB_BASE_URL and the network, or use "
                              "--wandb offline to keep the runs on disk (or --wandb disabled)"), lines[-1]
    return lines[-1]


def no_leftovers(work) -> None:
    assert not [p for p in work.rglob("*") if p.name.endswith(".tmp") or p.name == "tracking.json"]


@pytest.mark.parametrize("how", ["wrong key", "no server"])
def test_online_run_that_cannot_start_is_one_error_line(tmp_path, tiny_gpt2, wandb_dirs, loopback, how):
    url = FakeWandb(loopback, refuse=401).url if how == "wrong key" else closed_port()
    done = run_cli("prepare", "--model", str(tiny_gpt2), env=online_env(url, tmp_path))
    line = check_one_error_line(done, f"error: W&B could not start the preprocess run at {url} (")
    assert ("permission denied" in line) if how == "wrong key" else ("connection refused" in line)
    no_leftovers(tmp_path / "work")
    made = json.loads((tmp_path / "work" / "sample" / "made.json").read_text())
    assert made.get("dataset") is None  # not current: the same command builds it again


def test_online_artifact_the_server_refuses_is_one_error_line(tmp_path, tiny_gpt2, wandb_dirs, loopback):
    fake = FakeWandb(loopback, refuse_artifacts=403)
    done = run_cli("prepare", "--model", str(tiny_gpt2), env=online_env(fake.url, tmp_path))
    check_one_error_line(done, "error: W&B could not save the raw-posts artifact (")
    assert "UpsertBucket" in fake.calls  # the run did start
    no_leftovers(tmp_path / "work")


def test_online_train_dataset_the_server_refuses_is_one_error_line(tmp_path, tiny_gpt2, wandb_dirs, loopback):
    assert main(["prepare", "--model", str(tiny_gpt2)]) == 0  # W&B off (conftest)
    # As a prepare run online leaves it: train then uses its train-dataset artifact.
    (tmp_path / "work" / "sample" / "tracking.json").write_text(json.dumps(
        {"prepare_run": {"id": "abc", "mode": "online", "url": None, "project": "huggingtweets"}}))
    fake = FakeWandb(loopback, refuse_artifacts=403)
    done = run_cli("train", "--model", str(tiny_gpt2), "--max-steps", "2", env=online_env(fake.url, tmp_path))
    check_one_error_line(done, "error: W&B could not use the train-dataset artifact (permission denied)")
    assert not (tmp_path / "work" / "sample" / "model").exists()
