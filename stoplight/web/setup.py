"""Setup mode: register the GitHub App from app.yml through GitHub's manifest flow.

GET /setup offers a button that posts the manifest to GitHub; GitHub sends the browser back
to /setup/callback with a code, which is exchanged for the app's id, key and webhook secret.
Those are written to .env; the next start of `stoplight serve` picks them up.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import requests
import yaml
from flask import Blueprint, abort, current_app, render_template, request

from stoplight.settings import Settings

log = logging.getLogger(__name__)
bp = Blueprint("setup", __name__)

ENV_FILE = Path(".env")


def manifest_path() -> Path:
    local = Path.cwd() / "app.yml"
    return local if local.exists() else Path(__file__).resolve().parents[2] / "app.yml"


def manifest(settings: Settings) -> dict[str, object]:
    data = yaml.safe_load(manifest_path().read_text())
    data["url"] = settings.base_url
    data["hook_attributes"] = {"url": settings.base_url + settings.webhook_path, "active": True}
    data["redirect_url"] = f"{settings.base_url}/setup/callback"
    return data


@bp.get("/setup")
def start() -> str:
    settings: Settings = current_app.extensions["stoplight"].settings
    org = request.args.get("org", "").strip()
    target = f"{settings.github_web_url}/settings/apps/new"
    if org:
        target = f"{settings.github_web_url}/organizations/{org}/settings/apps/new"
    return render_template(
        "setup.html",
        settings=settings,
        target=target,
        manifest=json.dumps(manifest(settings)),
        local=settings.base_url.startswith(("http://127.", "http://localhost")),
    )


@bp.get("/setup/callback")
def callback() -> str:
    settings: Settings = current_app.extensions["stoplight"].settings
    code = request.args.get("code", "")
    if not code.isalnum():
        abort(400, "GitHub's redirect carries no valid code")
    response = requests.post(
        f"{settings.github_api_url}/app-manifests/{code}/conversions",
        headers={"Accept": "application/vnd.github+json"},
        timeout=10,
    )
    if response.status_code != 201:
        log.error("manifest conversion failed: HTTP %s", response.status_code)
        abort(502, f"GitHub did not convert the manifest (HTTP {response.status_code})")
    app = response.json()
    write_env(ENV_FILE, app["id"], app["pem"], app["webhook_secret"])
    log.info("GitHub App %s registered; credentials written to %s", app.get("slug"), ENV_FILE)
    return render_template("registered.html", app=app)


def write_env(path: Path, app_id: int, pem: str, webhook_secret: str) -> None:
    lines = [
        f"APP_ID={app_id}",
        'PRIVATE_KEY="{}"'.format(pem.strip().replace("\n", "\\n")),
        f"WEBHOOK_SECRET={webhook_secret}",
    ]
    kept = []
    if path.exists():
        names = ("APP_ID=", "PRIVATE_KEY=", "WEBHOOK_SECRET=")
        kept = [line for line in path.read_text().splitlines() if not line.startswith(names)]
    path.write_text("\n".join([*kept, *lines]) + "\n")
    path.chmod(0o600)
