"""``crowdsafe bench`` writes its results to a file (numbers are reported, never asserted)."""

import json

from streams.cli import main


def test_bench_writes_every_suites_results_to_the_file(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "--suite", "detectors", "--suite", "vision", "--quick",
                 "--out", str(out)]) == 0  # fmt: skip
    results = json.loads(out.read_text())
    assert results["detectors"]["anomaly_state_bytes"] > 0
    assert results["detectors"]["anomaly_update_us"] > 0
    fps = {k: v for k, v in results["vision"].items() if k.endswith("_fps")}
    assert len(fps) == 8 and all(v > 0 for v in fps.values())  # 2 methods x 2 sizes x flow
    # The summary names what runs are compared by; a key whose suite did not run says why.
    s = results["summary"]
    assert s["state_bytes_per_zone"] == results["detectors"]["state_bytes_per_zone"] > 0
    assert (
        s["restart_resume_s"] is None and s["restart_resume_s_reason"] == "suite faults did not run"
    )
    # Beside the JSON: the summary as a Markdown table, and the machine it was measured on.
    table = out.with_suffix(".md").read_text()
    assert f"| `state_bytes_per_zone` | {s['state_bytes_per_zone']} |" in table
    assert "| `recovery_s_100000_zones` | – (suite zones did not run) |" in table
    assert results["machine"]["cores"] >= 1 and results["machine"]["versions"]["faust-streaming"]


def test_a_failing_or_hanging_suite_is_recorded_and_the_bench_goes_on(monkeypatch):
    import sys
    import time
    import types

    from streams.commands import bench

    def boom(quick):
        raise RuntimeError("broker gone")

    def hang(quick):
        time.sleep(30)

    for name, run in (("boom", boom), ("hang", hang)):
        monkeypatch.setitem(sys.modules, f"streams.bench.{name}", types.SimpleNamespace(run=run))
    start = time.monotonic()
    assert bench.run_suite("boom", True, {}, guard_s=5)["error"] == "RuntimeError: broker gone"
    hung = bench.run_suite("hang", True, {}, guard_s=0.5)
    assert hung["error"].startswith("still running after the bench's guard of 0.5 s")
    assert time.monotonic() - start < 5
    # A suite that skipped a measurement says why beside it; the summary carries the reason.
    latency = {"at_10000_per_s": None, "at_10000_per_s_reason": "capacity 4,000/s"}
    s = bench.summary({"latency": latency})
    assert s["latency_p99_ms_at_10000_per_s"] is None
    assert s["latency_p99_ms_at_10000_per_s_reason"] == "capacity 4,000/s"


def test_suites_run_pipeline_first_and_skip_helpers():
    from streams.commands.bench import suites

    names = suites()
    assert names[:3] == ["pipeline", "latency", "scaleout"]
    assert not any(n.startswith("_") for n in names)
