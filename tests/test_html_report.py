"""The HTML report: built from hand-written results and histories, rendered in
headless Chromium (Debian's chromium), checked for what a person would see."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from repro.harness.checks import Outcome, Verdict
from repro.harness.report import html, timeline
from repro.harness.report.results import IncidentResult, write_json

CHROMIUM = shutil.which("chromium")
WIDTH, HEIGHT = 1280, 2600
KEEP = os.environ.get("REPRO_KEEP_SCREENSHOT")  # a path: keep the screenshot to look at


def _history(path: Path, wedge: bool) -> Path:
    """A heartbeat at 4 Hz for 20 s, a flood from 8 to 16 s; the wedge cuts the host off."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"t": 0.5, "kind": "host", "host": "repro-ab12-target", "event": "ready"}]
    for i in range(80):  # the heartbeat's two legs
        t = 1 + i * 0.25
        ok = not (wedge and t >= 9)
        lines.append({"t": t, "kind": "probe", "host": "repro-ab12-target", "leg": "tcp",
                      "ok": ok, "tcp_ok": ok})
        lines.append({"t": t + 0.1, "kind": "probe", "host": "repro-ab12-target", "leg": "ssh",
                      "ok": ok, "ssh_ok": ok, "rtt_s": 0.004 + (i % 7) / 1000 if ok else None,
                      "boot_id": ("b1" if t < 5 or wedge else "b2") if ok else None})
    lines.append({"t": 8.0, "kind": "fault.start", "host": "repro-ab12-target",
                  "fault": "ssh_flood", "measured": {"streams_up": 20}})
    for i in range(16):
        lines.append({"t": 8.25 + i * 0.5, "kind": "stream", "host": "repro-ab12-target",
                      "stream": 1, "bytes": (min(i, 2) if wedge else i) * 5_000_000})
    lines.append({"t": 16.0, "kind": "fault.stop", "host": "repro-ab12-target",
                  "fault": "ssh_flood"})
    if wedge:
        lines.append({"t": 9.1, "kind": "kernel", "host": "repro-ab12-target",
                      "pattern": "hung task", "line": "INFO: task kworker blocked"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "20260101-000000-ab12"
    good = _history(d / "mtu_wedge" / "under test" / "history.jsonl", wedge=False)
    log = good.parent / "hosts" / "repro-ab12-target.log"  # claimed by its result
    log.parent.mkdir()
    log.write_text("sshd log\n")
    (d / "hosts").mkdir()
    (d / "hosts" / "repro-ab12-client.log").write_text("nobody's\n")  # unclaimed: no link
    bad = _history(d / "mtu_wedge" / "prefix fixture" / "history.jsonl", wedge=True)
    (bad.parent / "target.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")  # listed from its folder
    results = [
        IncidentResult("mtu_wedge", "under test", "/x/fixed.sh", "docker",
                       Verdict(Outcome.PASS, (), {"longest_gap_s": 0.0, "streams_up": 20,
                                                  "streams_asked": 20}), Outcome.PASS, 21.0,
                       {"history": str(good), "host log repro-ab12-target.log": str(log)},
                       "repro-ab12-target"),
        IncidentResult("mtu_wedge", "candidate image", "/x/fixed.sh", "docker:repro-ab12-cand",
                       Verdict(Outcome.FAIL, ("repro-ab12-target dropped off the network for "
                                              "11.0 s (limit 2.0 s)",),
                               {"longest_gap_s": 11.0, "streams_up": 20, "streams_asked": 20}),
                       Outcome.PASS, 22.0,
                       {"history": str(bad), "pcap": "not captured: tcpdump missing"},
                       "repro-ab12-target"),
    ]
    write_json(results, d / "results.json", d.name)
    html.write_html(results, d, d.name)
    return d


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []
        self.rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if tag == "img":
            self.images.append(str(a["src"]))
        if tag == "tr":
            self.rows += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_page_links_resolve_and_say_what_failed(run_dir: Path) -> None:
    page = _Page()
    page.feed((run_dir / "index.html").read_text())
    text = " ".join(page.text)
    assert "1 of 2 results NOT as expected" in text
    assert "dropped off the network for 11.0 s" in text
    assert "not captured: tcpdump missing" in text  # an artefact that is missing is named
    for ref in page.links + page.images:
        if not ref.startswith("#"):
            assert (run_dir / unquote(ref)).is_file(), ref
    assert len(page.images) == 2
    assert any(ref.endswith("history.jsonl") for ref in page.links)
    assert [ref for ref in page.links if ref.endswith(".log")] == [
        "mtu_wedge/under%20test/hosts/repro-ab12-target.log"]  # its own, by exact file
    assert any(ref.endswith("prefix%20fixture/target.pcap") for ref in page.links)
    assert "results.json" in page.links


def test_fault_windows_pair_starts_with_stops_and_keep_unhealed_ones_open() -> None:
    from repro.harness.history import Event
    events = [Event(1, "fault.start", "h", {"fault": "loss"}), Event(3, "fault.stop", "h",
                                                                      {"fault": "loss"}),
              Event(4, "fault.start", "h", {"fault": "mtu"})]
    assert timeline.fault_windows(events, end=9) == [
        timeline.Window("loss", "h", 1, 3, False), timeline.Window("mtu", "h", 4, 9, True)]


def test_a_history_without_probes_still_gets_a_timeline(tmp_path: Path) -> None:
    from repro.harness.history import Event
    png = timeline.draw([Event(0.5, "op", "db", {"name": "write", "latency_s": 0.01}),
                         Event(1.0, "fault.start", "db", {"fault": "storm"})],
                        tmp_path / "t.png", "x")
    assert png.read_bytes().startswith(b"\x89PNG")


def test_page_renders_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    if CHROMIUM is None:  # set-up installs it: its absence is a broken machine, not a skip
        pytest.fail("missing prerequisite: chromium is not installed (fix: bash setup/setup.sh)",
                    pytrace=False)

    shot = tmp_path / "page.png"
    with tempfile.TemporaryDirectory(prefix="repro-chromium-") as profile:
        proc = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={shot}",
             f"--window-size={WIDTH},{HEIGHT}", (run_dir / "index.html").as_uri()],
            capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (WIDTH, HEIGHT)
    if KEEP:
        shutil.copy(shot, KEEP)

    def share(box: tuple[int, int, int, int], rgb: tuple[int, int, int], tol: int = 12
              ) -> float:
        raw = img.crop(box).tobytes()
        pixels = [raw[i:i + 3] for i in range(0, len(raw), 3)]
        near = sum(all(abs(p[i] - rgb[i]) <= tol for i in range(3)) for p in pixels)
        return near / len(pixels)

    # the banner says "not all as expected" in red across the top
    assert share((0, 0, WIDTH, 40), (0xb7, 0x1c, 0x1c)) > 0.8
    # the verdict table marks the unexpected result's ok cell in red
    assert share((0, 0, WIDTH, 400), (0xff, 0xcd, 0xd2), tol=4) > 0.0005
    # the timelines were loaded and drawn: the fault window's orange shading (18 % over
    # white) and the liveness gap's red bar (30 % over white, where it outlasts the flood)
    def over_white(hex_rgb: str, alpha: float) -> tuple[int, int, int]:
        r, g, b = (int(hex_rgb[i:i + 2], 16) for i in (1, 3, 5))
        return (round(255 * (1 - alpha) + r * alpha), round(255 * (1 - alpha) + g * alpha),
                round(255 * (1 - alpha) + b * alpha))

    below_table = (0, 300, WIDTH, HEIGHT)
    assert share(below_table, over_white(timeline.FAULT_COLOUR, 0.18), tol=6) > 0.01
    assert share(below_table, over_white(timeline.GAP_COLOUR, 0.3), tol=6) > 0.0005


def test_the_banner_is_red_when_pytest_failed_though_every_result_was_as_expected(
        tmp_path: Path) -> None:
    from repro.harness.report.record import RunReport, TestRecord
    ok = IncidentResult("mtu_wedge", "under test", "/x/fixed.sh", "docker", Verdict(Outcome.PASS),
                        Outcome.PASS, 1.0, test="repro/mtu_wedge/test_x.py::test_a")
    report = RunReport("r1", [ok], [
        TestRecord("repro/mtu_wedge/test_x.py::test_a", "mtu_wedge", "passed"),
        TestRecord("repro/slowclone/test_x.py::test_b", "slowclone", "error",
                   "ProvisionError: sshd never answered"),
        TestRecord("repro/mongo_index_lock/test_x.py::test_c", "mongo_index_lock", "skipped",
                   "not run: no MongoDB server")], exit_status=1)
    page = _Page()
    page.feed(html.render(report, tmp_path))
    text = " ".join(page.text)
    assert '<header class="banner bad">' in html.render(report, tmp_path)
    assert "FAILED: All 1 results as expected; 1 crashed before a result; 1 not run " \
           "(pytest exit status 1)" in text
    assert "ProvisionError: sshd never answered" in text and "not run: no MongoDB server" in text
    assert page.rows == 4  # the header and a row per reproduction
    sections = [ref for ref in page.links if ref.startswith("#")]
    assert len(sections) == 3 and all(f'id="{ref[1:]}"' in html.render(report, tmp_path)
                                      for ref in sections)
    green = RunReport("r2", [ok], report.tests[:1], exit_status=0)
    assert '<header class="banner good">' in html.render(green, tmp_path)
    running = RunReport("r3", [ok], report.tests[:1], finished=False)
    assert "(run in progress)" in html.render(running, tmp_path)
    # results alone (no session recorded): never green, since pytest's verdict is unknown
    bare = html.render([ok], tmp_path, "r4")
    assert '<header class="banner void">' in bare and "exit status not recorded" in bare
