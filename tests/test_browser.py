"""A person in a real browser: signs in with GitHub, opens a red team's page, reads it.

Headless Chromium (Debian's `chromium` package, which `.ci/run` installs) driven by Playwright;
the real `stoplight serve` process; GitHub, its OAuth flow included, faked on 127.0.0.1.
Screenshots go to `test-artifacts/` (or STOPLIGHT_ARTIFACTS) for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stoplight.core.light import Level
from stoplight.effects.plan import DESCRIPTIONS
from tests.fakes import FakeClock, Pull
from tests.github_server import FakeGitHubState, serve_fake_github
from tests.test_agents import copilot_opened, copilot_pull
from tests.test_end_to_end import (
    _answers,
    free_port,
    post_delivery,
    serve_env,
    start_serve,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")
# Flags for a closed network: no sandbox as root, and no calls home at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("STOPLIGHT_ARTIFACTS", "test-artifacts"))
RED = DESCRIPTIONS[Level.RED]


@pytest.fixture
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium package is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def signed_in_app(tmp_path, private_key_pem) -> Iterator[tuple[str, FakeGitHubState]]:
    with serve_fake_github() as (host, github):
        github.access = {42: [(1001, "octo/shop")]}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = serve_env(
            private_key_pem, host, port, tmp_path,
            BASE_URL=url,
            GITHUB_CLIENT_ID="Iv1.browser",
            GITHUB_CLIENT_SECRET="browser-secret",
            SESSION_SECRET="a-session-secret-for-the-browser-test",
        )  # fmt: skip
        process = start_serve(env, tmp_path)
        try:
            wait_for(lambda: _answers(f"{url}/healthz"))
            yield url, github
        finally:
            stop(process)
        log = (tmp_path / "serve.log").read_text()
        assert "Traceback" not in log, log


def make_red(url: str, github: FakeGitHubState) -> None:
    clock = FakeClock(datetime.now(UTC))
    for number in range(1, 10):
        clock.advance(minutes=1)
        pull = Pull(number=number, head_sha=f"{number:040x}", title=f"Checkout step {number}")
        pull.reviewers = ["bob"] if number == 1 else []
        answer = post_delivery(url, pull.event("opened", clock.now()), f"browser-{number}")
        assert answer.status_code == 202

    def eight_red() -> bool:
        latest = {sha: text for sha, _, text in github.status_writes()}
        return list(latest.values()).count(RED) == 8

    wait_for(eight_red)


def test_a_person_signs_in_and_reads_a_red_team_page(browser, signed_in_app):
    url, github = signed_in_app
    make_red(url, github)
    (target_url,) = {body["target_url"] for _, path, body in github.writes if "/statuses/" in path}
    assert target_url == f"{url}/teams/42/octo%2Fshop"

    page = browser.new_page(viewport={"width": 1100, "height": 1500})
    # The page's Content-Security-Policy allows its own stylesheet and nothing else: a
    # refusal would show in the console ("Refused to apply inline style ..."), and the page
    # unstyled. (The 404 before sign-in is a console error too, and meant.)
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(target_url)  # the status's Details link, before sign-in
    assert "Checkout step" not in page.content()
    page.get_by_role("link", name="Sign in with GitHub").click()
    page.wait_for_url(re.compile(r".*/teams/42/octo(/|%2F)shop$"))  # the same page either way

    assert page.locator("#light").get_attribute("data-light") == "red"
    assert "8 PRs waiting (≥ 8 is red)" in page.locator(".why").inner_text()
    waiting = page.locator("#waiting tr")
    assert waiting.count() == 1 + 8  # a header and the eight waiting PRs, oldest first
    assert "octo/shop#1" in waiting.nth(1).inner_text() and "bob" in waiting.nth(1).inner_text()
    assert page.locator("#waiting .tag").count() == 3  # swarm on the three oldest
    assert "octo/shop#9" in page.locator("#held").inner_text()
    chart = page.locator("figure.chart svg")
    assert chart.count() == 1 and chart.bounding_box()["width"] > 500
    assert page.locator("table.weeks").count() == 1

    assert page.evaluate("getComputedStyle(document.body).maxWidth") == "736px"  # 46rem
    assert refused == []

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "team-page.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=ARTIFACTS / "team-page-phone.png", full_page=True)
    phone_width = page.evaluate("document.documentElement.scrollWidth")
    assert phone_width <= 390, "the page scrolls sideways on a phone"

    page.get_by_role("button", name="Sign out").click()
    page.goto(target_url)
    assert "Checkout step" not in page.content()
    assert github.revoked == ["ghu_alice"]  # signing out ended the token at GitHub too
    print(f"screenshots: {ARTIFACTS.resolve()}/team-page.png, team-page-phone.png")


def test_stale_agent_and_bot_reviewed_prs_read_as_what_they_are(browser, signed_in_app):
    url, github = signed_in_app
    now = datetime.now(UTC)
    left = Pull(number=30, head_sha="3" * 40, title="Left behind three weeks ago")
    assert (
        post_delivery(url, left.event("opened", now - timedelta(days=21)), "b-stale").status_code
        == 202
    )
    agent = copilot_pull(number=31, head_sha="4" * 40)
    assert post_delivery(url, copilot_opened(agent, now), "b-agent").status_code == 202
    reviewed = Pull(number=32, head_sha="5" * 40, title="Approved by a bot only")
    assert post_delivery(url, reviewed.event("opened", now), "b-bot-1").status_code == 202
    bot_review = reviewed.review("coderabbitai[bot]", "approved", now, reviewer_type="Bot")
    assert post_delivery(url, bot_review, "b-bot-2").status_code == 202
    wait_for(lambda: len({sha for sha, _, _ in github.status_writes()}) == 3)

    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    page.goto(f"{url}/teams/42/octo%2Fshop")
    page.get_by_role("link", name="Sign in with GitHub").click()
    page.wait_for_url(re.compile(r".*/teams/42/octo(/|%2F)shop$"))

    # The bot's review changes no status, so nothing outside says it was applied: the three
    # statuses can all be written before the worker reaches it. Reload until it shows.
    def bot_review_applied() -> bool:
        page.reload()
        return "coderabbitai[bot] approved" in page.locator("#waiting").inner_text()

    wait_for(bot_review_applied)
    stale = page.locator("#stale").inner_text()
    assert "octo/shop#30" in stale and "21d" in stale
    waiting = page.locator("#waiting").inner_text()
    assert "octo/shop#30" not in waiting
    assert "Copilot for alice" in waiting
    assert "coderabbitai[bot] approved" in waiting  # and it still waits for a person
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "team-page-stale.png", full_page=True)
