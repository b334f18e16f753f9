"""Pages and their JSON: the overview, a team's page (where statuses link), and the badge.

Everything here but the badge is for signed-in people, and shows an installation or a team only
where GitHub says the person can access it. Everyone else gets the same 404, whether the thing
exists or not, so no answer to an outsider names a repository, team, title or login.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
)
from github import GithubException
from redis import Redis
from werkzeug.exceptions import NotFound

from stoplight.backtest.latest import load_latest
from stoplight.config.repos import RepoConfigs
from stoplight.core.light import Level, format_duration
from stoplight.core.pulls import PullRecord, Rules
from stoplight.state import keys
from stoplight.state.history import FlowView, load_flow
from stoplight.state.installations import installation_ids
from stoplight.state.review_queue import QueueStore
from stoplight.state.views import TeamView, load_team_view, team_repositories
from stoplight.web import auth
from stoplight.web.access import Access, Repositories, SignedOut
from stoplight.web.badge import badge_svg
from stoplight.web.charts import render_chart

bp = Blueprint("pages", __name__)
bp.add_app_template_filter(format_duration, "duration")

PULLS_ON_PAGE = 200
BOT_VERDICTS = {
    "approved": "approved",
    "changes_requested": "requested changes",
    "commented": "commented",
}


@dataclass(frozen=True)
class TeamLight:
    key: str
    name: str
    level: Level | None

    def as_json(self) -> dict[str, Any]:
        light = self.level.name.lower() if self.level is not None else None
        return {"key": self.key, "name": self.name, "light": light}


@dataclass(frozen=True)
class InstallationOverview:
    id: int
    teams: tuple[TeamLight, ...]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "teams": [team.as_json() for team in self.teams]}


@bp.app_context_processor
def _signed_in_user() -> dict[str, Any]:
    return {"signed_in_user": auth.current_user, "return_token": auth.return_token}


@bp.get("/")
def home() -> str | Response:
    context = current_app.extensions["stoplight"]
    if not context.settings.configured:
        return render_template("unconfigured.html")
    _pages_on()
    if auth.current_user() is None:
        return render_template("signin.html", next="/")
    return render_template("home.html", installations=_overview())


@bp.get("/installations/<int:installation_id>")
def installation(installation_id: int) -> str:
    (overview,) = _overview(installation_id)
    return render_template("home.html", installations=[overview])


@bp.get("/teams/<int:installation_id>/<path:team>")
def team(installation_id: int, team: str) -> str:
    view, hidden = _visible_team(installation_id, team)
    flow = _flow(view)
    title = f"{view.name}: the review queue over the last 14 days"
    chart = render_chart(flow.series, title, view.policy)
    backtest = load_latest(_redis(), view.installation_id, view.key)
    return render_template(
        "team.html",
        view=view,
        hidden=hidden,
        flow=flow,
        chart=chart,
        backtest=backtest,
        bot_reviews=_uncounted_bot_reviews(view),
    )


@bp.get("/api/installations")
def api_overview() -> Response:
    return jsonify({"installations": [item.as_json() for item in _overview()]})


@bp.get("/api/installations/<int:installation_id>")
def api_installation(installation_id: int) -> Response:
    (overview,) = _overview(installation_id)
    return jsonify(overview.as_json())


@bp.get("/api/installations/<int:installation_id>/teams/<path:team>")
def api_team(installation_id: int, team: str) -> Response:
    view, hidden = _visible_team(installation_id, team)
    return jsonify({**view.as_json(), "hidden_pulls": hidden, "flow": _flow(view).as_json()})


@bp.get("/badge/<owner>/<path:team>.svg")
def badge(owner: str, team: str) -> Response:
    """The light alone, for READMEs: only for a team whose configuration says public_badge."""
    level = _public_light(_redis(), owner, team)
    response = Response(badge_svg(level), mimetype="image/svg+xml")
    response.cache_control.max_age = 60  # image proxies ask again soon: lights change
    return response


@bp.app_errorhandler(404)
def not_found(error: NotFound) -> tuple[str | Response, int]:
    """One answer for anything missing or hidden; anonymous people are offered sign-in."""
    if request.path.startswith("/api/"):
        return jsonify({"error": "not found"}), 404
    signed_in = auth.enabled() and auth.current_user() is not None
    offer = auth.enabled() and not signed_in
    next_page = request.full_path.rstrip("?") if offer else "/"
    return render_template("not_found.html", offer_sign_in=offer, next=next_page), 404


def _pages_on() -> None:
    if not auth.enabled():
        abort(404)


def _redis() -> Redis:
    redis: Redis | None = current_app.extensions["stoplight"].redis
    if redis is None:
        abort(503)
    return redis


def _access() -> Access:
    """The signed-in person's access, or 404 for anyone else."""
    _pages_on()
    user = auth.current_user()
    if user is None:
        abort(404)
    return Access(_redis(), current_app.extensions["stoplight"].settings.github_api_url, user)


def _overview(only: int | None = None) -> list[InstallationOverview]:
    """The person's installations with their visible teams; 404 when `only` is not visible."""
    access, redis = _access(), _redis()
    with _asking_github():
        visible = access.installations()
        if only is not None and only not in visible:
            abort(404)
        chosen = [only] if only is not None else sorted(visible & set(installation_ids(redis)))
        return [_installation(redis, access, installation_id) for installation_id in chosen]


def _installation(redis: Redis, access: Access, installation_id: int) -> InstallationOverview:
    store = QueueStore(redis, installation_id)
    repositories = access.repositories(installation_id)
    teams = tuple(
        TeamLight(key, name, light.level if (light := store.light(key)) else None)
        for key, name in sorted(store.teams().items(), key=lambda item: item[1].lower())
        if repositories.any_of(*team_repositories(redis, installation_id, key))
    )
    return InstallationOverview(installation_id, teams)


@contextmanager
def _asking_github() -> Iterator[None]:
    """GitHub's word on access: a token it no longer takes ends the session (and is a 404)."""
    try:
        yield
    except SignedOut:
        auth.forget_current_user()
        abort(404)
    except GithubException:
        abort(503, "GitHub could not say what you can see. Try again shortly.")


def _visible_team(installation_id: int, team: str) -> tuple[TeamView, int]:
    """The team's view as the person may see it, and how many of its PRs were left out."""
    access, redis = _access(), _redis()
    with _asking_github():
        repositories = access.repositories(installation_id)
    if not repositories.any_of(*team_repositories(redis, installation_id, team)):
        abort(404)
    now = current_app.extensions["stoplight"].clock.now()
    settings = RepoConfigs(redis, installation_id).team(team)
    view = load_team_view(redis, installation_id, team, now, settings, shown=PULLS_ON_PAGE)
    if view is None:
        abort(404)
    return _only_accessible(view, repositories)


def _only_accessible(view: TeamView, repositories: Repositories) -> tuple[TeamView, int]:
    """The view with only the PRs of repositories the person can access: a team spans
    repositories, and seeing one of them is no right to the others' titles and people. The
    light and the measures stay the team's."""

    def visible(record: PullRecord) -> bool:
        return repositories.any_of({record.repo_id}, {record.repo})

    waiting = tuple(item for item in view.waiting if visible(item.record))
    held_line = tuple(record for record in view.held_line if visible(record))
    stale_line = tuple(item for item in view.stale_line if visible(item.record))
    hidden = (
        len(view.waiting) - len(waiting)
        + len(view.held_line) - len(held_line)
        + len(view.stale_line) - len(stale_line)
    )  # fmt: skip
    return replace(view, waiting=waiting, held_line=held_line, stale_line=stale_line), hidden


def _uncounted_bot_reviews(view: TeamView) -> dict[str, list[str]]:
    """Bots' verdicts on each waiting PR's head that its queue does not count, by PR: shown as
    what they are, so a bot's approval of a waiting PR does not look like a lost one."""
    configs = RepoConfigs(_redis(), view.installation_id)
    rules_of = functools.cache(lambda repo: configs.get(repo).config.rules())
    return {
        item.record.key: _bot_review_lines(item.record, rules_of(item.record.repo))
        for item in view.waiting
    }


def _bot_review_lines(record: PullRecord, rules: Rules) -> list[str]:
    return [
        f"{reviewer} {BOT_VERDICTS[review.state]} — a bot's review, not counted"
        for reviewer, review in sorted(record.reviews.items())
        if review.state in BOT_VERDICTS
        and review.commit_id == record.head_sha
        and not rules.counts(reviewer, review)
    ]


def _flow(view: TeamView) -> FlowView:
    now = current_app.extensions["stoplight"].clock.now()
    return load_flow(_redis(), view.installation_id, view.key, view.policy.calendar, now)


def _public_light(redis: Redis, owner: str, team: str) -> Level | None:
    """The light of `owner`'s team `team` when that team shows it publicly; else 404. `team`
    is its name, or, where two files use one name, `name@repo` for the key `name@owner/repo`."""
    name_part, at, repo_part = team.rpartition("@")
    qualified = f"{name_part}@{owner}/{repo_part}".lower() if at else None
    named = [
        (installation_id, key)
        for installation_id, key, name in _teams_of(redis, owner.lower())
        if team in (key, name)
        or key.lower() == f"{owner}/{team}".lower()
        or key.lower() == qualified
    ]
    public = [
        (installation_id, key)
        for installation_id, key in named
        if RepoConfigs(redis, installation_id).team(key).public_badge
    ]
    if len(public) != 1:  # none, or a name two files use: the key tells them apart
        abort(404)
    installation_id, key = public[0]
    light = QueueStore(redis, installation_id).light(key)
    return light.level if light else None


def _teams_of(redis: Redis, owner: str) -> Iterator[tuple[int, str, str]]:
    """(installation, team key, team name) of every team defined in `owner`'s repositories."""
    ids = installation_ids(redis)
    reads = redis.pipeline(transaction=False)  # one round trip, however many installations
    for installation_id in ids:
        installation = keys.InstallationKeys(installation_id)
        reads.hgetall(installation.teams)
        reads.hgetall(installation.team_homes)
    answers = reads.execute()
    for installation_id, names, homes in zip(ids, answers[::2], answers[1::2], strict=True):
        for key, name in names.items():
            home = homes.get(key, key).decode().lower()  # a repository's own team is its name
            if home.startswith(f"{owner}/"):
                yield installation_id, key.decode(), name.decode()
