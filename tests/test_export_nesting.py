"""A deeply nested export is bad input (exit 2 with a clear message), not a bug (exit 4)."""

from __future__ import annotations

from cli_run import residency

RESOURCE = '{"urn":"urn:pulumi:eu::p::aws:s3/bucket:Bucket::b","type":"aws:s3/bucket:Bucket","custom":true,"inputs":{"x":%s}}'


def export(tmp_path, depth: int):
    path = tmp_path / f"nested-{depth}.json"
    path.write_text('{"version":3,"deployment":{"resources":[%s]}}' % (RESOURCE % ("[" * depth + "0" + "]" * depth)))
    return path


def test_a_deeply_nested_export_exits_2_and_says_why(tmp_path):
    for depth in (5000, 100_000):
        done = residency("audit", "--stack", "eu", "--export", str(export(tmp_path, depth)))
        assert done.rc == 2, done.err
        assert "nests values deeper than the JSON reader allows" in done.err and "Traceback" not in done.err


def test_a_nested_but_readable_export_is_audited(tmp_path):
    done = residency("audit", "--stack", "eu", "--export", str(export(tmp_path, 500)))
    assert done.rc in (0, 1), done.err  # read and judged: findings or none, not an error
