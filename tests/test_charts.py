"""The 14-day chart as SVG, and the team page's part that shows it with the weekly figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

from flask import render_template

from stoplight.core.flow import History, LightChange, Sample, chart_series, weekly_figures
from stoplight.core.light import ALWAYS, Level, Policy, Thresholds
from stoplight.state.history import FlowView
from stoplight.web import create_app
from stoplight.web.charts import render_chart

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 11, 29, 15, tzinfo=UTC)
TITLE = 'Team <script>alert("x")</script> & co'


def a_fortnight() -> History:
    start = NOW - timedelta(days=14)
    return History(
        since=start,
        until=NOW,
        lights=(
            LightChange(start - timedelta(days=1), Level.GREEN),
            LightChange(NOW - timedelta(days=5), Level.YELLOW),
            LightChange(NOW - timedelta(days=3), Level.RED),
            LightChange(NOW - timedelta(days=1), Level.GREEN),
        ),
        samples=(
            Sample(start - timedelta(hours=1), 2, 80, start - timedelta(hours=3)),
            Sample(NOW - timedelta(days=5), 5, 900, start - timedelta(hours=3)),
            Sample(NOW - timedelta(days=3), 9, 2600, NOW - timedelta(days=4)),
            Sample(NOW - timedelta(days=1), 1, 30, NOW - timedelta(days=1)),
        ),
    )


def chart() -> ET.Element:
    return ET.fromstring(str(render_chart(chart_series(a_fortnight(), ALWAYS, NOW), TITLE)))


def test_the_chart_is_well_formed_svg_that_scales_and_is_labelled():
    svg = chart()
    assert svg.tag == f"{SVG}svg"
    assert svg.get("width") == "100%" and svg.get("viewBox", "").startswith("0 0 ")
    assert svg.get("role") == "img" and svg.get("aria-label") == TITLE
    assert svg.find(f"{SVG}title").text == TITLE
    assert not list(svg.iter(f"{SVG}script"))


def test_the_chart_draws_the_three_series_over_the_light_bands():
    svg = chart()
    series = {p.get("class"): p.get("d") for p in svg.iter(f"{SVG}path")}
    assert set(series) == {"series waiting", "series oldest", "series lines"}
    assert all(d.startswith("M") and len(d.split()) > 4 for d in series.values())
    bands = [r.get("class") for r in svg.iter(f"{SVG}rect")]
    # Each of the three panels shows the four stretches of light.
    assert bands == 3 * ["band green", "band yellow", "band red", "band green"]
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    assert {"PRs waiting", "Oldest wait", "Lines waiting"} <= set(texts)
    assert "now 1" in texts and "now 30" in texts  # the latest count and lines


def test_the_teams_thresholds_are_drawn_where_the_scale_reaches_them():
    policy = Policy(
        yellow=Thresholds(waiting=4, oldest=timedelta(hours=24), lines=None),
        red=Thresholds(waiting=8, oldest=timedelta(hours=48), lines=50_000),
    )
    series = chart_series(a_fortnight(), ALWAYS, NOW)
    svg = ET.fromstring(str(render_chart(series, TITLE, policy)))
    limits = {
        panel.get("class"): [line.get("class") for line in panel.iter(f"{SVG}line")
                             if line.get("class")]
        for panel in svg.iter(f"{SVG}g") if panel.get("class", "").startswith("panel")
    }  # fmt: skip
    # The scale reaches the yellow threshold always, the red one only if the values do.
    assert limits == {
        "panel waiting": ["limit yellow", "limit red"],  # 9 PRs waited at most
        "panel oldest": ["limit yellow", "limit red"],  # a wait reached 11 days
        "panel lines": [],  # yellow off, red far above 2,600 lines
    }


def test_text_in_the_chart_is_escaped():
    markup = str(render_chart(chart_series(a_fortnight(), ALWAYS, NOW), TITLE))
    assert "<script>" not in markup
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in markup


def test_the_page_part_shows_the_chart_and_the_weekly_figures(settings, redis, clock):
    history = a_fortnight()
    series = chart_series(history, ALWAYS, NOW)
    flow = FlowView(weeks=weekly_figures(history, ALWAYS, NOW, 4), series=series)
    app = create_app(settings, redis, clock)
    with app.test_request_context():
        html = render_template("_flow.html", flow=flow, chart=render_chart(series, TITLE))

    assert html.count("<svg") == 1 and "<script>" not in html
    assert "Little's Law" in html
    heads = [html.index(day) for day in ("23 Nov", "16 Nov", "09 Nov")]
    assert heads == sorted(heads)  # the current week first
    data = json.loads(json.dumps(flow.as_json()))  # plain data for the API
    assert [week["first_day"] for week in data["weeks"]] == [
        "2026-11-23",
        "2026-11-16",
        "2026-11-09",
    ]
    assert data["chart"]["lights"][-1] == {
        "start": "2026-11-28T15:00:00+00:00", "end": "2026-11-29T15:00:00+00:00", "light": "green",
    }  # fmt: skip
