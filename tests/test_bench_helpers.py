"""Pure helpers of the benchmark harness (bench/): parsing wrk's output, spotting full scans.

The benchmarks themselves never run in the test suite.
"""

from __future__ import annotations

import pytest

from bench.explain import full_scans
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
