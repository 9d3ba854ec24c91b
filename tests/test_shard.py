"""Sharded JSONL runs: each process writes its part, rank 0 merges them in input order (issue 28)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core.jsonio import process_jsonl, shard_bounds

ROOT = Path(__file__).resolve().parent.parent


def _input(tmp_path: Path, n: int = 11) -> Path:
    lines = [json.dumps({"id": f"x{i}", "seeker_post": f"post {i}", "response_post": f"reply {i}"}) for i in range(n)]
    lines[4] = "{not json"  # an error record, in its place
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    return src


def upper(rows):
    return [{**r, "out": r["response_post"].upper()} for r in rows]


def test_shard_bounds_are_whole_batches_covering_every_row_once():
    for n, bs, world in ((11, 2, 2), (10, 3, 3), (3, 4, 2), (0, 2, 2), (100, 16, 3)):
        spans = [shard_bounds(n, bs, r, world) for r in range(world)]
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert all(lo % bs == 0 for lo, _ in spans)


def test_two_parts_merge_into_the_single_process_output(tmp_path):
    src = _input(tmp_path)
    single = tmp_path / "single.jsonl"
    assert process_jsonl(src, single, upper, batch_size=2).errors == 1
    out = tmp_path / "out.jsonl"
    part1 = process_jsonl(src, out, upper, batch_size=2, shard=(1, 2))  # rank 1 first: rank 0 waits for it
    assert not out.exists() and part1.total == 5
    stats = process_jsonl(src, out, upper, batch_size=2, shard=(0, 2))
    assert out.read_bytes() == single.read_bytes()
    assert (stats.total, stats.written, stats.errors) == (11, 11, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "out.jsonl.lock", "single.jsonl",
                                                           "single.jsonl.lock"]  # parts and markers gone


def test_an_interrupted_part_resumes_and_rank0_waits_for_it(tmp_path):
    src = _input(tmp_path)
    single = tmp_path / "single.jsonl"
    process_jsonl(src, single, upper, batch_size=2)
    out = tmp_path / "out.jsonl"
    calls = []

    def dies_after_one_batch(rows):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return upper(rows)

    with pytest.raises(KeyboardInterrupt):
        process_jsonl(src, out, dies_after_one_batch, batch_size=2, shard=(1, 2))
    part = tmp_path / ".out.jsonl.part-1-of-2"
    assert len(part.read_text().splitlines()) == 2
    rank0 = threading.Thread(target=process_jsonl, args=(src, out, upper), kwargs={"batch_size": 2, "shard": (0, 2)})
    rank0.start()
    rank0.join(timeout=3)
    assert rank0.is_alive() and not out.exists()  # rank 1's part is not done: nothing merged
    seen = []
    process_jsonl(src, out, lambda rows: seen.extend(rows) or upper(rows), batch_size=2, shard=(1, 2))
    assert len(seen) == 3  # resumed after its first batch
    rank0.join(timeout=30)
    assert not rank0.is_alive()
    assert out.read_bytes() == single.read_bytes()


def test_a_sharded_run_resumes_onto_an_existing_output(tmp_path):
    src = _input(tmp_path)
    single = tmp_path / "single.jsonl"
    process_jsonl(src, single, upper, batch_size=2)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"".join(single.read_bytes().splitlines(keepends=True)[:3]))  # 3 lines already there
    seen = []

    def record(rows):
        seen.extend(r["id"] for r in rows)
        return upper(rows)

    process_jsonl(src, out, record, batch_size=2, shard=(1, 2))
    stats = process_jsonl(src, out, record, batch_size=2, shard=(0, 2))
    assert out.read_bytes() == single.read_bytes()
    assert stats.skipped == 3 and "x0" not in seen and "x3" in seen


def test_accelerate_launch_two_cpu_processes_rewrite_as_one(tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` on a machine without GPUs: two CPU processes
    (gloo), one output, byte for byte the single-process one."""
    src = tmp_path / "in.jsonl"
    rows = [json.loads(x) for x in (ROOT / "examples" / "low-empathy.jsonl").read_text().splitlines() if x.strip()]
    src.write_text("".join(json.dumps(r) + "\n" for r in (rows * 3)[:9]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    script = Path(sys.executable).parent / "partner-rewrite"  # the console script, as a user would launch it
    args = [str(script), str(src), "--method", "template", "--scorer", "none", "--batch-size", "2"]
    single = subprocess.run([sys.executable, *args, "-o", str(tmp_path / "single.jsonl")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    launch = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                             "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                             "--main_process_port", "29541", *args, "-o", str(tmp_path / "out.jsonl")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert launch.returncode == 0, launch.stderr[-3000:]
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "single.jsonl").read_bytes()
    assert "[2/2]" in launch.stderr  # the second process wrote its part
