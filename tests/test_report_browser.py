"""``report.html`` in a real headless browser (Debian's ``chromium``): it loads without a console
message, every plot is drawn with a size and marks, and the page makes no request at all.

The browser's console is read from its log (``--enable-logging=stderr``). A control page proves
the checks can fail: a page that tries to load an image off the network gets a console message
(its Content-Security-Policy blocks the load, as the report's would). The plot sizes are measured
by a copy of the report with one inline script added (which prints them to the console); the
report itself has no script. Set ``RECCTL_SCREENSHOT=PATH`` to also keep the screenshot there
(``make screenshot`` refreshes the README's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from builders import SAMPLE_WINDOW, run

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser: install Debian's chromium (`.ci/run` does) to run it"
)
CONSOLE = re.compile(r':INFO:CONSOLE[^\]]*\] "(?P<message>.*)", source: (?P<source>\S+)')
MEASURE = """<script>
const plots = [...document.querySelectorAll("figure.plot")].map(figure => {
  const svg = figure.querySelector("svg");
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const marks = svg ? svg.querySelectorAll("path, rect, line, text, circle").length : 0;
  return {plot: figure.dataset.plot, width: box.width, height: box.height, marks: marks};
});
console.log("RECCTL-PLOTS " + JSON.stringify(plots));
</script>"""


def browse(page: Path, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """Open ``page`` in headless chromium: its DOM after load, and every console message."""
    assert BROWSER is not None
    done = subprocess.run(
        [
            BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
            *extra, page.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [match["message"] for match in CONSOLE.finditer(done.stderr)]


@pytest.fixture(scope="module")
def report(
    sample_store: Path, sample_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    page = tmp_path_factory.mktemp("report") / "report.html"
    code, out, err = run(
        "--store", str(sample_store), "report", *SAMPLE_WINDOW, "--model", str(sample_model),
        "--out", str(page), "--json",
    )  # fmt: skip
    assert code == 0, err
    return page, json.loads(out)


def test_the_control_page_shows_the_checks_can_fail(tmp_path: Path) -> None:
    from recctl.report import CONTENT_SECURITY_POLICY

    page = tmp_path / "control.html"
    policy = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    page.write_text(
        f'<!DOCTYPE html><html><head>{policy}</head><body><img src="http://example.invalid/x.png"></body></html>'
    )
    _, messages = browse(page, tmp_path / "profile", "--dump-dom")
    assert any("example.invalid" in message for message in messages)


def test_the_report_opens_without_a_console_message_or_a_request(
    report: tuple[Path, dict], tmp_path: Path
) -> None:
    page, summary = report
    dom, messages = browse(page, tmp_path / "profile", "--dump-dom")
    assert messages == []
    assert "<script" not in dom
    references = re.findall(r'(?:src|href|xlink:href)\s*=\s*"([^"]*)"', dom)
    assert all(reference.startswith(("#", "data:")) for reference in references), references
    assert "url(" not in dom.replace("url(#", "")
    drawn = [section["key"] for section in summary["sections"] if section["plot"]]
    assert drawn == ["model", "importance", "bias", "frontier", "engagement", "categories"]
    for key in drawn:
        assert f'data-plot="{key}"' in dom


def test_every_plot_is_drawn_with_a_size_and_marks(report: tuple[Path, dict], tmp_path: Path) -> None:
    page, summary = report
    measured = tmp_path / "measured.html"
    text = page.read_text()
    text = text.replace("img-src data:", "img-src data:; script-src 'unsafe-inline'", 1)
    measured.write_text(text.replace("</body>", MEASURE + "</body>", 1))
    _, messages = browse(measured, tmp_path / "profile", "--dump-dom")
    reports = [message for message in messages if message.startswith("RECCTL-PLOTS ")]
    assert len(reports) == 1 and len(messages) == 1, messages
    plots = json.loads(reports[0].removeprefix("RECCTL-PLOTS "))
    assert [plot["plot"] for plot in plots] == [s["key"] for s in summary["sections"] if s["plot"]]
    for plot in plots:
        assert plot["width"] > 200 and plot["height"] > 100 and plot["marks"] > 20, plot


def test_a_screenshot_of_the_report(report: tuple[Path, dict], tmp_path: Path) -> None:
    page, _ = report
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    shots = {}
    for name, shown in (("report", page), ("blank", blank)):
        shots[name] = tmp_path / f"{name}.png"
        size = ("--window-size=1100,2400", "--hide-scrollbars")
        browse(shown, tmp_path / f"profile-{name}", f"--screenshot={shots[name]}", *size)
        assert shots[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A page of text and plots compresses far worse than an empty one of the same size.
    assert shots["report"].stat().st_size > 10 * shots["blank"].stat().st_size
    target = os.environ.get("RECCTL_SCREENSHOT")
    if target:
        shutil.copy(shots["report"], target)
