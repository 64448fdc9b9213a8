"""Read an offline W&B run back from its files: the `run-<id>.wandb` file is a
LevelDB-style log (32 KiB blocks; records with a 7-byte header: crc32, length,
type) of `wandb_internal_pb2.Record` protobufs: what `wandb sync` uploads."""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == FULL:
            raw = chunk
        elif kind == FIRST:
            pending = chunk
            continue
        elif kind == MIDDLE:
            pending += chunk
            continue
        elif kind == LAST:
            raw, pending = pending + chunk, b""
        else:
            continue
        record = pb.Record()
        record.ParseFromString(raw)
        yield record


def read_run(run_dir: Path) -> dict:
    """{"job_type", "name", "config", "summary", "history": [{key: value}], "exit_code",
    "artifacts": {name: {"type", "digest", "metadata", "files"}}}"""
    run = {"artifacts": {}, "config": {}, "summary": {}, "history": []}
    for record in records(next(run_dir.glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["job_type"] = record.run.job_type
            run["name"] = record.run.display_name
            run["config"].update({u.key: json.loads(u.value_json) for u in record.run.config.update})
        elif kind == "config":
            run["config"].update({u.key: json.loads(u.value_json) for u in record.config.update if u.key})
        elif kind == "summary":
            run["summary"].update({u.key: json.loads(u.value_json) for u in record.summary.update if u.key})
        elif kind == "history":
            run["history"].append({i.key or ".".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
        elif kind == "artifact":
            a = record.artifact
            run["artifacts"][a.name] = {"type": a.type, "digest": a.digest,
                                        "metadata": json.loads(a.metadata) if a.metadata else {},
                                        "files": sorted(e.path for e in a.manifest.contents)}
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return run
