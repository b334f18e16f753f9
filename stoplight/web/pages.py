"""Human pages: the home page, a team's page (where statuses link), and a health check."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, redirect, render_template, url_for
from redis.exceptions import RedisError

from stoplight.light import format_duration
from stoplight.queue import QueueStore, installation_ids
from stoplight.views import load_team_view

bp = Blueprint("pages", __name__)
bp.add_app_template_filter(format_duration, "duration")


@bp.get("/")
def home() -> str | Response:
    context = current_app.extensions["stoplight"]
    if not context.settings.configured:
        return redirect(url_for("setup.start"))
    teams = []
    if context.redis is not None:
        for installation_id in installation_ids(context.redis):
            store = QueueStore(context.redis, installation_id)
            teams += [(installation_id, key, name) for key, name in sorted(store.teams().items())]
    return render_template("home.html", teams=teams)


@bp.get("/teams/<int:installation_id>/<path:team>")
def team(installation_id: int, team: str) -> str:
    context = current_app.extensions["stoplight"]
    if context.redis is None:
        abort(503)
    view = load_team_view(context.redis, installation_id, team, context.clock.now())
    if view is None:
        abort(404)
    return render_template("team.html", view=view)


@bp.get("/healthz")
def health() -> tuple[dict[str, str], int]:
    context = current_app.extensions["stoplight"]
    try:
        if context.redis is None:
            raise RedisError("no Redis configured")
        context.redis.ping()
    except RedisError as error:
        return {"status": "unavailable", "redis": str(error)}, 503
    return {"status": "ok"}, 200
