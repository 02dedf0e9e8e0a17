"""crowdsafe backtest (and the replay's readings): the offline path over the streaming code."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import msgspec
import pytest

from detectors.anomaly import SeasonalAnomalyDetector
from streams.cli import main
from streams.commands.replay import readings
from streams.offline.backtest import backtest
from streams.offline.series import SeriesError, read_series
from streams.schema.payloads import Reading

TINY = """timestamp,count,net
2024-01-01 08:00:00,100,
2024-01-01T08:01:00+00:00,,3
1704096120,130,5
1704096180000,150,4
2024-01-01T08:04:00Z,170,2
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.csv"
    path.write_text(TINY)
    return path


def read_out(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_cli_reads_all_three_timestamp_formats(tiny: Path, tmp_path: Path):
    out = tmp_path / "out.csv"
    assert main(["backtest", str(tiny), "--value-col", "count", "--out", str(out)]) == 0
    rows = read_out(out)
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score"]
    assert [r["timestamp"] for r in rows] == [line.split(",")[0] for line in TINY.splitlines()[1:]]
    assert [r["value"] for r in rows] == ["100", "", "130", "150", "170"]
    assert [r["anomaly_score"] for r in rows] == ["0", "", "0", "0", "0"]  # blank = missing


def test_cli_with_area_adds_density_forecast_and_alert(tiny: Path, tmp_path: Path):
    out = tmp_path / "out.csv"
    args = ["backtest", str(tiny), "--value-col", "count", "--area", "50", "--out", str(out)]
    assert main([*args, "--inflow-col", "net"]) == 0
    rows = read_out(out)
    assert list(rows[0]) == [
        "timestamp",
        "value",
        "anomaly_score",
        "density",
        "minutes_to_critical",
        "alert",
    ]
    assert rows[-1]["density"] == "3.4"  # 170 people on 50 m²: above walkway critical 3
    assert rows[-1]["alert"] == "critical"
    assert rows[0]["density"] == "2" and rows[0]["alert"] == "warning"  # at warning: 2 p/m²
    # A missing point neither clears nor escalates: the warning episode stays open.
    assert rows[1]["density"] == "" and rows[1]["alert"] == "warning"


def test_bad_row_is_named_and_leaves_no_output(tmp_path: Path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01 08:00:00,1\n2024-01-01 08:01:00,2\n31/12/2024,3\n")
    out = tmp_path / "out.csv"
    assert main(["backtest", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "row 3 (line 4)" in err and "'31/12/2024'" in err
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_bad_value_and_missing_column_are_named(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01 08:00:00,many\n")
    with pytest.raises(SeriesError, match=r"row 1 \(line 2\): bad value 'many'"):
        list(read_series(bad))
    with pytest.raises(SeriesError, match=r"no column 'count'.*\['timestamp', 'value'\]"):
        list(read_series(bad, value_col="count"))


def test_backtest_is_exactly_the_streaming_detector(tmp_path: Path):
    path = tmp_path / "series.csv"
    lines = ["timestamp,value"]
    for h in range(24 * 5):
        value = "" if h % 17 == 0 else str(100 + 80 * ((h % 24) in range(8, 20)) + h % 7)
        lines.append(f"{1704067200 + h * 3600},{value}")
    lines.append(f"{1704067200 + 24 * 5 * 3600},900")
    path.write_text("\n".join(lines) + "\n")
    det = SeasonalAnomalyDetector()
    expected = [det.update(r.ts_ms, r.value) for r in read_series(path)]
    got = [r.anomaly_score for r in backtest(read_series(path))]
    assert got == expected
    assert got[-1] > 0.9


def test_cli_writes_to_stdout(tiny: Path, capsys):
    assert main(["backtest", str(tiny), "--value-col", "count"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 5


def test_replay_readings_follow_the_schema(tiny: Path):
    out = list(readings(read_series(tiny, value_col="count"), "plaza", "replay:tiny"))
    assert [r["seq"] for r in out] == [0, 1, 2, 3, 4]
    assert [r["ts"] for r in out] == [1704096000000 + i * 60_000 for i in range(5)]
    assert out[0]["count"] == 100 and out[0]["kind"] == "sensor" and out[0]["zone_id"] == "plaza"
    assert out[1]["status"] == "offline" and "count" not in out[1]
    for r in out:
        msgspec.convert(r, Reading)


def test_replay_rejects_a_reading_the_schema_rejects(tmp_path: Path):
    path = tmp_path / "neg.csv"
    path.write_text("timestamp,value\n2024-01-01 08:00:00,-4\n")
    with pytest.raises(SeriesError, match=r"row 1 \(line 2\): not a valid reading: count"):
        list(readings(read_series(path), "plaza", "s"))


class FakeProducer:
    sent: list[dict] = []
    topic = "crowd.readings"

    def __init__(self, bootstrap=None, topic=None):
        FakeProducer.sent = []

    def send(self, reading):
        FakeProducer.sent.append(reading)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


@pytest.mark.parametrize(("speed", "sleeps"), [("0", []), ("60", [1.0] * 4), ("120", [0.5] * 4)])
def test_replay_paces_by_event_time(tiny: Path, monkeypatch, speed, sleeps):
    import streams.commands.replay as replay
    import streams.edge.producer

    slept: list[float] = []
    monkeypatch.setattr(streams.edge.producer, "ReadingProducer", FakeProducer)
    monkeypatch.setattr(replay.time, "sleep", slept.append)
    args = ["replay", str(tiny), "--value-col", "count", "--zone", "east-plaza", "--speed", speed]
    assert main(args) == 0
    seqs = [r["seq"] for r in FakeProducer.sent]
    assert seqs == list(range(seqs[0], seqs[0] + 5))  # consecutive from a wall-clock base
    assert seqs[0] > 1_700_000_000_000_000  # µs since the epoch: a later replay sends higher
    assert slept == pytest.approx(sleeps)


def test_a_file_out_of_time_order_is_scored_in_time_order_and_written_in_file_order(tmp_path):
    hours = [
        f"2024-01-{1 + h // 24:02d} {h % 24:02d}:00:00,{500 + (h % 24) * 20}" for h in range(96)
    ]
    ordered, shuffled = tmp_path / "ordered.csv", tmp_path / "shuffled.csv"
    ordered.write_text("timestamp,value\n" + "\n".join(hours) + "\n")
    shuffled.write_text("timestamp,value\n" + "\n".join(reversed(hours)) + "\n")
    assert main(["backtest", str(ordered), "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["backtest", str(shuffled), "--out", str(tmp_path / "b.csv")]) == 0
    a, b = read_out(tmp_path / "a.csv"), read_out(tmp_path / "b.csv")
    assert b == list(reversed(a))  # the same score for every row, in the file's own order
    assert any(float(r["anomaly_score"]) > 0 or r["anomaly_score"] == "0" for r in a)


def test_an_infinite_value_is_a_bad_row_not_a_poisoned_detector(tmp_path, capsys):
    bad = tmp_path / "inf.csv"
    bad.write_text("timestamp,value\n2024-01-01 00:00:00,5\n2024-01-01 01:00:00,inf\n")
    assert main(["backtest", str(bad)]) == 1
    assert "row 2" in capsys.readouterr().err


def test_tz_is_the_zones_offset_and_an_unknown_zone_is_an_error(tmp_path: Path, capsys):
    path = tmp_path / "series.csv"
    lines = ["timestamp,value"]
    for h in range(24 * 3):  # busy from 08:00 to 20:00 Shanghai time (UTC+8, no DST)
        lines.append(f"{1704067200 + h * 3600},{100 + 400 * (((h + 8) % 24) in range(8, 20))}")
    lines.append(f"{1704067200 + 24 * 3 * 3600 + 3 * 3600},500")  # 11:00 local: busy as usual
    path.write_text("\n".join(lines) + "\n")
    outs = {}
    for name, flag in (("tz", ["--tz", "Asia/Shanghai"]), ("offset", ["--utc-offset-min", "480"])):
        out = tmp_path / f"{name}.csv"
        assert main(["backtest", str(path), *flag, "--out", str(out)]) == 0
        outs[name] = out.read_text()
    assert outs["tz"] == outs["offset"]  # a zone without DST is its fixed offset
    assert main(["backtest", str(path), "--tz", "Mars/Olympus"]) == 2
    assert "unknown time zone" in capsys.readouterr().err


def test_replay_refuses_a_zone_the_site_does_not_have(tiny: Path, capsys):
    assert main(["replay", str(tiny), "--value-col", "count", "--zone", "atlantis"]) == 2
    err = capsys.readouterr().err
    assert "unknown zone 'atlantis'" in err and "east-plaza" in err


def test_calendar_options_mark_holidays_and_change_their_scores(tmp_path: Path, capsys):
    """Four weeks of a weekday-busy series whose Christmas Day (a Thursday) is as quiet as a
    Sunday: told the country, backtest scores it like a Sunday and says why."""
    path = tmp_path / "series.csv"
    lines = ["timestamp,count"]
    start = 1733011200  # 2024-12-01 00:00 UTC, a Sunday
    for h in range(24 * 28):
        day = (h // 24) % 7  # 0: Sunday
        quiet = day in (0, 6) or h // 24 == 24  # weekends, and 2024-12-25
        busy = 8 <= h % 24 < 20
        lines.append(f"{start + h * 3600},{(200 if quiet else 1000) if busy else 50}")
    path.write_text("\n".join(lines) + "\n")
    plain, told = tmp_path / "plain.csv", tmp_path / "told.csv"
    assert main(["backtest", str(path), "--value-col", "count", "--out", str(plain)]) == 0
    flags = ["--country", "AU", "--subdiv", "VIC"]
    assert main(["backtest", str(path), "--value-col", "count", *flags, "--out", str(told)]) == 0
    rows_plain, rows_told = read_out(plain), read_out(told)
    christmas = [i for i, r in enumerate(rows_told) if r["calendar"].startswith("Christmas Day")]
    assert len(christmas) == 24 and "calendar" not in rows_plain[0]

    def worst(rows):
        return max(float(rows[i]["anomaly_score"]) for i in christmas)

    assert worst(rows_plain) >= 0.9  # a busy Thursday gone quiet...
    assert worst(rows_told) < 0.9  # ... is a holiday, told
    assert main(["backtest", str(path), "--value-col", "count", "--country", "XX"]) == 2
    assert "unknown country code 'XX'" in capsys.readouterr().err


def test_the_count_column_is_found_when_it_is_the_only_one(tiny: Path, tmp_path: Path, capsys):
    out = tmp_path / "out.csv"
    two = tmp_path / "two.csv"
    two.write_text("timestamp,count\n2024-01-01 08:00:00,100\n2024-01-01 09:00:00,120\n")
    assert main(["backtest", str(two), "--out", str(out)]) == 0
    assert [r["value"] for r in read_out(out)] == ["100", "120"]
    assert "2 rows, 2 scored" in capsys.readouterr().err  # and the summary says so
    assert main(["backtest", str(tiny)]) == 1  # count and net: which one?
    assert "which column holds the counts? the header has ['timestamp', 'count', 'net']" in (
        capsys.readouterr().err
    )
