"""Setup mode: register the GitHub App from app.yml through GitHub's manifest flow.

GET /setup offers a button that posts the manifest to GitHub with a one-time `state`; GitHub
sends the browser back to /setup/callback with a code and that state, and the code is
exchanged for the app's id, key, webhook secret and OAuth client. Those are written to .env;
the next start picks them up.

The routes exist only while the app has no credentials, neither in its environment nor in
.env: once registered they answer 404 and never reach GitHub, so nobody can swap in an app
of their own. Before that, /setup opens only with the token of the link the server prints in
its log, so nobody who merely reaches BASE_URL can register an app of theirs into a fresh
deployment. A callback whose state this server did not hand to this browser is refused.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import logging
import os
import secrets
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import yaml
from dotenv import dotenv_values
from flask import Blueprint, Response, abort, current_app, make_response, render_template, request
from redis import Redis

from stoplight.settings import Settings
from stoplight.state import keys
from stoplight.state.replies import binary, text

log = logging.getLogger(__name__)
bp = Blueprint("setup", __name__)

ENV_FILE = Path(".env")
CREDENTIALS = ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET")
STATE_COOKIE = "stoplight_setup_state"
# Long enough to fill in GitHub's form, short enough that a leaked state soon goes stale.
STATE_SECONDS = 60 * 60


class AlreadyRegistered(Exception):
    """The env file holds an app's credentials already; it is never overwritten."""


def manifest(settings: Settings) -> dict[str, Any]:
    """app.yml as shipped in the package, with the URLs of this deployment filled in."""
    data = yaml.safe_load(files("stoplight.web").joinpath("app.yml").read_text())
    data["url"] = settings.base_url
    # Behind NAT, GitHub posts to the proxy channel that `stoplight serve` follows.
    hook = settings.webhook_proxy_url or settings.base_url + settings.webhook_path
    data["hook_attributes"] = {"url": hook, "active": True}
    data["redirect_url"] = f"{settings.base_url}/setup/callback"
    # The OAuth client's return address, for "Sign in with GitHub" on the pages.
    data["callback_urls"] = [f"{settings.base_url}/auth/callback"]
    return data


def holds_credentials(path: Path) -> bool:
    values = dotenv_values(path) if path.exists() else {}
    return any(values.get(name) for name in CREDENTIALS)


def setup_link(settings: Settings, redis: Redis) -> str:
    """The address that opens setup, for the server's log: the same in every process."""
    redis.set(keys.SETUP_TOKEN, secrets.token_urlsafe(16), nx=True)
    token = redis.get(keys.SETUP_TOKEN)
    assert token is not None
    return f"{settings.base_url}/setup?token={text(token)}"


@bp.before_request
def only_while_unregistered() -> None:
    settings: Settings = current_app.extensions["stoplight"].settings
    if settings.configured or holds_credentials(ENV_FILE):
        abort(404)


def _token_is_ours(redis: Redis) -> bool:
    token, given = redis.get(keys.SETUP_TOKEN), request.args.get("token", "")
    return token is not None and hmac.compare_digest(binary(token), given.encode())


@bp.get("/setup")
def start() -> Response:
    context = current_app.extensions["stoplight"]
    settings: Settings = context.settings
    if context.redis is None:
        abort(503, "setup keeps its one-time state in Redis; set REDIS_URL")
    if not _token_is_ours(context.redis):
        abort(404)
    state = secrets.token_urlsafe(24)
    context.redis.set(keys.setup_state(state), 1, ex=STATE_SECONDS)
    org = request.args.get("org", "").strip()
    target = f"{settings.github_web_url}/settings/apps/new"
    if org:
        target = f"{settings.github_web_url}/organizations/{quote(org, safe='')}/settings/apps/new"
    response = make_response(
        render_template(
            "setup.html",
            settings=settings,
            target=f"{target}?state={state}",
            manifest=json.dumps(manifest(settings)),
            token=request.args["token"],
            local=settings.base_url.startswith(("http://127.", "http://localhost"))
            and not settings.webhook_proxy_url,
        )
    )
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_SECONDS,
        path="/setup",
        httponly=True,
        samesite="Lax",  # GitHub's redirect back is a top-level navigation: the cookie comes
        secure=settings.base_url.startswith("https://"),
    )
    return response


@bp.get("/setup/callback")
def callback() -> str:
    context = current_app.extensions["stoplight"]
    settings: Settings = context.settings
    code = request.args.get("code", "")
    if not code.isalnum():
        abort(400, "GitHub's redirect carries no valid code")
    if not _state_is_ours(context.redis, request.args.get("state", "")):
        log.warning("setup callback refused: its state was not handed out here")
        abort(403, "this registration was not started from this setup page")
    response = requests.post(
        f"{settings.github_api_url}/app-manifests/{code}/conversions",
        headers={"Accept": "application/vnd.github+json"},
        timeout=10,
    )
    if response.status_code != 201:
        log.error("manifest conversion failed: HTTP %s", response.status_code)
        abort(502, f"GitHub did not convert the manifest (HTTP {response.status_code})")
    app = response.json()
    try:
        write_env(ENV_FILE, app)
    except AlreadyRegistered:
        abort(409, f"{ENV_FILE} already holds an app's credentials")
    # The link in the log opened setup; registered, it must open nothing, even after a restart
    # that has the credentials removed again.
    context.redis.delete(keys.SETUP_TOKEN)
    log.info("GitHub App %s registered; credentials written to %s", app.get("slug"), ENV_FILE)
    return render_template("registered.html", app=app)


def _state_is_ours(redis: Any, state: str) -> bool:
    """The state came back to the browser it was given to, and is used once."""
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not state or not hmac.compare_digest(state.encode(), cookie.encode()) or redis is None:
        return False
    return redis.getdel(keys.setup_state(state)) is not None


def write_env(path: Path, app: dict[str, Any]) -> None:
    """Add the app's credentials to the env file (mode 0600), keeping its other lines.

    Refuses a file that holds credentials already; the lock makes two callbacks racing to
    register take turns, so the second finds the first's credentials and stops.
    """
    pem = app["pem"].strip().replace("\n", "\\n")
    lines = [
        f"APP_ID={app['id']}",
        f'PRIVATE_KEY="{pem}"',
        f"WEBHOOK_SECRET={app['webhook_secret']}",
        f"GITHUB_CLIENT_ID={app['client_id']}",
        f"GITHUB_CLIENT_SECRET={app['client_secret']}",
        f"SESSION_SECRET={secrets.token_urlsafe(32)}",
    ]
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "r+") as env_file:
        fcntl.flock(env_file, fcntl.LOCK_EX)
        os.fchmod(env_file.fileno(), 0o600)
        if holds_credentials(path):
            raise AlreadyRegistered(str(path))
        replaced = (*CREDENTIALS, "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "SESSION_SECRET")
        kept = [
            line
            for line in env_file.read().splitlines()
            if not line.startswith(tuple(f"{name}=" for name in replaced))
        ]
        env_file.seek(0)
        env_file.truncate()
        env_file.write("\n".join([*kept, *lines]) + "\n")
