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
