"""`GET /api/signal/<installation>/<team>`: the pull signal, for agents and scripts.

Answered to a bearer token made for this one team (`stoplight token create`), or to a signed-in
person who may see the team (as its page). Everyone else, a wrong, revoked or other team's
token included, gets the 404 of a team that does not exist.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, request
from github import GithubException
from redis import Redis

from stoplight.config.repos import RepoConfigs
from stoplight.core.pulls import PullRecord
from stoplight.state import keys
from stoplight.state.pull_signal import load_signal
from stoplight.state.signal_tokens import TokenStore
from stoplight.state.views import team_repositories
from stoplight.web import auth
from stoplight.web.access import Access, Repositories, SignedOut
from stoplight.web.limits import WindowLimit

bp = Blueprint("pull_signal", __name__)

LIMIT = WindowLimit(calls=60)
LONGEST_LOGIN = 100


@bp.get("/api/signal/<int:installation_id>/<path:team>")
def signal(installation_id: int, team: str) -> Response:
    context = current_app.extensions["stoplight"]
    redis: Redis | None = context.redis
    if redis is None:
        abort(503)
    now = context.clock.now()
    person = request.args.get("person") or None
    if person is not None and len(person) > LONGEST_LOGIN:
        abort(400)
    bearer = _bearer()
    if bearer is not None:
        token = TokenStore(redis, installation_id).find(bearer, now)
        if token is None or token.team != team:
            abort(404)
        caller, visible = f"token:{token.id}", None
    else:
        user, repositories = _signed_in(redis, installation_id, team)
        caller, visible = f"user:{user}", repositories
    calls = keys.InstallationKeys(installation_id)
    wait = LIMIT.retry_after(redis, lambda window: calls.signal_calls(caller, window), now)
    if wait is not None:
        limited = jsonify({"error": "too many requests", "retry_after_seconds": wait})
        limited.status_code = 429
        limited.headers["Retry-After"] = str(wait)
        return limited

    def shown(record: PullRecord) -> bool:
        return visible is None or visible.any_of({record.repo_id}, {record.repo})

    settings = RepoConfigs(redis, installation_id).team(team)
    found = load_signal(redis, installation_id, team, now, settings, person, shown)
    if found is None:
        abort(404)
    answer = jsonify(found.as_json())
    answer.headers["Cache-Control"] = "no-store"
    return answer


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _signed_in(redis: Redis, installation_id: int, team: str) -> tuple[int, Repositories]:
    """The signed-in person who may see the team, and the repositories they can access; 404
    for anyone else, as the team's page answers."""
    user = auth.current_user() if auth.enabled() else None
    if user is None:
        abort(404)
    access = Access(redis, current_app.extensions["stoplight"].settings.github_api_url, user)
    try:
        repositories = access.repositories(installation_id)
    except SignedOut:
        auth.forget_current_user()
        abort(404)
    except GithubException:
        abort(503, "GitHub could not say what you can see. Try again shortly.")
    if not repositories.any_of(*team_repositories(redis, installation_id, team)):
        abort(404)
    return user.id, repositories
