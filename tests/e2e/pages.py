"""Browser-test support: a real server, a real browser with JavaScript off, and the checks run on each page.

Three pieces, used by tests/e2e/test_browser.py:

``DemoServer``
    ``signing demo`` in a subprocess on a loopback port, on its own instance
    folder (SQLite), with cheap Argon2id and batches published at once. The
    demo prints confirmation mail to its standard output, which goes to a
    file here, so a test reads the mailed link the way a person would.

``Visitor``
    One person's browser: a Playwright context with JavaScript disabled, a
    language (Accept-Language) and a page, plus ``audit(name)``, which runs on
    every page the person reaches:

    * the html ``lang`` is the page's language; one h1; no heading level
      skipped; the skip link comes first; the language link is there;
    * nothing is loaded from any host but the server under test;
    * no sideways scrolling at 320 px (WCAG 1.4.10, i.e. 400 % zoom) or at
      640 px (200 % zoom of a 1280 px window);
    * full-page screenshots at 375 px (a phone) and 1280 px, saved under
      artifacts/screenshots/ (git-ignored);
    * axe-core, see ``Axe``.

``Axe``
    axe-core needs JavaScript, and the browser under test has none. So it
    runs beside it: a second context with JavaScript on (and CSP bypassed,
    since the site's CSP rightly forbids injected scripts). ``audit`` takes
    the document the JavaScript-off page shows (``page.content()``) and the
    axe page loads it *at the same URL*, answered from that snapshot by a
    route, so the stylesheet and every relative link resolve against the
    real server while the document is exactly what the person saw, including
    pages that are the answer to a POST (a form with errors, a receipt) and
    that could not be fetched again without doing it twice. Then axe.min.js
    from the npm package is injected and ``axe.run`` is asked for the WCAG
    2.0/2.1/2.2 A and AA rules, and axe's best practices besides; any
    violation fails the test. Nothing is ever injected into the page under
    test.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]
SIGNING_CLI = [sys.executable, "-c", "from signing.cli import main; main()"]
LOCALES = {"en": "en-GB", "zh-Hant": "zh-HK"}
PHONE, DESKTOP = 375, 1280
ORGANISER_EMAIL = "organiser@campaign.example"
ORGANISER_PASSWORD = "a long organiser passphrase"
# One account per language for the two-factor pages, so turning it on in one test touches no other.
TWO_FACTOR_EMAILS = {"en": "totp-en@campaign.example", "zh-Hant": "totp-zh@campaign.example"}


def require_browser():
    """Playwright's sync API, or skip: the browser tests need it and Debian's chromium."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return sync_api


def require_axe():
    if not AXE_JS.is_file():
        pytest.skip(f"{AXE_JS.relative_to(ROOT)} is missing (npm ci --prefix tests/e2e)")
    return AXE_JS


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DemoServer:
    """`signing demo` on loopback, with a no-email petition and an organiser made by the CLI first."""

    def __init__(self, folder):
        self.folder = folder
        self.instance = folder / "instance"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stdout_path = folder / "demo.out"
        self.stderr_path = folder / "demo.err"
        generous = "10000/minute"
        self.env = {
            **os.environ,
            "SIGNING_INSTANCE_PATH": str(self.instance),
            "SIGNING_DATABASE_URL": f"sqlite:///{self.instance / 'countersign.db'}",
            "SIGNING_ARGON2_TIME_COST": "1",
            "SIGNING_ARGON2_MEMORY_KIB": "8",
            "SIGNING_PUBLISH_INTERVAL_SECONDS": "0",
            "SIGNING_PAGE_CACHE_SECONDS": "0",
            "SIGNING_DEVELOPMENT": "true",
            **{f"SIGNING_RATE_LIMIT_{name}": generous for name in ("SIGN", "CONFIRM", "RECEIPT", "WITHDRAW", "LOGIN")},
        }
        self.env.pop("SIGNING_MAIL_BACKEND", None)  # the demo then prints mail
        self.env.pop("SIGNING_PUBLIC_URL", None)
        self.process = None

    def cli(self, *args):
        result = subprocess.run(
            [*SIGNING_CLI, *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def cli_at_once(self, *commands):
        """Several commands side by side (SQLite waits for its write lock): start-up in half the time."""
        running = [
            subprocess.Popen(
                [*SIGNING_CLI, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for args in commands
        ]
        for args, process in zip(commands, running, strict=True):
            output, _ = process.communicate(timeout=60)
            assert process.returncode == 0, f"{args}: {output}"

    def start(self):
        self.cli("init")
        # Enough paper signatures in three districts for the totals page to draw its charts.
        districts = ["S1"] * 7 + ["S2"] * 6 + ["S3"] * 2
        rows = [f"Paper Signer {chr(97 + i)},{district} 1AA" for i, district in enumerate(districts)]
        paper = self.folder / "paper.csv"
        paper.write_text("name,postcode\n" + "\n".join(rows) + "\n", encoding="utf-8")
        self.cli_at_once(
            ("petition", "create", "plain", "--no-email",
             "--title", "Keep the library open on Sundays",
             "--body", "The library is the only warm, quiet place many of us have on a Sunday.\n\n"
                       "We ask the council to keep it open.",
             "--eligibility", "Anyone who uses the library may sign."),
            ("petition", "create", "charted", "--no-email", "--title", "Light the canal path", "--body", "Please."),
            *(("organiser", "add", email, "--password", ORGANISER_PASSWORD)
              for email in (ORGANISER_EMAIL, *TWO_FACTOR_EMAILS.values())),
        )  # fmt: skip
        self.cli("import", "charted", str(paper))  # published at once: the interval is 0
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [*SIGNING_CLI, "demo", "--host", "127.0.0.1", "--port", str(self.port)],
                env={**self.env, "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.stderr_path.read_text(errors="replace")
            try:
                with urllib.request.urlopen(self.base + "/p/demo", timeout=2) as response:  # noqa: S310 -- loopback
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("signing demo did not start:\n" + self.stderr_path.read_text(errors="replace"))

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def mail_mark(self):
        return self.stdout_path.stat().st_size

    def mail_since(self, mark, timeout=10):
        """The first message the demo printed after ``mark``: its headers and its body."""
        deadline = time.monotonic() + timeout
        rule = "-" * 72
        while time.monotonic() < deadline:
            with open(self.stdout_path, "rb") as out:
                out.seek(mark)
                text = out.read().decode("utf-8", "replace")
            blocks = text.split(rule)
            if len(blocks) >= 3:
                head, _, body = blocks[1].strip("\n").partition("\n\n")
                headers = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
                return headers, body
            time.sleep(0.05)
        raise AssertionError("no mail printed by the demo")

    def confirm_link(self, body):
        match = re.search(re.escape(self.base) + r"/p/[a-z0-9-]+/confirm/[A-Za-z0-9_-]+", body)
        assert match, body
        return match.group(0)


class Axe:
    """axe-core in its own JavaScript-on page, run on snapshots of what the JavaScript-off page showed."""

    def __init__(self, browser):
        self.source = AXE_JS.read_text(encoding="utf-8")
        self.context = browser.new_context(java_script_enabled=True, bypass_csp=True, locale="en-GB")
        self.page = self.context.new_page()

    def run(self, url, html):
        def snapshot(route):
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

        matcher = lambda candidate: candidate.split("#", 1)[0] == url.split("#", 1)[0]  # noqa: E731
        self.page.route(matcher, snapshot)
        try:
            self.page.goto(url, wait_until="load")
        finally:
            self.page.unroute(matcher, snapshot)
        self.page.add_script_tag(content=self.source)
        options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
        result = self.page.evaluate("options => axe.run(document, options)", options)
        return result["violations"], result["testEngine"]["version"]

    def close(self):
        self.context.close()


def describe(violations):
    lines = []
    for violation in violations:
        lines.append(f"  {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['failureSummary'].splitlines()[-1].strip()}")
    return "\n".join(lines)


class Visitor:
    """A person with JavaScript off, in one language, and the checks run on every page they reach."""

    def __init__(self, browser, server, axe, language, label):
        self.server = server
        self.axe = axe
        self.language = language  # the html lang expected: "en" or "zh-Hant"
        self.label = label
        self.context = browser.new_context(
            java_script_enabled=False,
            locale=LOCALES[language],
            viewport={"width": DESKTOP, "height": 900},
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.foreign = []
        self.page.on("request", self._note_request)
        self.problems = []
        self.audited = []

    def _note_request(self, request):
        parts = urlsplit(request.url)
        if parts.scheme not in ("data", "about") and parts.netloc != f"127.0.0.1:{self.server.port}":
            self.foreign.append(request.url)

    def goto(self, path):
        return self.page.goto(self.server.base + path)

    def submit(self, selector):
        """Press a submit button and wait for the page it leads to."""
        with self.page.expect_navigation():
            self.page.click(selector)

    def follow(self, selector):
        with self.page.expect_navigation():
            self.page.click(selector)

    def text(self):
        return self.page.inner_text("body")

    def audit(self, name, one_time=False):
        """Every check of a page; problems are collected and reported together at the end."""
        page = self.page
        problems = []
        lang = page.get_attribute("html", "lang")
        if lang != self.language:
            problems.append(f"html lang is {lang!r}, want {self.language!r}")
        levels = [int(tag[1]) for tag in page.eval_on_selector_all("h1,h2,h3,h4,h5,h6", "hs => hs.map(h => h.tagName)")]
        if levels.count(1) != 1:
            problems.append(f"{levels.count(1)} h1 headings")
        for before, after in zip(levels, levels[1:], strict=False):
            if after > before + 1:
                problems.append(f"heading level jumps from h{before} to h{after}")
        first = page.eval_on_selector("a[href], button, input, select, textarea", "e => e.outerHTML")
        if 'class="skip"' not in first or 'href="#main"' not in first:
            problems.append(f"the first focusable element is not the skip link: {first[:80]}")
        # A link, or on a form page a button that sends the form (what was typed is kept).
        switch = page.locator("nav.language a[hreflang], nav.language button[lang]")
        if one_time and switch.count():
            problems.append("a language link on a page that shows a secret once")
        if not one_time and switch.count() != 1:
            problems.append("no language link")
        for width in (320, 640):
            page.set_viewport_size({"width": width, "height": 800})
            scroll = page.evaluate("() => document.documentElement.scrollWidth")
            if scroll > width:
                problems.append(f"scrolls sideways at {width} px ({scroll} px wide)")
        tag = "en" if self.language == "en" else "zh"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width in (PHONE, DESKTOP):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SCREENSHOTS / f"{self.label}-{name}.{tag}.{width}.png"), full_page=True)
        violations, version = self.axe.run(page.url, page.content())
        if violations:
            problems.append(f"axe-core {version}:\n{describe(violations)}")
            report = ARTIFACTS / "axe" / f"{self.label}-{name}.{tag}.json"
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(json.dumps(violations, indent=1, ensure_ascii=False))
        if self.foreign:
            problems.append(f"loaded from another host: {self.foreign}")
            self.foreign.clear()
        self.problems += [f"{name} ({self.language}, {page.url}): {problem}" for problem in problems]
        self.audited.append(name)

    def assert_clean(self):
        assert not self.problems, f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems)

    def close(self):
        self.context.close()
