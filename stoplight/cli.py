"""The `stoplight` command."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
from pydantic import ValidationError
from waitress.server import create_server

from stoplight import runtime
from stoplight.clock import SystemClock
from stoplight.redeliver import parse_duration, redeliver_failed
from stoplight.redis_server import EmbeddedRedis
from stoplight.settings import Settings
from stoplight.sync import sync_all as run_sync
from stoplight.web import create_app
from stoplight.worker import run_worker

log = logging.getLogger("stoplight")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{issue['loc'][0] if issue['loc'] else 'settings'}: {issue['msg']}"
            for issue in error.errors()
        )
        raise click.ClickException(f"invalid environment: {problems}") from None


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """The configured Redis, or an embedded one under DATA_DIR for as long as the block runs."""
    if settings.redis_url:
        yield settings
        return
    with EmbeddedRedis(settings.data_dir / "redis") as server:
        log.info("REDIS_URL unset: embedded Redis at %s", server.url)
        # Child processes and later Settings() reads see the same server.
        os.environ["REDIS_URL"] = server.url
        yield settings.model_copy(update={"redis_url": server.url})


@click.group()
@click.version_option(package_name="stoplight")
def main() -> None:
    """Stoplight: a green, yellow or red light for each team's code-review queue."""


@main.command()
def serve() -> None:
    """Web server, worker and scheduler in one process."""
    settings = load_settings()
    configure_logging(settings)
    with redis_for(settings) as settings:
        rt = runtime.Runtime.create(settings)
        if not settings.configured:
            log.warning(
                "not configured: open %s/setup to register the GitHub App", settings.base_url
            )
        server = create_server(
            create_app(settings, rt.redis), host=settings.host, port=settings.port, threads=8
        )
        web = threading.Thread(target=server.run, name="web", daemon=True)
        web.start()
        log.info("listening on http://%s:%s%s", settings.host, settings.port, settings.webhook_path)
        try:
            with runtime.installed(rt):
                run_worker(rt)
        finally:
            server.close()


@main.command()
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
def worker(burst: bool) -> None:
    """A worker (with scheduler) only, for scaling out against a shared REDIS_URL."""
    settings = load_settings()
    configure_logging(settings)
    if not settings.redis_url:
        raise click.ClickException(
            "stoplight worker needs REDIS_URL; `stoplight serve` runs everything in one process"
        )
    rt = runtime.Runtime.create(settings)
    with runtime.installed(rt):
        run_worker(rt, burst=burst)


@main.command()
def sync() -> None:
    """Rebuild the queue state of every installation from the GitHub API."""
    settings = load_settings()
    configure_logging(settings)
    if not settings.redis_url:
        raise click.ClickException("stoplight sync needs REDIS_URL (the Redis the app uses)")
    rt = runtime.Runtime.create(settings)
    if rt.github is None:
        raise click.ClickException("stoplight sync needs APP_ID and PRIVATE_KEY")
    with runtime.installed(rt):
        report = run_sync(rt)
    if report is None:
        raise click.ClickException("another sync is running; try again when it ends")
    click.echo(
        f"synced {report.installations} installations, {report.repositories} repositories, "
        f"{report.pulls} open PRs ({report.closed} found closed)"
    )


@main.command()
@click.option("--since", default="2h", show_default=True, help="How far back to look: 30m, 2h, 3d.")
def redeliver(since: str) -> None:
    """Ask GitHub to redeliver the app's failed webhook deliveries."""
    settings = load_settings()
    configure_logging(settings)
    try:
        window = parse_duration(since)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None
    if settings.app_id is None or settings.private_key is None:
        raise click.ClickException("stoplight redeliver needs APP_ID and PRIVATE_KEY")
    now = SystemClock().now()
    result = redeliver_failed(settings, now - window, now)
    click.echo(f"{result.checked} deliveries since {since} ago; {len(result.failed)} redelivered")
