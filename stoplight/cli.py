"""The `stoplight` command."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from typing import Any, BinaryIO
from urllib.parse import quote

import click
from pydantic import ValidationError
from redis import Redis, RedisError
from rich.console import Console

from stoplight import logs
from stoplight.backtest.fetch import github_history, installation_repositories
from stoplight.backtest.history import HistoryError, Recorded, read_recorded
from stoplight.backtest.latest import save_latest
from stoplight.backtest.render import render as render_backtest
from stoplight.backtest.report import run_backtest
from stoplight.backtest.suggest import Targets
from stoplight.clients import slack
from stoplight.clients.github import GitHubApp, InstallationClient
from stoplight.config import schema
from stoplight.config.repos import ORG_CONFIG_REPO
from stoplight.core.clock import SystemClock
from stoplight.events import intake
from stoplight.ops import gate as gate_ops
from stoplight.ops import terminal
from stoplight.ops.proxy import WebhookProxy
from stoplight.ops.redis_server import EmbeddedRedis
from stoplight.ops.web_server import PortTaken, WebServerProcess
from stoplight.pipeline import fanout, runtime, socket_mode
from stoplight.pipeline.redeliver import redeliver_failed
from stoplight.pipeline.sync import sync_all as run_sync
from stoplight.pipeline.worker import run_worker
from stoplight.settings import Settings
from stoplight.state.connection import connect
from stoplight.state.signal_tokens import TokenStore, every_token, revoke_anywhere
from stoplight.state.upgrade import upgrade_keys, upgrade_keys_once
from stoplight.transport import dead_letters
from stoplight.transport.lanes import Lanes

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
    logs.configure(settings)


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


def log_slack_delivery(settings: Settings) -> None:
    """Say once, at start-up, how Slack notices go out, or that they do not."""
    level = logging.INFO if slack.mode(settings) else logging.WARNING
    log.log(level, slack.describe(settings))


@contextmanager
def redis_to_read(settings: Settings) -> Iterator[Redis]:
    """REDIS_URL, or the embedded server (the one a running `stoplight serve` keeps)."""
    with redis_for(settings) as settings, connect(str(settings.redis_url)) as redis:
        yield redis


@contextmanager
def lanes_to_read(settings: Settings) -> Iterator[Lanes]:
    """The job lanes: on REDIS_QUEUE_URL, else where the state is."""
    with redis_for(settings) as settings:
        url = settings.redis_queue_url or str(settings.redis_url)
        with connect(url) as queue:
            yield Lanes.on(queue)


@click.group()
@click.version_option(package_name="stoplight")
def main() -> None:
    """Stoplight: a green, yellow or red light for each team's code-review queue."""


def since_option(since: str) -> timedelta:
    """`--since` as a duration (30m, 2h, 3d), or the option's error."""
    try:
        return schema.parse_duration(since)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None


@main.command()
def serve() -> None:
    """Web server (granian, as deployed), worker and scheduler in one command."""
    settings = load_settings()
    configure_logging(settings)
    with redis_for(settings) as settings:
        rt = runtime.Runtime.create(settings)
        if upgrade_keys_once(rt.redis):
            fanout.resume_owed_effects(rt)
        log_slack_delivery(settings)
        try:
            web = WebServerProcess(settings.host, settings.port).start()
        except PortTaken as error:
            raise click.ClickException(str(error)) from None
        log.info("listening on http://%s:%s%s", settings.host, settings.port, settings.webhook_path)
        if settings.webhook_proxy_url:
            WebhookProxy(settings.webhook_proxy_url, web.url + settings.webhook_path).start()
        web_ended = threading.Event()

        def stop_serving(code: int) -> None:
            log.error("the web server exited (%s): stopping", code)
            web_ended.set()
            signal.raise_signal(signal.SIGTERM)  # the worker stops as a service manager asks

        web.watch(stop_serving)
        try:
            with runtime.installed(rt), socket_mode.opened(rt):
                run_worker(rt)
        finally:
            web.stop()
        if web_ended.is_set():
            raise click.ClickException("the web server stopped unexpectedly")


@main.command()
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
@click.option(
    "--max-idle-time",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop once idle for this many seconds (no delivery, no job).",
)
def worker(burst: bool, max_idle_time: float | None) -> None:
    """A worker (with scheduler) only, for scaling out against a shared REDIS_URL."""
    settings = load_settings()
    configure_logging(settings)
    if not settings.redis_url:
        raise click.ClickException(
            "stoplight worker needs REDIS_URL; `stoplight serve` runs everything in one command"
        )
    rt = runtime.Runtime.create(settings)
    if upgrade_keys_once(rt.redis):
        fanout.resume_owed_effects(rt)
    log_slack_delivery(settings)
    # A burst worker is gone once the queue is empty: envelopes go to the workers that stay.
    interactions = nullcontext() if burst else socket_mode.opened(rt)
    with runtime.installed(rt), interactions:
        run_worker(rt, burst=burst, max_idle_seconds=max_idle_time)


@main.command()
def migrate() -> None:
    """Rename the keys an earlier version stored to this version's names and queue the
    statuses and labels still owed (run once on upgrade; workers also do it at start-up)."""
    settings = load_settings()
    configure_logging(settings)
    with redis_for(settings) as settings:
        rt = runtime.Runtime.create(settings)
        upgrade = upgrade_keys(rt.redis)
        resumed = fanout.resume_owed_effects(rt)
    click.echo(f"{upgrade.renamed} keys renamed")
    if resumed:
        click.echo(f"{resumed} teams' statuses and labels owed: their passes are queued")
    if upgrade.left:
        click.echo(
            f"{upgrade.left} keys of the earlier version left as they were: their new names "
            "were written since (by this version); `stoplight sync` rebuilds the queues"
        )


@main.command()
@click.argument("file", type=click.File("rb"))
def replay(file: BinaryIO) -> None:
    """Feed recorded deliveries (JSON lines) through the pipeline.

    Each line is {"event": NAME, "payload": {...}} with an optional "delivery" id; lines
    without one get a fresh id. The deliveries are processed before the command returns.
    """
    settings = load_settings()
    configure_logging(settings)
    with redis_for(settings) as settings:
        rt = runtime.Runtime.create(settings)
        queued = duplicates = 0
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            delivery_id, event, payload, body = _recorded_delivery(line, number)
            outcome = intake.accept(
                rt.lanes,
                delivery_id,
                event,
                body,
                installation_id=intake.installation_of(payload),
                now=rt.clock.now(),
            )
            queued += outcome is intake.Outcome.QUEUED
            duplicates += outcome is intake.Outcome.DUPLICATE
        with runtime.installed(rt):
            run_worker(rt, burst=True)
        click.echo(f"{queued} deliveries processed, {duplicates} already seen")


def _recorded_delivery(line: bytes, number: int) -> tuple[str, str, dict[str, Any], bytes]:
    try:
        record = json.loads(line)
        event, payload = record["event"], record["payload"]
    except (ValueError, KeyError, TypeError):
        raise click.ClickException(
            f'line {number}: expected {{"event": ..., "payload": {{...}}}}'
        ) from None
    delivery_id = str(record.get("delivery") or uuid.uuid4())
    if not isinstance(event, str) or not isinstance(payload, dict):
        raise click.ClickException(f"line {number}: event must be a name, payload an object")
    if not intake.valid_delivery_id(delivery_id):
        raise click.ClickException(f"line {number}: {delivery_id!r} is not a delivery id")
    return delivery_id, event, payload, json.dumps(payload).encode()


@main.command()
@click.option("--installation", "installation_id", type=int, help="Read this installation's PRs.")
@click.option("--repo", "repos", multiple=True, help="owner/name; repeat for more (default: all).")
@click.option("--since", default="30d", show_default=True, help="The window: 14d, 30d, 12h.")
@click.option(
    "--from",
    "recorded",
    type=click.File("rb"),
    help="Recorded deliveries (the replay format) instead of GitHub.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="A stoplight.yml to try, as the org-wide file (default: the repositories' own).",
)
@click.option("--suggest", is_flag=True, help="Propose thresholds from the team's own numbers.")
@click.option("--target-yellow", default=25.0, show_default=True, type=click.FloatRange(0, 100),
              help="Percent of working time in yellow that --suggest aims at.")  # fmt: skip
@click.option("--target-red", default=5.0, show_default=True, type=click.FloatRange(0, 100),
              help="Percent of working time in red that --suggest aims at.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def backtest(
    installation_id: int | None,
    repos: tuple[str, ...],
    since: str,
    recorded: BinaryIO | None,
    config_file: str | None,
    suggest: bool,
    target_yellow: float,
    target_red: float,
    as_json: bool,
) -> None:
    """Replay a team's history through the pipeline and show what its light would have done."""
    settings = load_settings()
    configure_logging(settings)
    window = since_option(since)  # a year at most, what the scratch history keeps
    config_text = _backtest_config(config_file)
    targets = Targets(target_yellow / 100, target_red / 100) if suggest else None
    if target_yellow + target_red >= 100:
        raise click.BadParameter(
            "yellow and red together must stay below 100", param_hint="--target-red"
        )
    err = Console(stderr=True)
    with redis_for(settings) as settings:
        if recorded is not None:
            try:
                deliveries = read_recorded(recorded)
            except HistoryError as error:
                raise click.ClickException(str(error)) from None
            until, source, org_file = None, None, None
        else:
            deliveries, source, org_file = _github_deliveries(
                settings, installation_id, repos, window, None if as_json else err
            )
            until = SystemClock().now()
        if not deliveries:
            raise click.ClickException("no pull requests in the window: nothing to replay")
        with err.status("replaying", spinner="dots") if not as_json else nullcontext():
            result = run_backtest(
                deliveries,
                window=window,
                until=until,
                config=config_text,
                source=source,
                org_file=org_file,
                targets=targets,
            )
        with connect(str(settings.redis_url)) as redis:
            for team in result.teams:
                save_latest(redis, team.summary.installation_id, team.summary.key, team.as_json())
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        render_backtest(Console(), result.teams, result.snippet)


def _backtest_config(path: str | None) -> str | None:
    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    loaded = schema.load(text, org_wide=True)
    if isinstance(loaded, schema.Invalid):
        raise click.ClickException(f"{path}: {loaded.message}")
    return text


def _github_deliveries(
    settings: Settings,
    installation_id: int | None,
    repos: tuple[str, ...],
    window: timedelta,
    console: Console | None,
) -> tuple[list[Recorded], InstallationClient, str | None]:
    """The history read from GitHub, the client that reads configurations, and the org-wide
    configuration file (the base of a suggestion)."""
    if installation_id is None and not repos:
        raise click.UsageError("give --installation ID or --repo owner/name, or --from FILE")
    if settings.app_id is None or settings.private_key is None:
        raise click.ClickException("a GitHub-backed backtest needs APP_ID and PRIVATE_KEY")
    rt = runtime.Runtime.create(settings)
    assert rt.github is not None
    if installation_id is None:
        installation_id = _installation_of(rt.github, repos)
    client = rt.github.installation(installation_id)
    chosen = list(repos) or installation_repositories(client)
    cutoff = rt.clock.now() - window
    deliveries, requests = github_history(
        client, chosen, cutoff, settings.data_dir / "backtest", console=console
    )
    log.info("read %d repositories in %d GraphQL requests", len(chosen), requests)
    owner = chosen[0].partition("/")[0] if chosen else ""
    org_file = client.read_file(f"{owner}/{ORG_CONFIG_REPO}", schema.CONFIG_PATH)
    return deliveries, client, org_file


def _installation_of(app: GitHubApp, repos: tuple[str, ...]) -> int:
    """The one installation that has every repository."""
    integration = app.integration()
    found = {integration.get_repo_installation(*repo.split("/", 1)).id for repo in repos}
    if len(found) != 1:
        raise click.ClickException("the repositories are in several installations: one at a time")
    return found.pop()


@main.command("check-config")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def check_config(file: str) -> None:
    """Validate a stoplight.yml; exit 1 with a message naming the bad key."""
    loaded = _config_file(file)
    if isinstance(loaded, schema.Invalid):
        click.echo(loaded.message, err=True)
        sys.exit(1)
    click.echo(schema.describe(loaded))


def _config_file(file: str) -> schema.Config | schema.Invalid:
    """The file taken as the app takes it from GitHub: its size first, then UTF-8, then YAML."""
    with open(file, "rb") as handle:
        too_large = schema.size_problem(os.fstat(handle.fileno()).st_size)
        data = b"" if too_large else handle.read()
    if too_large:
        return schema.Invalid((schema.ConfigError("", too_large),))
    try:
        return schema.load(data.decode("utf-8"))
    except UnicodeDecodeError:
        return schema.Invalid((schema.ConfigError("", "the file is not UTF-8 text"),))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def status(as_json: bool) -> None:
    """Each team's light and queue, in the terminal."""
    settings = load_settings()
    configure_logging(settings)
    with redis_to_read(settings) as redis:
        views = terminal.team_views(redis, SystemClock().now())
    if as_json:
        click.echo(json.dumps(terminal.as_json(views), indent=2))
    else:
        terminal.render(Console(), views)


@main.command()
def sync() -> None:
    """Rebuild the queue state of every installation from the GitHub API."""
    settings = load_settings()
    configure_logging(settings)
    if settings.app_id is None or settings.private_key is None:
        raise click.ClickException("stoplight sync needs APP_ID and PRIVATE_KEY")
    with redis_for(settings) as settings:
        rt = runtime.Runtime.create(settings)
        with runtime.installed(rt):
            report = run_sync(rt)
    if report is None:
        raise click.ClickException("another sync is running; try again when it ends")
    click.echo(
        f"synced {report.installations} installations, {report.repositories} repositories, "
        f"{report.pulls} open PRs ({report.closed} found closed)"
    )


@main.command()
@click.option("--retry", "retry_id", metavar="ID", help="Queue this delivery again, tries reset.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def deadletters(retry_id: str | None, as_json: bool) -> None:
    """Deliveries set aside after failing 3 times (the newest 1000), with the reason; or put
    one back on its lane with --retry."""
    settings = load_settings()
    configure_logging(settings)
    with lanes_to_read(settings) as lanes:
        if retry_id is not None:
            letter = dead_letters.retry(lanes, retry_id, SystemClock().now())
            if letter is None:
                raise click.ClickException(f"no delivery {retry_id!r} is set aside")
            click.echo(f"delivery {retry_id} ({letter.event}) is queued again")
            return
        letters = dead_letters.listed(lanes.redis)
    if as_json:
        click.echo(json.dumps([letter.as_json() for letter in letters], indent=2))
    elif letters:
        click.echo(dead_letters.table(letters))
    else:
        click.echo("No deliveries are set aside.")


@main.command()
@click.option("--since", default="2h", show_default=True, help="How far back to look: 30m, 2h, 3d.")
def redeliver(since: str) -> None:
    """Ask GitHub to redeliver the app's failed webhook deliveries."""
    settings = load_settings()
    configure_logging(settings)
    window = since_option(since)
    if settings.app_id is None or settings.private_key is None:
        raise click.ClickException("stoplight redeliver needs APP_ID and PRIVATE_KEY")
    now = SystemClock().now()
    result = redeliver_failed(settings, now - window, now)
    click.echo(f"{result.checked} deliveries since {since} ago; {len(result.failed)} redelivered")


@main.group()
def token() -> None:
    """Bearer tokens for GET /api/signal/<installation>/<team>, one team each."""


@token.command("create")
@click.option("--team", required=True, help="The team key, as the team page's URL has it.")
@click.option("--installation", "installation_id", type=int, help="Where several have the team.")
@click.option("--name", default="", help="What the token is for, shown by `token list`.")
def token_create(team: str, installation_id: int | None, name: str) -> None:
    """Make a token and print it, once: only its hash is kept."""
    settings = load_settings()
    with redis_to_read(settings) as redis:
        chosen = _team_installation(redis, team, installation_id, click.ClickException)
        text, made = TokenStore(redis, chosen).create(team, name, SystemClock().now())
    click.echo(text)
    signal_url = f"{settings.base_url}/api/signal/{chosen}/{quote(team, safe='')}"
    click.echo(f"token {made.id} for {signal_url}: shown once, keep it as a secret", err=True)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def token_list(as_json: bool) -> None:
    """Every token's id, name, team, creation and last use (never the token)."""
    with redis_to_read(load_settings()) as redis:
        tokens = every_token(redis)
    if as_json:
        click.echo(json.dumps([each.as_json() for each in tokens], indent=2))
        return
    for each in tokens:
        used = each.last_used.isoformat(timespec="seconds") if each.last_used else "never used"
        click.echo(
            f"{each.id}  {each.name or '-'}  {each.installation_id}/{each.team}  "
            f"created {each.created.isoformat(timespec='seconds')}  {used}"
        )
    if not tokens:
        click.echo("No tokens.")


@token.command("revoke")
@click.argument("token_id", metavar="ID")
def token_revoke(token_id: str) -> None:
    """Revoke the token with this id (from `token list`): it is refused from now on."""
    with redis_to_read(load_settings()) as redis:
        revoked = revoke_anywhere(redis, token_id)
    if revoked is None:
        raise click.ClickException(f"no token {token_id!r}")
    click.echo(f"token {revoked.id} ({revoked.installation_id}/{revoked.team}) is revoked")


class GateFailure(click.ClickException):
    exit_code = 2  # 1 means "held"


@main.command()
@click.option("--team", required=True, help="The team key, as the team page's URL has it.")
@click.option("--agent", is_flag=True, help="Ask for an agent's PR (held from yellow).")
@click.option("--person", help="Count this login's waiting PRs against wip_per_author.")
@click.option("--wait", "wait_text", default="0s", help="Ask again until it enters: 30m, 2h.")
@click.option("--url", envvar="STOPLIGHT_URL", help="A running Stoplight's address.")
@click.option("--token", "bearer", envvar="STOPLIGHT_TOKEN", help="Its token (with --url).")
@click.option("--installation", "installation_id", type=int, envvar="STOPLIGHT_INSTALLATION",
              help="The team's installation (needed with --url).")  # fmt: skip
def gate(
    team: str,
    agent: bool,
    person: str | None,
    wait_text: str,
    url: str | None,
    bearer: str | None,
    installation_id: int | None,
) -> None:
    """Exit 0 when a new PR would enter review now, 1 when it would be held, 2 on errors."""
    try:
        wait = schema.parse_duration(wait_text)
    except ValueError as error:
        raise GateFailure(f"--wait: {error}") from None
    clock = SystemClock()

    def run(ask: gate_ops.Ask) -> gate_ops.Answer:
        note = functools.partial(click.echo, err=True)
        try:
            return gate_ops.gate(
                ask, agent=agent, wait=wait, clock=clock, sleep=time.sleep, note=note
            )
        except gate_ops.GateError as error:
            raise GateFailure(str(error)) from None

    if url is not None:
        if bearer is None or installation_id is None:
            raise GateFailure("with --url, give --token and --installation (or their env)")
        answer = run(gate_ops.remote_signal(url, installation_id, team, bearer, person))
    else:
        try:
            with redis_to_read(load_settings()) as redis:
                chosen = _team_installation(redis, team, installation_id, GateFailure)
                answer = run(gate_ops.local_signal(redis, chosen, team, clock, person))
        except RedisError as error:
            raise GateFailure(f"cannot read the state: {error}") from None
    click.echo(answer.line)
    sys.exit(0 if answer.enters else 1)


def _team_installation(
    redis: Redis, team: str, installation_id: int | None, failure: type[click.ClickException]
) -> int:
    """The installation of `team`: the one given, or the only one that has it."""
    found = gate_ops.installations_with_team(redis, team)
    if installation_id is not None:
        if installation_id not in found:
            raise failure(f"installation {installation_id} has no team {team!r}")
        return installation_id
    if len(found) != 1:
        problem = "no installation has" if not found else "several installations have"
        raise failure(f"{problem} a team {team!r}: name one with --installation")
    return found[0]
