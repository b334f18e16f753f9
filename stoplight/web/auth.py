"""Sign in with GitHub: the app's own OAuth client (user-to-server tokens), through Authlib.

The browser keeps a signed cookie holding only a random session id (and, during sign-in,
Authlib's `state`). The user's GitHub token stays on the server: in Redis, encrypted with a key
derived from SESSION_SECRET, for as long as the session lasts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from cryptography.fernet import Fernet, InvalidToken
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    request,
    session,
    url_for,
)
from redis import Redis
from werkzeug.wrappers import Response

from stoplight.settings import Settings
from stoplight.state import keys

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

# GitHub's user-to-server tokens last eight hours; a session no longer than its token.
SESSION_LIFETIME = timedelta(hours=8)
PROVIDER = "github"


@dataclass(frozen=True)
class User:
    id: int
    login: str
    token: str


class Sessions:
    """Signed-in people, by session id: their GitHub identity and token, encrypted at rest."""

    def __init__(self, redis: Redis, secret: str) -> None:
        self.redis = redis
        key = hashlib.sha256(b"stoplight user tokens\x00" + secret.encode()).digest()
        self._vault = Fernet(base64.urlsafe_b64encode(key))

    def open(self, user: User) -> str:
        session_id = secrets.token_urlsafe(32)
        sealed = self._vault.encrypt(json.dumps(user.__dict__).encode())
        self.redis.set(keys.user_session(_digest(session_id)), sealed, ex=SESSION_LIFETIME)
        return session_id

    def user(self, session_id: str) -> User | None:
        sealed = self.redis.get(keys.user_session(_digest(session_id)))
        if sealed is None:
            return None
        try:
            return User(**json.loads(self._vault.decrypt(sealed)))
        except (InvalidToken, TypeError, ValueError):
            return None

    def close(self, session_id: str) -> None:
        self.redis.delete(keys.user_session(_digest(session_id)))


def _digest(session_id: str) -> str:
    """Redis holds a hash of the id: a copy of the database does not hand out sessions."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def init_app(app: Flask, settings: Settings, redis: Redis | None) -> None:
    """Turn sign-in on when the OAuth client and a session secret are configured."""
    if not settings.sign_in_enabled or redis is None:
        log.warning(
            "pages are off: set GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET and SESSION_SECRET "
            "to let people sign in with GitHub"
        )
        return
    assert settings.session_secret is not None and settings.github_client_secret is not None
    secret = settings.session_secret.get_secret_value()
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="stoplight_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    oauth = OAuth(app)
    oauth.register(
        PROVIDER,
        client_id=settings.github_client_id,
        client_secret=settings.github_client_secret.get_secret_value(),
        authorize_url=f"{settings.github_web_url}/login/oauth/authorize",
        access_token_url=f"{settings.github_web_url}/login/oauth/access_token",
        api_base_url=f"{settings.github_api_url}/",
        client_kwargs={"token_endpoint_auth_method": "client_secret_post", "timeout": 10},
    )
    app.extensions["stoplight.sessions"] = Sessions(redis, secret)
    app.register_blueprint(bp)


def enabled() -> bool:
    return "stoplight.sessions" in current_app.extensions


def current_user() -> User | None:
    """The signed-in person of this request, or None (also when sign-in is off)."""
    if "user" not in g:
        session_id = session.get("sid") if enabled() else None
        g.user = _sessions().user(session_id) if isinstance(session_id, str) else None
    user: User | None = g.user
    return user


def forget_current_user() -> None:
    """GitHub no longer honours the person's token: end the session."""
    session_id = session.pop("sid", None)
    if isinstance(session_id, str):
        _sessions().close(session_id)
    g.user = None


def _sessions() -> Sessions:
    sessions: Sessions = current_app.extensions["stoplight.sessions"]
    return sessions


def _client() -> Any:
    return current_app.extensions["authlib.integrations.flask_client"].create_client(PROVIDER)


def return_token(path: str) -> str:
    """Where to go after sign-in, as the sign-in link carries it: opaque, so a page offering
    sign-in never repeats a name from the address it was asked for."""
    return base64.urlsafe_b64encode(path.encode()).decode().rstrip("=")


def return_path(token: str | None) -> str:
    """The page a `return_token` names, when it is a path on this site; else "/"."""
    try:
        target = base64.urlsafe_b64decode((token or "") + "==").decode()
    except (ValueError, UnicodeDecodeError):
        return "/"
    return local_path(target)


def local_path(target: str) -> str:
    """`target` when it is a path on this site, else "/": sign-in never redirects elsewhere.

    Browsers read a backslash as a slash and drop tabs and line breaks from an address, so
    `/\\evil.example` and `/\t/evil.example` would both leave the site: neither is a path."""
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target)
    ):
        return "/"
    return target


@bp.get("/auth/login")
def login() -> Response:
    session["next"] = return_path(request.args.get("next"))
    settings: Settings = current_app.extensions["stoplight"].settings
    redirect_uri = f"{settings.base_url}{url_for('auth.callback')}"
    response: Response = _client().authorize_redirect(redirect_uri)
    return response


@bp.get("/auth/callback")
def callback() -> Response:
    client = _client()
    try:
        token = client.authorize_access_token()
        profile = client.get("user", token=token)
    except OAuthError as error:
        log.info("sign-in refused: %s", error.error)
        abort(400, "Sign-in failed: start again from the sign-in button.")
    if profile.status_code != 200:
        log.warning("sign-in: GitHub answered %s for the user", profile.status_code)
        abort(502, "GitHub did not say who you are. Try again.")
    identity = profile.json()
    user = User(id=int(identity["id"]), login=str(identity["login"]), token=token["access_token"])
    target = local_path(session.pop("next", "/"))
    session.clear()  # nothing from before sign-in carries over into the signed-in session
    session["sid"] = _sessions().open(user)
    session.permanent = True
    log.info("%s signed in", user.login)
    return redirect(target)


@bp.post("/auth/logout")
def logout() -> Response:
    user = current_user()
    if user is not None:
        _revoke(user)
    forget_current_user()
    session.clear()
    return redirect("/")


def _revoke(user: User) -> None:
    """Tell GitHub to drop the person's token: signed out here, it opens nothing elsewhere.
    Signing out goes on if GitHub is away; the token then lapses within its eight hours."""
    settings: Settings = current_app.extensions["stoplight"].settings
    assert settings.github_client_id is not None and settings.github_client_secret is not None
    client_id = settings.github_client_id
    try:
        answer = requests.delete(
            f"{settings.github_api_url}/applications/{client_id}/token",
            auth=(client_id, settings.github_client_secret.get_secret_value()),
            json={"access_token": user.token},
            headers={"Accept": "application/vnd.github+json"},
            timeout=5,
        )
    except requests.RequestException as error:
        log.warning("sign-out: GitHub could not be asked to revoke the token: %s", error)
        return
    if answer.status_code not in (204, 404):  # 404: GitHub no longer knows the token
        log.warning("sign-out: GitHub answered %s to revoking the token", answer.status_code)
