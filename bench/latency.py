"""Pressure latency from the controller's sample to the browser: p50/p95/max and the event rate.

Starts `bfr run --sim` (or uses a running appliance with --url and --socket), opens the patient
screen in headless Chromium and timestamps every `pressure` event as the page receives it.

Clocks: the event carries the controller's sample time `t` (its own clock). The controller's
clock is tied to wall time by `status` round trips over its socket, keeping the one with the
shortest round trip (error below half of it, typically well under a millisecond); the browser's
receive time is `performance.timeOrigin + performance.now()`, wall time on the same machine.

    python bench/latency.py [--seconds 20] [--budget-ms 100]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from appliance.controller.ipc import ControllerClient  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RECORDER = """() => {
  window.__pressure = [];
  window.addEventListener("bfr:pressure", (event) => {
    const received = performance.timeOrigin + performance.now();
    window.__pressure.push([received, event.detail.t, event.detail.sent_at]);
  });
}"""


def controller_to_wall(socket_path: str, tries: int = 40) -> tuple[float, float]:
    """Offset so that wall = t + offset, and the round trip (s) it was measured with."""
    client = ControllerClient(socket_path)
    best: tuple[float, float] | None = None
    try:
        for _ in range(tries):
            before = time.time()
            reply = client.request({"cmd": "status"})
            after = time.time()
            if not reply.get("ok"):
                continue
            rtt = after - before
            offset = (before + after) / 2 - reply["status"]["t"]
            if best is None or rtt < best[1]:
                best = (offset, rtt)
            time.sleep(0.01)
    finally:
        client.close()
    if best is None:
        raise SystemExit("latency: the controller does not answer status")
    return best


def start_sim(work: Path) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--sim", "--port", "0"]
        + ["--data-dir", str(work / "data")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=open(work / "run.log", "w"),  # noqa: SIM115
        text=True,
    )
    url = socket_path = None
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while (url is None or socket_path is None) and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if match := re.search(r"open (http://\S+/) ", line):
            url = match.group(1)
        if match := re.search(r"controller socket (\S+)", line):
            socket_path = match.group(1)
    if url is None or socket_path is None:
        process.kill()
        raise SystemExit(f"latency: bfr run did not start (see {work / 'run.log'})")
    return process, url, socket_path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(url: str, socket_path: str, seconds: float) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    offset, rtt = controller_to_wall(socket_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1024, "height": 600})
        page.goto(url)
        page.evaluate(RECORDER)
        time.sleep(seconds)
        rows = page.evaluate("() => window.__pressure")
        browser.close()
    offset_after, _ = controller_to_wall(socket_path)
    if len(rows) < 2:
        raise SystemExit("latency: no pressure events reached the page")
    # Sample time to browser receipt, in ms; the offset is the mean of both estimates.
    mean_offset = (offset + offset_after) / 2
    end_to_end = [received - (t + mean_offset) * 1000.0 for received, t, _ in rows]
    server_to_browser = [received - sent * 1000.0 for received, _, sent in rows]
    span_s = (rows[-1][0] - rows[0][0]) / 1000.0
    return {
        "events": len(rows),
        "rate_hz": (len(rows) - 1) / span_s,
        "p50_ms": statistics.median(end_to_end),
        "p95_ms": percentile(end_to_end, 95),
        "p99_ms": percentile(end_to_end, 99),
        "max_ms": max(end_to_end),
        "server_to_browser_p95_ms": percentile(server_to_browser, 95),
        "clock_rtt_ms": rtt * 1000.0,
        "clock_drift_ms": (offset_after - offset) * 1000.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to record")
    parser.add_argument("--budget-ms", type=float, default=100.0, help="p95 limit (exit 1 above)")
    parser.add_argument("--url", help="a running appliance's UI (default: start bfr run --sim)")
    parser.add_argument("--socket", help="its controller socket (with --url)")
    args = parser.parse_args()
    if bool(args.url) != bool(args.socket):
        parser.error("--url and --socket go together")
    process = None
    with tempfile.TemporaryDirectory(prefix="bfr-latency-") as tmp:
        if args.url:
            url, socket_path = args.url, args.socket
        else:
            process, url, socket_path = start_sim(Path(tmp))
        try:
            time.sleep(1.0)  # let the relay settle before the clock is tied
            figures = measure(url, socket_path, args.seconds)
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=15)
    print(
        f"pressure events: {figures['events']} in {args.seconds:g} s = {figures['rate_hz']:.1f} Hz"
    )
    print(
        "sample -> browser latency: p50 {p50_ms:.1f} ms, p95 {p95_ms:.1f} ms, p99 {p99_ms:.1f} ms,"
        " max {max_ms:.1f} ms".format(**figures)
    )
    print(f"web server -> browser p95: {figures['server_to_browser_p95_ms']:.1f} ms")
    print(
        f"clock tie: round trip {figures['clock_rtt_ms']:.2f} ms,"
        f" drift over the run {figures['clock_drift_ms']:+.2f} ms"
    )
    ok = figures["p95_ms"] <= args.budget_ms and figures["rate_hz"] >= 20.0
    print(f"{'PASS' if ok else 'FAIL'}: p95 <= {args.budget_ms:g} ms and rate >= 20 Hz")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
