"""Read an offline W&B run back from disk, for tests.

wandb >= 0.20 writes its transaction log (``run-<id>.wandb``) from a Go service and no longer ships a
Python reader.  The format is LevelDB's log: a 7-byte file header, then 32 KiB blocks of records, each with
a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last); every record is a protobuf
``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER = 32768, 7


def records(path: Path) -> Iterator[pb.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, chunks = HEADER, []
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:
            pos += left_in_block  # block trailer padding
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            break
        chunks.append(data[pos + HEADER : pos + HEADER + length])
        pos += HEADER + length
        if kind in (1, 4):  # full, or the last piece of a split record
            record = pb.Record()
            record.ParseFromString(b"".join(chunks))
            chunks = []
            yield record


def offline_run_contents(run_dir: Path) -> dict:
    """History keys, config keys, metric definitions and media files of the one offline run under run_dir."""
    (offline,) = Path(run_dir, "wandb").glob("offline-run-*")
    (log,) = offline.glob("run-*.wandb")
    out: dict = {"history_keys": set(), "config_keys": set(), "metrics": {}, "run_id": None, "history": []}
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            row = {item.key or "/".join(item.nested_key): item.value_json for item in record.history.item}
            out["history"].append(row)
            out["history_keys"] |= set(row)
        elif kind == "config":
            out["config_keys"] |= {item.key for item in record.config.update}
        elif kind == "metric":
            out["metrics"][record.metric.name or record.metric.glob_name] = record.metric.step_metric
        elif kind == "run":
            out["run_id"] = record.run.run_id
    out["media"] = sorted(p.name for p in offline.rglob("*") if p.suffix in (".png", ".jpg"))
    return out
