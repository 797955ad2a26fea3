"""`residency report`: one self-contained HTML page, opened in a real headless browser.

The page is written by the console script and loaded by Debian's Chromium over the DevTools
protocol (tests/browser.py): it must make no request but its own file, log no refusal, and draw
the data-path map (the SVG has its size, its boxes hold text, and the screenshot's map area has
the map's colours). A page that does fetch is caught by the same checks (the control test), so
they can fail. Chromium missing: the browser tests skip, except under CI=true where they fail.
"""

from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from browser import INSTALL_HINT, Chromium, chromium_binary
from cli_run import residency
from infra.commands import evidence as evidence_cmd
from infra.engine import evidence
from infra.program.bedrock_policy import invocation_log_group
from infra.program.stackfiles import load_stack_config
from live_fixtures import hermetic_aws_env

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "evidence"
SONNET_EU = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
MAP_FILL, BOUNDARY_STROKE = (0xE8, 0xF5, 0xE9), (0x33, 0x69, 0x1E)  # map_svg.STYLE["inside"], the boundary


def evidence_doc(stack: str = "eu") -> dict:
    """What `residency evidence --format json` prints, built by its own code from the documented
    record shapes: three requests in the EU, one processed in us-east-1."""
    trail = json.loads((FIXTURES / "cloudtrail-invoke-model.json").read_text())
    start = datetime(2026, 11, 30, tzinfo=timezone.utc)
    requests = []
    for i, (hours, region) in enumerate([(1, "eu-west-1"), (5, "eu-central-1"), (30, "eu-north-1"), (31, "us-east-1")]):
        record = dict(trail, requestID=f"r{i}", eventTime=(start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      additionalEventData={"inferenceRegion": region})
        requests.append(evidence.from_cloudtrail(record))
    cfg = load_stack_config(stack)
    checkpoint = evidence_cmd.Checkpoint(None, stack, start, start + timedelta(days=2), invocation_log_group())
    checkpoint.tally.add(requests)
    checkpoint.save(start + timedelta(days=2))
    return evidence_cmd.result(cfg, start, start + timedelta(days=2), checkpoint, invocation_log_group(), "")


@pytest.fixture(scope="module")
def chromium():
    if chromium_binary() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    with Chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The eu report with evidence and a preflight result, written once through the console script."""
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "evidence.json").write_text(json.dumps(evidence_doc()))
    (tmp / "preflight.json").write_text(json.dumps({"stack": "eu", "ok": True, "checks": []}))
    result = residency("report", "--stack", "eu", "--output", tmp / "report.html",
                       "--evidence", tmp / "evidence.json", "--preflight", tmp / "preflight.json")
    assert result.rc == 0, result.out + result.err
    return tmp / "report.html"


def test_the_page_references_nothing_outside_itself(written):
    html = written.read_text()
    assert ('<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">") in html
    assert "<script" not in html.lower()
    assert not re.findall(r"\s(?:src|href|action|srcset|poster|data)\s*=", html, re.I)
    # url() only as a fragment reference inside the page (the SVG arrow marker), never a resource.
    assert set(re.findall(r"url\(([^)]*)\)", html)) == {"#arrow"} and "@import" not in html


def test_the_page_loads_in_chromium_without_a_single_request(written, chromium):
    visit = chromium.open(written)
    assert visit.requests == [written.resolve().as_uri()]
    assert [e for e in visit.log if e.get("level") in ("error", "warning") or e.get("source") == "security"] == []


def test_the_map_renders(written, chromium):
    visit = chromium.open(written)
    box = visit.evaluate("""(() => {
        const map = document.getElementById('data-path-map');
        const r = map.getBoundingClientRect();
        const texts = [...map.querySelectorAll('g.node text')].map(t => t.getBBox().width);
        return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height, texts,
                nodes: map.querySelectorAll('g.node').length, edges: map.querySelectorAll('path.edge').length};
    })()""")
    assert box["w"] > 600 and box["h"] > 100, box
    # eu: EKS cluster, Bedrock endpoint and routing, egress firewall, and two declared hosts.
    assert box["nodes"] == 6 and box["edges"] >= 5, box
    assert all(width > 20 for width in box["texts"]), box["texts"]  # every box has drawn text
    from PIL import Image

    shot = Image.open(io.BytesIO(visit.screenshot())).convert("RGB")
    area = shot.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["w"]), int(box["y"] + box["h"])))
    colours = area.getcolors(maxcolors=1 << 20)
    drawn = sum(n for n, c in colours if c != (255, 255, 255))
    assert drawn > 0.3 * area.width * area.height  # the boundary box alone fills most of it
    near = lambda c, ref: all(abs(a - b) <= 12 for a, b in zip(c, ref))  # noqa: E731
    assert any(near(c, MAP_FILL) for _, c in colours) and any(near(c, BOUNDARY_STROKE) for _, c in colours)


def test_the_page_shows_evidence_preflight_findings_and_cost(written, chromium):
    assert '<h2>Preflight</h2><p><span class="status ok">passed</span>' in written.read_text()
    text = chromium.open(written).evaluate("document.body.innerText")
    assert "1 request group(s) outside EU" in text
    assert f"{SONNET_EU}: 1 request(s) processed in us-east-1, outside EU" in text
    assert "DenyOutsideGeography" in text and "per month at desired sizes" in text
    # eu is partly priced: the page says so as `residency cost` does, never a sum shown as the total.
    assert re.search(r"total: unknown, ≥ \$[\d,]+\.\d\d \(\d+ items unpriced\)", text), text
    assert "0 finding(s)" in text and "api.eu.residency.elevenlabs.io" in text


def test_the_checks_catch_a_page_that_fetches(chromium, tmp_path):
    """The control: the same checks fail for a page that asks for a remote image and stylesheet
    (the browser is pointed at a closed loopback proxy: nothing leaves the machine)."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text('<!doctype html><img src="http://example.invalid/x.png">'
                     '<link rel="stylesheet" href="https://fonts.example.invalid/a.css">')
    visit = chromium.open(leaky)
    assert visit.requests[1:] == ["http://example.invalid/x.png", "https://fonts.example.invalid/a.css"]
    guarded = tmp_path / "guarded.html"
    guarded.write_text("<!doctype html><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">"
                       '<img src="http://example.invalid/x.png">')
    assert any(e.get("source") == "security" for e in chromium.open(guarded).log)


# --- what is not read says so; bad input ----------------------------------------------------------

def test_without_evidence_or_preflight_the_page_says_not_read(tmp_path):
    result = residency("report", "--stack", "sg", "--output", tmp_path / "sg.html")
    assert result.rc == 0, result.err
    html = (tmp_path / "sg.html").read_text()
    assert re.search(r"Evidence: where inference ran</h2><p><span class=\"status notread\">not read</span> "
                     r"no evidence was given", html)
    assert re.search(r"Preflight</h2><p><span class=\"status notread\">not read</span>", html)


def test_evidence_without_credentials_is_not_read(tmp_path, monkeypatch):
    hermetic_aws_env(monkeypatch, tmp_path)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = residency("report", "--stack", "eu", "--output", tmp_path / "eu.html", "--evidence-since", "1d")
    assert result.rc == 0, result.err
    assert "not read</span> could not read the account&#x27;s records: no AWS credentials found" in \
        (tmp_path / "eu.html").read_text()


@pytest.mark.parametrize("setup, argv, says", [
    (None, ("--stack", "atlantis"), "unknown stack 'atlantis'"),
    (None, ("--stack", "eu", "--evidence", "missing.json"), "--evidence: cannot read missing.json as JSON"),
    ({"evidence.json": {"stack": "eu"}}, ("--stack", "eu", "--evidence", "evidence.json"),
     "is not `residency evidence --format json` output (missing: findings, geography"),
    ({"evidence.json": "us"}, ("--stack", "eu", "--evidence", "evidence.json"), "is for stack 'us', not 'eu'"),
    ({"preflight.json": [1]}, ("--stack", "eu", "--preflight", "preflight.json"), "is not a JSON object"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, setup, argv, says):
    for name, content in (setup or {}).items():
        content = evidence_doc("us") if content == "us" else content
        (tmp_path / name).write_text(json.dumps(content))
    result = residency("report", *argv, "--output", "out.html", cwd=tmp_path)
    assert result.rc == 2 and says in result.err and "Traceback" not in result.err
    assert not (tmp_path / "out.html").exists()
