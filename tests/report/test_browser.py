"""The report as a person opens it: headless Chromium, from disk, with no network."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import memeval
from memeval.scenario import parse_scenario

from ..conftest import SCENARIOS
from .test_report import HOSTILE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs the Debian package `chromium`")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000",
                           "--window-size=1280,2400", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_report_renders_its_table_and_charts_without_console_errors(tmp_path: Path) -> None:
    from PIL import Image

    result = memeval.run([parse_scenario(HOSTILE), SCENARIOS / "quick" / "pets-and-moves.yaml"],
                         backends=["full_context", "window:tokens=200"], reader="extractive",
                         out=tmp_path / "run")
    url = (result.run_dir / "report.html").resolve().as_uri()
    shot = tmp_path / "report.png"
    taken = chromium(f"--screenshot={shot}", url)
    dom = chromium("--dump-dom", url)
    console = [line for line in taken.stderr.splitlines() + dom.stderr.splitlines()
               if ":CONSOLE" in line]
    assert console == [], console
    rendered = dom.stdout
    # the filter script ran and counted the probe rows it shows
    assert f"{len(result.records())} shown" in rendered
    assert 'id="summary"' in rendered and rendered.count("<svg") >= 5
    # the scenario's <script> stayed text: no alert ran, nothing was injected
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "<img src=\"x\"" not in rendered and "onerror=\"alert" not in rendered
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2400)
    colours = image.resize((160, 300)).getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 50  # not a blank page: tables and charts drew
