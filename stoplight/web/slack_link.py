"""Linking a Slack person to their GitHub login, once: `/slack/link/<token>` signs them in with
GitHub (the pages' own sign-in), asks them to confirm, and stores the pair; the page that
follows can undo it.

The token came in a private Slack message to one person and works once, for a few minutes. A
used, lapsed or made-up token gets the one 404 of the site, which names nothing. Unlinking is a
POST from this site's own page (the session cookie is SameSite=Lax, as for signing out), and
undoes only the pair this browser's session made.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from redis import Redis
from werkzeug.wrappers import Response

from stoplight.state.slack_links import SlackLinks, SlackPerson
from stoplight.web import auth

log = logging.getLogger(__name__)
bp = Blueprint("slack_link", __name__)
LINKED = "slack_linked"  # the session's note of the Slack person it linked


def install(app: Flask) -> None:
    """Linking needs sign-in: the routes exist only where people can sign in."""
    if "stoplight.sessions" in app.extensions:
        app.register_blueprint(bp)


@bp.get("/slack/link/<token>")
def link(token: str) -> Response | str:
    """Ask before linking: a link passed on to someone else, opened while they are signed in,
    would otherwise let its Slack person act as them."""
    person = SlackLinks(_redis()).offered(token)
    if person is None:
        abort(404)
    user = auth.current_user()
    if user is None:
        return redirect(url_for("auth.login", next=auth.return_token(request.path)))
    return render_template("slack_link_confirm.html", person=person, login=user.login, token=token)


@bp.post("/slack/link/<token>")
def confirm(token: str) -> Response:
    user = auth.current_user()
    if user is None:  # the session cookie is SameSite=Lax: another site's form posts without it
        abort(404)
    person = SlackLinks(_redis()).redeem(token, user.login)
    if person is None:  # used meanwhile, in another tab or by someone else
        abort(404)
    session[LINKED] = person.dump()
    log.info("Slack member %s linked to %s", person.member, user.login)
    return redirect(url_for("slack_link.linked"))


@bp.get("/slack/linked")
def linked() -> str:
    _, login = _linked_here()
    return render_template("slack_linked.html", login=login)


@bp.post("/slack/unlink")
def unlink() -> str:
    person, login = _linked_here()
    SlackLinks(_redis()).unlink(person)
    session.pop(LINKED, None)
    return render_template("slack_unlinked.html", login=login)


def _linked_here() -> tuple[SlackPerson, str]:
    """The Slack person this session linked and the login it is linked to, while the signed-in
    person is still that login; 404 otherwise."""
    user, noted = auth.current_user(), session.get(LINKED)
    if user is None or not isinstance(noted, str):
        abort(404)
    person = SlackPerson.load(noted)
    if SlackLinks(_redis()).login(person) != user.login:
        abort(404)
    return person, user.login


def _redis() -> Redis:
    redis: Redis | None = current_app.extensions["stoplight"].redis
    if redis is None:
        abort(503)
    return redis
