"""`slack-app.yml`, the Slack app manifest: its URLs are the app's Slack routes, its scopes
what the app uses."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import SecretStr

from stoplight.web import create_app

MANIFEST = Path(__file__).resolve().parents[1] / "slack-app.yml"


def test_the_manifest_names_the_apps_slack_routes_and_scopes(settings, redis, clock):
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == ["chat:write", "commands"]
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/stoplight" and command["usage_hint"]
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    urls = [command["url"], interactivity["request_url"]]
    assert all(urlsplit(url)[:2] == ("https", "YOUR_HOST") for url in urls)

    signed = settings.model_copy(update={"slack_signing_secret": SecretStr("secret")})
    routes = {
        rule.rule
        for rule in create_app(signed, redis, clock).url_map.iter_rules()
        if "POST" in rule.methods
    }
    assert {urlsplit(url).path for url in urls} <= routes
