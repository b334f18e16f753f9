"""Setup mode: registers the app once, for the browser that started it, then closes."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
import responses
from dotenv import dotenv_values
from flask.testing import FlaskClient
from redis import Redis

from stoplight.settings import Settings
from stoplight.state import keys
from stoplight.web import create_app
from stoplight.web.setup import STATE_COOKIE, AlreadyRegistered, setup_link, write_env
from tests.conftest import API

CONVERSION = re.compile(rf"{re.escape(API)}/app-manifests/\w+/conversions")
REGISTERED = {
    "id": 777,
    "slug": "stoplight-acme",
    "name": "Stoplight Acme",
    "html_url": "https://github.com/apps/stoplight-acme",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
    "webhook_secret": "hook-secret",
    "client_id": "Iv1.abc",
    "client_secret": "client-secret",
}


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / ".env"


@pytest.fixture
def unregistered(redis_server, env_file: Path) -> Settings:
    return Settings(
        _env_file=None, REDIS_URL=redis_server.url, BASE_URL="https://stoplight.example"
    )


@pytest.fixture
def github():
    """GitHub with nothing routed: a request that leaves fails the test, unless one is added."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def client_for(settings: Settings, redis: Redis) -> FlaskClient:
    return create_app(settings, redis).test_client()


def setup_path(settings: Settings, redis: Redis, query: str = "") -> str:
    """/setup with the token of the link the server logs."""
    link = setup_link(settings, redis)
    return link.removeprefix(settings.base_url) + query


def handed_out_state(client: FlaskClient, settings: Settings, redis: Redis) -> str:
    page = client.get(setup_path(settings, redis))
    assert page.status_code == 200
    found = re.search(r'action="[^"]+\?state=([\w-]+)"', page.text)
    assert found is not None
    return found[1]


def test_setup_page_posts_the_manifest_with_a_state_and_the_sign_in_callback(unregistered, redis):
    page = client_for(unregistered, redis).get(setup_path(unregistered, redis, "&org=acme"))
    assert page.status_code == 200
    assert 'action="https://github.com/organizations/acme/settings/apps/new?state=' in page.text
    raw = re.search(r'name="manifest" value="([^"]+)"', page.text)
    assert raw is not None
    manifest = json.loads(raw[1].replace("&#34;", '"'))
    assert manifest["name"] == "Stoplight"
    assert manifest["redirect_url"] == "https://stoplight.example/setup/callback"
    assert manifest["callback_urls"] == ["https://stoplight.example/auth/callback"]
    assert manifest["hook_attributes"]["url"] == "https://stoplight.example/api/github/webhooks"
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith(f"{STATE_COOKIE}=") and "HttpOnly" in cookie and "Secure" in cookie


def test_behind_nat_github_posts_to_the_proxy_channel(unregistered, redis):
    behind_nat = unregistered.model_copy(
        update={"webhook_proxy_url": "https://smee.example/abc", "base_url_setting": None}
    )
    page = client_for(behind_nat, redis).get(setup_path(behind_nat, redis))
    assert "https://smee.example/abc" in page.text
    assert "which GitHub cannot reach" not in page.text


def test_registration_writes_every_credential_once_then_setup_closes(
    unregistered, redis, github, env_file
):
    github.add(responses.POST, CONVERSION, json=REGISTERED, status=201)
    client = client_for(unregistered, redis)
    state = handed_out_state(client, unregistered, redis)

    page = client.get(f"/setup/callback?code=abc123&state={state}")

    assert page.status_code == 200
    assert 'href="https://github.com/apps/stoplight-acme/installations/new"' in page.text
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = dotenv_values(env_file)
    assert written["APP_ID"] == "777"
    assert written["WEBHOOK_SECRET"] == "hook-secret"
    assert written["GITHUB_CLIENT_ID"] == "Iv1.abc"
    assert written["GITHUB_CLIENT_SECRET"] == "client-secret"
    assert len(written["SESSION_SECRET"] or "") >= 32
    settings = Settings(_env_file=env_file)
    assert settings.configured and settings.sign_in_enabled
    assert settings.private_key is not None
    assert settings.private_key.get_secret_value() == REGISTERED["pem"].strip()
    # The same process, not restarted yet: the routes are gone, GitHub is not asked again.
    before = env_file.read_bytes()
    assert client.get(setup_path(unregistered, redis)).status_code == 404
    assert client.get(f"/setup/callback?code=def456&state={state}").status_code == 404
    assert len(github.calls) == 1
    assert env_file.read_bytes() == before


@pytest.mark.parametrize("query", ["", "?token=guessed", "?token="])
def test_setup_opens_only_with_the_link_from_the_log(unregistered, redis, query, caplog):
    client = client_for(unregistered, redis)
    (logged,) = [r.getMessage() for r in caplog.records if "/setup?token=" in r.getMessage()]
    assert setup_link(unregistered, redis) in logged
    assert client.get(f"/setup{query}").status_code == 404
    assert redis.keys("stoplight:setup:state:*") == []  # no state handed out
    assert "not configured" in client.get("/").text


def test_configured_app_has_no_setup_routes_and_asks_github_nothing(
    settings, redis, github, env_file
):
    client = client_for(settings, redis)
    assert client.get("/setup").status_code == 404
    assert client.get("/setup/callback?code=abc123&state=anything").status_code == 404
    assert len(github.calls) == 0
    assert not env_file.exists()


def test_credentials_in_env_file_close_setup_even_before_a_restart(
    unregistered, redis, github, env_file
):
    env_file.write_text("APP_ID=5\n")
    client = client_for(unregistered, redis)
    assert client.get("/setup").status_code == 404
    assert client.get("/setup/callback?code=abc123&state=x").status_code == 404
    assert len(github.calls) == 0


@pytest.mark.parametrize("tamper", ["other state", "no cookie", "no state"])
def test_a_code_from_someone_elses_registration_is_refused(
    unregistered, redis, github, env_file, tamper
):
    client = client_for(unregistered, redis)
    state = handed_out_state(client, unregistered, redis)
    if tamper == "no cookie":
        client.delete_cookie(STATE_COOKIE, path="/setup")
    query = {"other state": "someone-elses", "no cookie": state, "no state": ""}[tamper]

    page = client.get(f"/setup/callback?code=abc123&state={query}")

    assert page.status_code == 403
    assert len(github.calls) == 0
    assert not env_file.exists()


def test_a_state_is_used_once(unregistered, redis, github, env_file):
    github.add(responses.POST, CONVERSION, json={"message": "Not Found"}, status=404)
    client = client_for(unregistered, redis)
    state = handed_out_state(client, unregistered, redis)
    assert client.get(f"/setup/callback?code=abc123&state={state}").status_code == 502
    assert client.get(f"/setup/callback?code=abc123&state={state}").status_code == 403
    assert len(github.calls) == 1
    assert not env_file.exists()


def test_other_settings_in_env_file_are_kept_and_the_file_made_private(env_file):
    env_file.write_text("BASE_URL=https://stoplight.example\n")
    env_file.chmod(0o644)
    write_env(env_file, REGISTERED)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = dotenv_values(env_file)
    assert written["BASE_URL"] == "https://stoplight.example"
    assert written["APP_ID"] == "777"


def test_a_file_holding_credentials_is_never_overwritten(env_file):
    env_file.write_text("WEBHOOK_SECRET=the-real-one\n")
    with pytest.raises(AlreadyRegistered):
        write_env(env_file, REGISTERED)
    assert env_file.read_text() == "WEBHOOK_SECRET=the-real-one\n"


def test_the_setup_link_dies_with_setup(unregistered, redis, github, env_file):
    github.add(responses.POST, CONVERSION, json=REGISTERED, status=201)
    client = client_for(unregistered, redis)
    link = setup_path(unregistered, redis)
    state = handed_out_state(client, unregistered, redis)

    assert client.get(f"/setup/callback?code=abc123&state={state}").status_code == 200

    assert redis.get(keys.SETUP_TOKEN) is None
    env_file.unlink()  # credentials lost or moved: setup opens again, but not to the old link
    assert client_for(unregistered, redis).get(link).status_code == 404


def test_the_organisation_named_on_setup_cannot_change_the_address_at_github(
    unregistered, redis, env_file
):
    page = client_for(unregistered, redis).get(setup_path(unregistered, redis, "&org=../../x?y"))

    assert page.status_code == 200
    target = "https://github.com/organizations/..%2F..%2Fx%3Fy/settings/apps/new?"
    assert f'action="{target}' in page.text
