"""Text from repositories (team names, PR titles, logins) and from senders (delivery ids,
exception messages) reaches terminals, logs and Slack: shown as text, never as markup, an
escape sequence, a new log line or a mention."""

from __future__ import annotations

import io
import logging
import re
from datetime import timedelta

from rich.console import Console

from stoplight.backtest.render import render as render_backtest
from stoplight.backtest.report import run_backtest
from stoplight.core.light import Level, LightState
from stoplight.core.text import escape_controls, printable
from stoplight.effects.notice_blocks import NoticeContext, light_notice
from stoplight.logs import TextFormatter
from stoplight.ops import terminal
from stoplight.transport import dead_letters
from tests.conftest import deliver
from tests.fakes import START, Pull
from tests.test_backtest import MONDAY, opened

# Team names have no `/` (see the schema), so no closing tag, but opening ones still parse.
MARKUP_NAME = "[link=https:evil.example]click [bold red]shout [nostyle]"
# A hyperlink to elsewhere, a screen clear, a cursor jump and a right-to-left override.
HOSTILE_TITLE = (
    "\x1b]8;;https://evil.example\x07click me\x1b]8;;\x07 \x1b[2J\x1b[H [red]loud[/red] "
    "\u202eevil\u202c"
)
OSC_LINK_TO = re.compile(r"\x1b\]8;[^;\x07\x1b]*;([^\x07\x1b]*)")


def raw_terminal(width: int = 200) -> Console:
    return Console(file=io.StringIO(), force_terminal=True, color_system="standard", width=width)


def shown(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def assert_nothing_but_text(output: str) -> None:
    assert "\x1b[2J" not in output and "\x1b[H" not in output
    assert "\u202e" not in output
    assert not any("evil.example" in link for link in OSC_LINK_TO.findall(output))


def shop_team(rt, github, clock) -> None:
    github.files[("octo/shop", ".github/stoplight.yml")] = (
        f"teams: [{{name: '{MARKUP_NAME}', repos: ['*']}}]\n"
    )
    pull = Pull(title=HOSTILE_TITLE, reviewers=["ci[bot]", "bob"])
    deliver(rt, pull.event("opened", clock.now()))


def test_status_shows_markup_and_escape_sequences_as_text_and_links_stay_links(rt, github, clock):
    shop_team(rt, github, clock)
    console = raw_terminal()

    terminal.render(console, terminal.team_views(rt.redis, clock.now()))

    output = shown(console)
    assert_nothing_but_text(output)
    assert MARKUP_NAME in output
    assert "click me  [red]loud[/red] evil" in output
    assert "ci[bot], bob" in output
    links = [link for link in OSC_LINK_TO.findall(output) if link]  # "" ends a link
    assert links == ["https://github.com/octo/shop/pull/1"]


def test_the_backtest_names_a_markup_team_as_text():
    config = f"teams:\n  - name: '{MARKUP_NAME}'\n    repos: [shop]\n"
    history = [opened(1, MONDAY, title=HOSTILE_TITLE)]
    result = run_backtest(history, window=timedelta(days=7), until=MONDAY + timedelta(days=7),
                          config=config)  # fmt: skip
    console = raw_terminal()

    render_backtest(console, result.teams, result.snippet)

    output = shown(console)
    assert_nothing_but_text(output)
    assert MARKUP_NAME in output


def test_slack_shows_titles_names_and_logins_as_text(rt, github, clock):
    github.files[("octo/shop", ".github/stoplight.yml")] = (
        "teams: [{name: '<!channel> & <!subteam^S1|pay>', repos: ['*'],"
        " thresholds: {yellow: {waiting: 1}}}]\n"
    )
    pull = Pull(title="<!here> see <https://evil.example|the fix> & more",
                reviewers=["<!channel>"])  # fmt: skip
    deliver(rt, pull.event("opened", clock.now()))
    (view,) = terminal.team_views(rt.redis, clock.now())

    message = light_notice(view, NoticeContext(LightState(Level.GREEN, START)))
    texts = [message.text, *_mrkdwn(message.blocks)]

    assert texts and not any("<!" in text for text in texts)
    assert not any("<https://evil.example" in text for text in texts)
    assert any("&lt;!here&gt; see &lt;https://evil.example|the fix&gt; &amp; more" in text
               for text in texts)  # fmt: skip
    assert any("<https://github.com/octo/shop/pull/1|octo/shop#1>" in text for text in texts)


def _mrkdwn(node: object) -> list[str]:
    """Every mrkdwn text of the blocks: plain_text is shown as it is, mentions included."""
    if isinstance(node, list):
        return [text for value in node for text in _mrkdwn(value)]
    if not isinstance(node, dict):
        return []
    own = [node["text"]] if node.get("type") == "mrkdwn" else []
    return own + [text for value in node.values() for text in _mrkdwn(value)]


def test_a_log_line_stays_one_line_and_shows_what_was_sent_escaped():
    formatter = TextFormatter(secrets=[])
    record = logging.LogRecord(
        "stoplight.test", logging.WARNING, __file__, 1,
        "config of %s failed: %s", ("octo/shop", "bad\n2026-12-02 INFO forged: all good\x1b[2J"),
        None,
    )  # fmt: skip
    record.subject = {"delivery": "id\nforged", "repo": "octo/shop"}

    line = formatter.format(record)

    assert "\n" not in line and "\x1b" not in line
    assert line.endswith(
        "config of octo/shop failed: bad\\n2026-12-02 INFO forged: all good\\x1b[2J "
        "[delivery=id\\nforged repo=octo/shop]"
    )


def test_a_traceback_keeps_its_lines_with_their_insides_escaped():
    formatter = TextFormatter(secrets=[])
    try:
        raise ValueError("title \x1b[2J\u202e")
    except ValueError as error:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), (
            type(error), error, error.__traceback__))  # fmt: skip

    text = formatter.format(record)

    assert text.count("\n") >= 2 and "\x1b" not in text and "\u202e" not in text
    assert "ValueError: title \\x1b[2J\\u202e" in text


def test_the_dead_letter_table_is_printable(rt):
    letter = dead_letters.DeadLetter(
        delivery_id="abc\x1b[2J", event="pull_request", installation_id=42, repo="octo/shop",
        reason="ValueError: bad\nline \u202eevil", attempts=3, at=START,
    )  # fmt: skip

    table = dead_letters.table([letter])

    assert "\x1b" not in table and "\u202e" not in table
    assert table.splitlines()[1].endswith("ValueError: bad line evil")


def test_printable_and_escaped_forms():
    assert printable("a\tb\nc\x1b[31md\x9be\x7f\u2066f\x1b]0;title\x07") == "a b cdef"
    assert escape_controls("a\tb\nc\x1bd\x85\u202e") == "a\\tb\\nc\\x1bd\\x85\\u202e"
    assert printable("Ünïcode · ok ‎") == "Ünïcode · ok ‎"  # marks and letters stay
