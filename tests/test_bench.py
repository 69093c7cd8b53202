"""Smoke tests of bench/ (nothing timed): the floor app answers as bench/runtime.py
expects, and the targets table marks what is met."""

import importlib.util
import json
import sys
import time
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


def _runtime():
    spec = importlib.util.spec_from_file_location("bench_runtime", BENCH_DIR / "runtime.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


runtime = _runtime()


def test_the_floor_is_not_on_the_products_path():
    # daphne runs it from bench/; from the project root `floor` is no module.
    assert importlib.util.find_spec("floor") is None


def test_the_floor_answers_a_completion_and_a_stream():
    floor = runtime.Floor(runtime.Deadline(time.monotonic() + 60))
    try:
        floor.start()
        with httpx.Client(base_url=floor.base_url, timeout=20) as client:
            answer = client.post("/api/chat/completions", json=runtime.CHAT_BODY)
            assert answer.status_code == 200
            assert answer.json()["object"] == "chat.completion"
            assert answer.json()["choices"][0]["message"]["content"] == "ok"

            streamed = client.post("/api/chat/completions", json=runtime.STREAM_BODY)
            assert streamed.status_code == 200
            assert streamed.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in streamed.text.splitlines() if line.startswith("data:")]
            # The chunks, the finish chunk and [DONE]: what the app streams for bench_stream.
            assert len(lines) == runtime.STREAM_CHUNKS + 2
            assert lines[-1] == "data: [DONE]"
            chunks = [json.loads(line[5:]) for line in lines[:-1]]
            assert chunks[0]["object"] == "chat.completion.chunk"
            assert chunks[0]["choices"][0]["delta"] == {"content": "t0 "}
            assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

            assert client.get("/api/chat/completions").status_code == 405
    finally:
        floor.cleanup()
    assert not floor.dir.exists()


def _row(scenario, concurrency=1, p50=None, throughput=None):
    return runtime.Row(scenario, concurrency, 1, p50, None, throughput, "")


def test_targets_are_ratios_to_the_same_runs_floor():
    rows = [
        _row(runtime.FLOOR, p50=2.0),
        _row(runtime.TRIVIAL, p50=2.5),
        _row(runtime.FLOOR, 32, throughput=400.0),
        _row(runtime.TRIVIAL, 32, throughput=100.0),
        _row(runtime.FILTERED, p50=3.5),
        _row(runtime.OPAQUE, p50=2.75),
    ]
    found = {
        t.measure: t
        for t in runtime.targets({f"{r.scenario} @{r.concurrency}": r for r in rows}, {}, None)
    }
    assert found["Trivial pipe, c=1, p50"].ratio == "1.25x"
    assert runtime.verdict(found["Trivial pipe, c=1, p50"]) == "met"
    assert found["Trivial pipe, c=32, req/s"].ratio == "0.25x"
    assert runtime.verdict(found["Trivial pipe, c=32, req/s"]) == "NOT MET"
    per_filter = found["Each of 5 provable no-op filters (inlet, outlet), c=1, added p50"]
    assert per_filter.fnplatform == "0.20 ms"  # (3.5 - 2.5) / 5, not under 0.2
    assert runtime.verdict(per_filter) == "NOT MET"
    opaque = found["Each of 5 opaque trivial filters (inlet, outlet), c=1, added p50"]
    assert opaque.fnplatform == "0.05 ms"  # (2.75 - 2.5) / 5
    assert runtime.verdict(opaque) == "met"
    assert runtime.verdict(found["Second `make run` to first 200 of /health"]) == "not measured"


def test_the_calls_benchmarks_floor_answers_and_stops(tmp_path):
    import asyncio

    spec = importlib.util.spec_from_file_location("bench_calls", BENCH_DIR / "calls.py")
    calls = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(calls)
    assert asyncio.run(calls.floor(count=5, rounds=1)) > 0  # µs per round trip, untimed
