"""Read an offline W&B run back from disk, for tests.

wandb >= 0.20 writes its transaction log (``run-<id>.wandb``) from a Go service and no longer ships a
Python reader.  The format is LevelDB's log: a 7-byte file header, then 32 KiB blocks of records, each with
a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last); every record is a protobuf
``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.message import DecodeError
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


def offline_runs(run_dir: Path) -> list[dict]:
    """Every offline W&B run under ``run_dir/wandb``, oldest first (see ``read_offline_run``)."""
    runs = [read_offline_run(folder) for folder in Path(run_dir, "wandb").glob("offline-run-*")]
    return sorted(runs, key=lambda run: (run["start_time"] or 0, run["folder"]))


def offline_run_contents(run_dir: Path) -> dict:
    """The one offline run under run_dir (see ``read_offline_run``)."""
    (run,) = offline_runs(run_dir)
    return run


def finished_log(offline: Path, timeout: float = 30.0) -> Path:
    """The folder's transaction log once it holds the run's exit record: ``run.finish()`` can return before
    wandb's service process has written the file out."""
    (log,) = offline.glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while not _has_exit_record(log):
        assert time.monotonic() < deadline, f"{log} has no exit record after {timeout} s"
        time.sleep(0.1)
    return log


def _has_exit_record(log: Path) -> bool:
    try:
        return any(record.WhichOneof("record_type") == "exit" for record in records(log))
    except (AssertionError, struct.error, DecodeError):  # no file header yet, or a record half written
        return False


def read_offline_run(offline: Path) -> dict:
    """History rows and keys, config keys, metric definitions, run id, group, start time and media files of
    one ``offline-run-*`` folder."""
    log = finished_log(offline)
    out: dict = {"history_keys": set(), "config_keys": set(), "metrics": {}, "run_id": None, "group": None,
                 "start_time": None, "history": [], "folder": offline.name}
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
            out["run_id"], out["group"] = record.run.run_id, record.run.run_group
            out["start_time"] = record.run.start_time.ToNanoseconds()
    out["media"] = sorted(p.name for p in offline.rglob("*") if p.suffix in (".png", ".jpg"))
    return out
