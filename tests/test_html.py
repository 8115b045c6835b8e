"""The HTML page of a report (SPEC §13): standalone, overview first, a figure per top
finding, bounded size, and it renders in a real headless browser.

The browser test drives Debian's Chromium through its chromedriver with Selenium. ``make
test`` installs them when missing and sets ``CRACKLE_REQUIRE_BROWSER=1``, so there the test
fails rather than skips when the browser cannot start.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from crackle_runtime import Kiln, PatternReport, ThermalProfile
from crackle_runtime.scenarios import event_stream


def _report(tasks: int, metrics: int, seed: int = 1) -> PatternReport:
    """Log-normal metrics with a x3 regression halfway in m0 and a law m1 = m2 + m3."""
    rng = np.random.default_rng(seed)
    values = np.exp(rng.normal(size=(tasks, metrics)))
    values[tasks // 2 :, 0] *= 3.0
    values[:, 1] = values[:, 2] + values[:, 3]
    kiln = Kiln(ThermalProfile.default().without_clustering())
    kiln.add_matrix(values, [f"m{i}" for i in range(metrics)])
    return kiln.cool()


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kiln = Kiln()
    kiln.fire_all(event_stream(1000, 7))
    path = tmp_path_factory.mktemp("html") / "demo.html"
    path.write_text(kiln.cool().to_html(), encoding="utf-8")
    return path


def test_the_page_is_standalone_and_begins_with_the_overview(demo_page: Path) -> None:
    page = demo_page.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    # nothing fetched: the only URL is the SVG namespace
    assert set(re.findall(r"https?://[^'\"\s]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert page.index("id='overview'") < page.index("id='findings'") < page.index("<table>")
    assert page.count("<svg") >= 10  # a figure per top finding
    assert "law: records_in - records_out - dropped = 0" in page


@pytest.mark.parametrize(
    ("tasks", "metrics", "limit"), [(1000, 12, 300_000), (100_000, 13, 1_000_000)]
)
def test_page_size_stays_bounded(tasks: int, metrics: int, limit: int, backend: str) -> None:
    if backend != "native":
        pytest.skip("the renderer is the same on both backends: measured once")
    report = _report(tasks, metrics)
    page = report.to_html()
    assert len(page.encode("utf-8")) <= limit
    drawn = [p for p in report.ranked()[:40] if p.kind.value != "clustering"]
    assert page.count("<svg") == len(drawn) > 0
    # the regression of m0 is drawn with its change marked (a dashed line)
    assert "stroke-dasharray" in page


def test_labels_that_are_not_valid_unicode_still_render() -> None:
    kiln = Kiln()
    kiln.add_matrix(
        np.arange(40.0).reshape(20, 2) % 7, ["a", "b"], [f"t\udc80{i}" for i in range(20)]
    )
    kiln.add_entry("bad\ud800", {"a": 1e6, "b": 1.0})
    page = kiln.cool().to_html()
    page.encode("utf-8")  # valid UTF-8: lone surrogates were replaced


def _browser() -> object:
    required = os.environ.get("CRACKLE_REQUIRE_BROWSER") == "1"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None  # type: ignore[assignment]
    if webdriver is None or chromium is None or driver_path is None:
        message = "Chromium, chromedriver and selenium are needed (make test installs them)"
        if required:
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def test_the_page_renders_in_a_headless_browser_with_the_overview_on_the_first_screen(
    demo_page: Path, backend: str
) -> None:
    if backend != "python":
        pytest.skip("the page is the same on both backends: opened once")
    driver = _browser()
    try:
        # a 1280 x 800 viewport, whatever the window decorations take
        driver.execute_cdp_cmd(  # type: ignore[attr-defined]
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get(demo_page.as_uri())  # type: ignore[attr-defined]
        top, first_line_bottom, height, figures = driver.execute_script(  # type: ignore[attr-defined]
            "const o = document.getElementById('overview');"
            "return [o.getBoundingClientRect().top,"
            " o.querySelector('li').getBoundingClientRect().bottom, window.innerHeight,"
            " document.querySelectorAll('#findings svg').length];"
        )
        assert height == 800
        assert 0 <= top < first_line_bottom <= 800
        assert figures >= 10
        # every figure was laid out at its size (the SVG parsed)
        widths = driver.execute_script(  # type: ignore[attr-defined]
            "return [...document.querySelectorAll('svg')].map(s => s.getBoundingClientRect().width)"
        )
        assert len(widths) == figures and min(widths) >= 360
        errors = [
            entry
            for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"  # type: ignore[attr-defined]
        ]
        assert errors == []
    finally:
        driver.quit()  # type: ignore[attr-defined]
