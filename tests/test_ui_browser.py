"""The touchscreen in real headless Chromium against `bfr run --sim`: a whole session by touch.

The tests run in order as one visit to the clinic: first-run PIN, patient, screening, LOP, a short
session (2 sets of 3 reps) on the patient screen, a second session stopped mid-set with STOP,
then history and export. Each screen is saved as a PNG: to docs/screenshots/ with
`make screenshots`, otherwise to a temporary directory so a test run leaves the tree clean.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clinic import make_ready
from tests.test_web_live import SimApp, launch_sim

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium", allow_module_level=True
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

SCREENSHOTS = Path(
    os.environ.get("BFR_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "bfr-screenshots"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
VIEWPORT = {"width": 1024, "height": 600}  # a 7-10" appliance touchscreen
PIN = "4826"
CLINIC_ID = "P-0042"
SHORT_PROTOCOL = """\
schema = 1
name = "ui-check-short"
version = 1
title = "Short check: 2 sets of 3 reps"
kind = "resistance"
limbs = ["arm"]

[pct_lop]
arm = 50

[[exercises]]
name = "curl"
title = "Biceps curl"
cadence_s = 1.0
inflate_during_rest = false
max_occlusion_s = 60
sets = [{ reps = 3, rest_after_s = 5 }, { reps = 3 }]
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimApp]:
    data = tmp_path_factory.mktemp("ui") / "data"
    (data / "protocols").mkdir(parents=True)
    (data / "protocols" / "ui-check-short.toml").write_text(SHORT_PROTOCOL)
    app = launch_sim(data, "--check-readiness")  # no calibration or self-test on record yet
    yield app
    assert app.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def screens(browser: Browser, sim: SimApp) -> Iterator[dict[str, Page]]:
    """Two touch screens side by side: the clinician's console and the patient's screen."""
    context = browser.new_context(viewport=VIEWPORT, has_touch=True, device_scale_factor=1)
    errors: list[str] = []
    pages = {"console": context.new_page(), "patient": context.new_page()}
    for page in pages.values():
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    pages["console"].goto(sim.url + "console")
    pages["patient"].goto(sim.url)
    yield pages
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def tap_pin(page: Page, pin: str) -> None:
    for digit in pin:
        page.locator(f'.pin-key[data-digit="{digit}"]').tap()
    page.get_by_role("button", name="Enter").tap()


def tab(page: Page, name: str) -> None:
    page.locator(f'[data-tab="{name}"]').tap()


def pressure(page: Page) -> float:
    text = page.locator("#top-pressure").inner_text()
    return float(text) if re.fullmatch(r"-?\d+", text) else float("nan")


def wait_phase(page: Page, phase: str, timeout_s: float = 30) -> None:
    # Predicates are functions, not strings: the page's CSP forbids eval.
    page.wait_for_function(
        "(phase) => document.body.dataset.phase === phase",
        arg=phase,
        timeout=timeout_s * 1000,
        polling=100,
    )


def screen(screens: dict[str, Page], name: str) -> Page:
    page = screens[name]
    page.bring_to_front()
    return page


# ---------------------------------------------------------------- the visit


def test_patient_screen_waits_with_stop_and_live_pressure(screens: dict[str, Page]) -> None:
    page = screen(screens, "patient")
    expect(page.locator("#view-idle")).to_be_visible()
    expect(page.locator("#stop-button")).to_be_visible()
    expect(page.locator("#top-pressure")).to_have_text(re.compile(r"^\d+$"), timeout=10_000)
    expect(page.locator("#top-state")).to_have_text("Ready")
    shot(page, "patient-idle")


def test_first_run_pin_then_register_a_patient(screens: dict[str, Page]) -> None:
    page = screen(screens, "console")
    expect(page.locator("#lock-title")).to_have_text("Set the console PIN")
    page.locator("#clinician-name").fill("Dr Ada")
    shot(page, "console-pin")
    tap_pin(page, PIN)
    expect(page.locator("#lock-help")).to_contain_text("same PIN again")
    tap_pin(page, PIN)
    expect(page.locator("#console")).to_be_visible()
    form = page.locator("#patient-form")
    form.locator('[name="clinic_id"]').fill(CLINIC_ID)
    form.locator('[name="birth_year"]').fill("1968")
    form.locator('[name="limb_notes"]').fill("left shoulder: rotator cuff repair")
    form.get_by_role("button", name="Register").tap()
    expect(page.locator("#current-patient")).to_have_text(f"Patient {CLINIC_ID}")
    expect(page.locator("#patient-list")).to_contain_text(CLINIC_ID)
    shot(page, "console-patients")


def test_an_appliance_not_ready_says_why_and_starts_nothing_until_fixed(
    screens: dict[str, Page], sim: SimApp
) -> None:
    page = screen(screens, "console")
    card = page.locator("#readiness")
    expect(card).to_be_visible()
    expect(card.locator("li")).to_have_count(2)
    expect(card).to_contain_text("never been calibrated: a technician must calibrate")
    expect(card).to_contain_text("not been self-tested: a technician must run the self-test")
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "console-not-ready")
    _submit_short_session(page)
    expect(page.locator("#console-message")).to_contain_text("session: the appliance is not ready")
    expect(page.locator("#session-live")).to_be_hidden()
    controller = sim.controller()
    try:
        assert controller.request({"cmd": "status"})["status"]["state"] == "IDLE"
    finally:
        controller.close()
    make_ready(sim.data_dir, time.time())  # what `bfr calibrate` and `bfr selftest` leave
    # No reload and no tab change: the console looks again on its own every 10 s.
    expect(card).to_be_hidden(timeout=15000)


def _screen_all_no(page: Page, *, prefill: bool = False) -> None:
    tab(page, "screening")
    questions = page.locator("#screening-questions .question")
    expect(questions.first).to_be_visible()
    if prefill:
        page.locator("#screening-prefill").tap()
    else:
        for i in range(questions.count()):
            questions.nth(i).locator("label.choice").nth(1).tap()
    page.locator("#screening-form").get_by_role("button", name="Save screening").tap()
    expect(page.locator("#screening-outcome")).to_contain_text("Cleared")


def test_screening_and_lop_by_touch(screens: dict[str, Page]) -> None:
    page = screen(screens, "console")
    _screen_all_no(page)
    page.locator("#screening-questions").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "console-screening")
    message = page.locator("#console-message")
    expect(message).to_have_text("Screening saved.")
    tab(page, "lop")
    expect(message).to_have_text("")  # the last tab's message is not this tab's
    form = page.locator("#lop-form")
    form.locator('[name="first_mmhg"]').fill("148")
    form.locator('[name="second_mmhg"]').fill("152")
    form.locator('[name="method"]').select_option("doppler")
    form.get_by_role("button", name="Save LOP").tap()
    expect(page.locator("#lop-history")).to_contain_text("150 mmHg")
    page.locator("#lop-history").scroll_into_view_if_needed()
    shot(page, "console-lop")


def _dismiss_and_rescreen(console: Page) -> None:
    """Close the last session's summary; every inflation needs its own screening, so
    re-confirm the same answers."""
    console.locator('#session-actions [data-action="dismiss"]').tap()
    _screen_all_no(console, prefill=True)


def _submit_short_session(page: Page) -> None:
    """The short protocol on the left arm at the LOP on record, as a clinician plans it."""
    tab(page, "session")
    form = page.locator("#session-form")
    form.locator('[name="protocol"]').select_option("ui-check-short")
    form.locator('[name="limb"]').select_option("arm")
    form.locator('[name="lop_source"]').select_option("recorded")
    expect(form.locator('[name="pct_lop"]')).to_have_value("50")
    form.get_by_role("button", name="Start session").tap()


def _start_short_session(page: Page) -> None:
    _submit_short_session(page)
    expect(page.locator("#session-live")).to_be_visible()


def test_whole_session_by_touch_on_the_patient_screen(screens: dict[str, Page]) -> None:
    console = screen(screens, "console")
    _start_short_session(console)
    shot(console, "console-session")

    page = screen(screens, "patient")
    wait_phase(page, "cuff_placement")
    expect(page.locator(".cuff-figure .cuff.active")).to_have_count(1)
    expect(page.locator('.cuff-closeup[data-limb="arm"]')).to_be_visible()
    shot(page, "patient-cuff")
    page.locator("#confirm-cuff").tap()

    for set_number in (1, 2):
        wait_phase(page, "set")
        expect(page.locator("#step-label")).to_contain_text(f"set {set_number} of 2")
        expect(page.locator("#widget-reps")).to_be_visible()
        page.wait_for_function(
            "() => ['up', 'down'].includes(document.getElementById('metronome').dataset.phase)",
            timeout=15_000,
            polling=50,
        )
        assert pressure(page) > 50, "the cuff holds pressure during the set"
        if set_number == 1:
            shot(page, "patient-reps")
        rating = page.locator("#widget-rating")
        expect(rating).to_be_visible(timeout=15_000)
        for slider, fraction in (("#rpe", 0.6), ("#pain", 0.25)):
            page.locator(slider).scroll_into_view_if_needed()
            box = page.locator(slider).bounding_box()
            assert box is not None
            page.touchscreen.tap(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
        expect(page.locator("#rpe-value")).not_to_have_text("-")
        expect(page.locator("#pain-value")).not_to_have_text("-")
        if set_number == 1:
            shot(page, "patient-rating")
        page.locator("#rating-save").tap()
        if set_number == 1:
            wait_phase(page, "rest")
            expect(page.locator("#widget-countdown")).to_be_visible()
            shot(page, "patient-rest")

    wait_phase(page, "finished", timeout_s=30)
    expect(page.locator("#prompt-text")).to_contain_text("completed")
    shot(page, "patient-done")


def test_stop_mid_set_deflates_at_once(screens: dict[str, Page]) -> None:
    console = screen(screens, "console")
    _dismiss_and_rescreen(console)
    _start_short_session(console)

    page = screen(screens, "patient")
    wait_phase(page, "cuff_placement")
    page.locator("#confirm-cuff").tap()
    wait_phase(page, "set")
    page.wait_for_function(
        "() => document.getElementById('metronome').dataset.phase === 'up'",
        timeout=15_000,
        polling=50,
    )
    before = pressure(page)
    assert before > 50
    page.locator("#stop-button").tap()
    expect(page.locator("#top-state")).to_have_attribute("data-state", "FAULT", timeout=2_000)
    expect(page.locator("#alarm-banner")).to_contain_text("STOP_UI")
    readings = []
    for _ in range(6):
        readings.append(pressure(page))
        time.sleep(0.25)
    assert readings[-1] < before / 2, f"pressure not falling after STOP: {before} -> {readings}"
    assert readings == sorted(readings, reverse=True) or readings[-1] < 10
    wait_phase(page, "finished")
    expect(page.locator("#prompt-text")).to_contain_text("stopped")
    shot(page, "patient-stop-alarm")

    # The clinician resets the controller once the cuff is empty.
    console = screen(screens, "console")
    tab(console, "device")
    expect(console.locator("#top-pressure")).to_have_text(re.compile(r"^[0-9]$"), timeout=10_000)
    console.locator("#device-reset").tap()
    expect(console.locator("#top-state")).to_have_attribute("data-state", "IDLE", timeout=5_000)
    expect(console.locator("#alarm-banner")).to_be_hidden()


def test_stop_during_a_lop_measurement_says_why_there_is_no_reading(
    screens: dict[str, Page],
) -> None:
    """STOP mid-measurement ends it as failed: the console stops waiting and names the stop."""
    console = screen(screens, "console")
    tab(console, "session")
    _dismiss_and_rescreen(console)  # measuring inflates the cuff: it needs the clearance too
    tab(console, "lop")
    console.locator("#lop-measure").tap()
    live = console.locator("#lop-live")
    expect(live).to_contain_text("Measuring", timeout=5_000)
    expect(console.locator("#top-state")).to_have_attribute(
        "data-state", "MEASURING_LOP", timeout=5_000
    )
    console.wait_for_function(
        "() => Number(document.getElementById('top-pressure').textContent) > 20",
        timeout=15_000,
        polling=50,
    )
    console.locator("#stop-button").tap()
    expect(console.locator("#top-state")).to_have_attribute("data-state", "FAULT", timeout=2_000)
    expect(live).to_contain_text("No reading: stopped by the STOP_UI fault", timeout=5_000)
    shot(console, "console-lop-stopped")
    tab(console, "device")
    expect(console.locator("#top-pressure")).to_have_text(re.compile(r"^[0-9]$"), timeout=10_000)
    console.locator("#device-reset").tap()
    expect(console.locator("#top-state")).to_have_attribute("data-state", "IDLE", timeout=5_000)


def test_history_plot_and_export(screens: dict[str, Page]) -> None:
    page = screen(screens, "console")
    tab(page, "history")
    sessions = page.locator("#session-list .pick")
    expect(sessions).to_have_count(2)
    expect(sessions.nth(0)).to_contain_text("alarm")
    expect(sessions.nth(1)).to_contain_text("completed")
    sessions.nth(1).tap()
    expect(page.locator("#set-rows tr")).to_have_count(2)
    page.wait_for_function(
        "() => document.getElementById('session-plot').complete"
        " && document.getElementById('session-plot').naturalWidth > 0",
        timeout=10_000,
    )
    # The last test's STOP flash clears by itself within its 4 s.
    expect(page.locator("#stop-flash")).to_be_hidden(timeout=6_000)
    shot(page, "console-history")
    page.locator("#export-form").get_by_role("button", name="Export").tap()
    expect(page.locator("#export-files")).to_contain_text("index.html")


def _small_targets(page: Page) -> list[Any]:
    return page.evaluate(
        """() => [...document.querySelectorAll(
            'button, a, select, textarea, input:not([type=radio]), label.choice')]
          .filter((el) => el.offsetParent !== null && !el.closest('.choice:not(label)'))
          .map((el) => [el.id || el.textContent.trim().slice(0, 30), el.getBoundingClientRect()])
          .filter(([, r]) => r.width > 0 && (r.height < 48 || r.width < 48))
          .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )


def test_touch_targets_and_type_are_large(screens: dict[str, Page]) -> None:
    console = screen(screens, "console")
    for name in ("patients", "screening", "lop", "session", "history", "device"):
        tab(console, name)
        assert not _small_targets(console), (name, _small_targets(console))
    page = screen(screens, "patient")
    assert not _small_targets(page)
    size = page.evaluate(
        "() => parseFloat(getComputedStyle(document.getElementById('prompt-text')).fontSize)"
    )
    assert size >= 36
    stop = page.locator("#stop-button").bounding_box()
    assert stop is not None and stop["width"] >= 150 and stop["height"] >= 64
