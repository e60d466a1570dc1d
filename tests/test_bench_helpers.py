"""Pure helpers of the benchmark harness (bench/): parsing wrk's output, spotting full scans,
replaying a captured request's parameters.

The benchmarks themselves never run in the test suite.
"""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from bench.explain import full_scans
from bench.replay import Replay
from bench.server import ServerConfig, gunicorn, port_free
from bench.wrk import parse_output, to_us

WRK_TEXT = """\
Running 10s test @ http://127.0.0.1:8765/healthz
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.12ms    5.01ms  95.80ms   88.12%
    Req/Sec     1.21k   210.33     1.60k    70.00%
  Latency Distribution
     50%    6.02ms
     75%    8.10ms
     90%   12.50ms
     99%   33.90ms
  24572 requests in 10.00s, 3.80MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:   2457.20
Transfer/sec:    389.11KB
"""


def test_to_us_units():
    assert to_us("250us") == 250
    assert to_us("1.5ms") == 1500
    assert to_us("2.00s") == 2_000_000
    assert to_us("1.00m") == 60_000_000
    with pytest.raises(ValueError):
        to_us("fast")


def test_parse_text_summary():
    r = parse_output(WRK_TEXT)
    assert r.requests == 24572
    assert r.duration_s == 10.0
    assert r.rps == pytest.approx(2457.2)
    assert (r.p50_us, r.p90_us, r.p99_us) == (6020, 12500, 33900)
    assert r.max_us == 95800
    assert r.errors == {"read": 3, "timeout": 1, "status": 5}


def test_parse_json_line_wins_over_text():
    line = (
        'BENCH_JSON {"requests": 1000, "duration_us": 5000000, "bytes": 1, '
        '"errors": {"connect": 0, "read": 0, "write": 0, "status": 2, "timeout": 0}, '
        '"latency_us": {"min": 100, "mean": 900.5, "stdev": 1.0, "max": 9000, '
        '"p50": 800, "p90": 1500, "p99": 4000}, "codes": {"201": 998, "409": 2}, '
        '"exhausted": 0}'
    )
    r = parse_output(WRK_TEXT + line + "\n")
    assert r.requests == 1000
    assert r.rps == 200
    assert r.p99_us == 4000
    assert r.codes == {"201": 998, "409": 2}
    assert r.errors == {"status": 2}
    assert r.as_dict()["p99_ms"] == 4.0


def test_parse_rejects_output_without_summary():
    with pytest.raises(ValueError):
        parse_output("unable to connect to 127.0.0.1:8765 Connection refused\n")


def test_full_scans_by_dialect():
    pg = "Limit\n  ->  Seq Scan on cases\n  ->  Index Scan using pk_accounts on accounts"
    assert full_scans("postgresql", pg) == ["cases"]
    lite = "SCAN accounts\nSEARCH cases USING INDEX ix_cases_queue (township_code=?)"
    assert full_scans("sqlite", lite) == ["accounts"]
    assert full_scans("sqlite", "SCAN case_events USING INDEX ix_x") == ["case_events"]
    assert full_scans("sqlite", "SEARCH case_events USING INDEX ix_x (case_id=?)") == []
    skip = "SEARCH duty_shifts USING INDEX ix_duty_shifts_account_ends (ANY(account_id) AND e>?)"
    assert full_scans("sqlite", skip) == ["duty_shifts"]
    assert full_scans("postgresql", "Seq Scan on divisions") == []


def test_percentile_nearest_rank():
    from bench.stats import percentile

    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([1, 2, 3], 0) == 1
    with pytest.raises(ValueError):
        percentile([], 50)


# --- bench.replay: a captured tap's parameters for another tap ---------------------------

CASE = uuid.UUID("9c27d5ea-a34e-4333-9417-9d7c5ef8e338")
NEW_CASE = uuid.UUID("6a4d7520-7776-4840-8bf3-017ad6e7560e")
TEMPLATE = {
    "resident": 18496,
    "case_id": CASE,
    "case_no": "JJ371102001-20261201-0077",
    "key": "probe-key",
    "key_row": 3959,
    "township": "371102001",
}
NEW = {
    "resident": 777,
    "case_id": NEW_CASE,
    "case_no": "B123",
    "key": "new-key",
    "township": "371122114",
}


def test_replay_names_a_new_tap_wherever_the_probe_was_named() -> None:
    rows = json.dumps(
        [
            {
                "id": str(CASE),
                "case_no": TEMPLATE["case_no"],
                "resident_id": 18496,
                "subject_phone": "+8617000018496",  # the resident's digits inside a phone stay
                "township_code": "371102001",
                "county_code": "371102",
                "lat": 35.3959,  # the key row's id after a decimal point stays
            }
        ]
    )
    script = [
        ("SELECT 1 WHERE a = %(a)s AND k = %(k)s", {"a": 18496, "k": "probe-key"}, False),
        ("INSERT INTO case_counters VALUES (%(prefix)s)", {"prefix": "JJ371102001"}, False),
        ("INSERT INTO cases SELECT %(t0)s", {"t0": rows, "n": 5}, False),
        ("INSERT INTO sqlite_rows VALUES (?, ?)", [(CASE.hex, 18496), (CASE.hex, 3959)], True),
    ]
    replay = Replay(script, TEMPLATE)

    assert replay.params(0, NEW) == {"a": 777, "k": "new-key"}
    # The counter's prefix holds the township: a flood spread over townships spreads its rows.
    assert replay.params(1, NEW) == {"prefix": "JJ371122114"}
    sent = replay.params(2, NEW)
    assert sent["n"] == 5
    assert json.loads(sent["t0"]) == [
        {
            "id": str(NEW_CASE),
            "case_no": "B123",  # the whole case number, not the township inside it
            "resident_id": 777,
            "subject_phone": "+8617000018496",
            "township_code": "371122114",
            "county_code": "371102",
            "lat": 35.3959,
        }
    ]
    # The key row's id is new only once its insert has returned it.
    assert replay.params(3, NEW) == [(NEW_CASE.hex, 777), (NEW_CASE.hex, 3959)]
    assert replay.params(3, {**NEW, "key_row": 12}) == [(NEW_CASE.hex, 777), (NEW_CASE.hex, 12)]


def test_replay_sends_a_read_as_captured() -> None:
    replay = Replay([("SELECT %(a)s", {"a": 1, "b": [1, 2]}, False)], {})
    assert replay.params(0, {}) == {"a": 1, "b": [1, 2]}


def test_a_taken_port_stops_the_run_before_a_server_starts(tmp_path) -> None:
    # A server left from an earlier run would answer the readiness check and every request.
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert not port_free(port)
        with (
            pytest.raises(RuntimeError, match="is taken"),
            gunicorn(ServerConfig(port=port), {}, tmp_path / "gunicorn.log"),
        ):
            raise AssertionError("served")
        assert not (tmp_path / "gunicorn.log").exists()
    assert port_free(port)


def test_replay_returns_what_a_read_found() -> None:
    import sqlite3

    replay = Replay([("SELECT n FROM t WHERE case_id = ?", (CASE.hex,), False)], {"case_id": CASE})
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE t (case_id TEXT, n INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(CASE.hex, 1), (NEW_CASE.hex, 2)])
        # The read is sent for the new case: it finds that case's row, not the probe's.
        assert replay.send(conn.cursor(), {"case_id": NEW_CASE}) == [(2,)]
