"""Every Redis key the app writes, in one place. All state is scoped by installation.

An installation's keys carry its id as a hash tag (`stoplight:i:{42}:…`), so on a Redis
Cluster they all hash to one slot: the queue store's transactions, the history scripts inside
them, the ledgers and the write budget each touch several keys of one installation (a PR
moving between teams touches two teams' keys). The state uses each key outside an
installation alone; the transport's scripts (taking deliveries in, claiming a batch) and RQ
span slots (docs/scaling.md says so).
`stoplight migrate` renames the keys written before the tags.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PREFIX = "stoplight"
INSTALLATIONS = f"{PREFIX}:installations"
SYNC_LOCK = f"{PREFIX}:sync:lock"
KEY_SCHEMA = f"{PREFIX}:key-schema"  # the version of these names the data is stored under
# Written once and never expiring: its absence tells a running worker that Redis lost its data.
STATE_MARKER = f"{PREFIX}:state-since"
# Set while the state is rebuilt from GitHub after a loss: effects wait, for their ledgers do
# not know yet what GitHub shows.
REBUILDING = f"{PREFIX}:state-rebuilding"
# Set (on the lanes' Redis): "installation id/team" of the effects passes that wait for it.
REBUILD_WAITERS = f"{PREFIX}:state-rebuilding:waiters"
# Deliveries set aside after failing 3 times, for `stoplight deadletters`: what is known of
# each, its body, and the order they came in. One hash tag, so one script writes all three.
DEAD_LETTERS = f"{PREFIX}:{{dead-letters}}:records"  # hash: delivery id -> JSON
DEAD_LETTER_BODIES = f"{PREFIX}:{{dead-letters}}:bodies"  # hash: delivery id -> LZ4 body
DEAD_LETTER_ORDER = f"{PREFIX}:{{dead-letters}}:order"  # sorted set: delivery id by when


def delivery(delivery_id: str) -> str:
    return f"{PREFIX}:delivery:{delivery_id}"


def redelivery_asked(attempt: int) -> str:
    """Set once a run asked GitHub to send a failed delivery attempt again."""
    return f"{PREFIX}:redelivery:asked:{attempt}"


def user_session(digest: str) -> str:
    """A signed-in person's identity and GitHub token (encrypted), by a hash of the session id."""
    return f"{PREFIX}:session:{digest}"


def user_installations(user_id: int) -> str:
    """JSON: the installations GitHub says a person can access, cached for a few minutes."""
    return f"{PREFIX}:user:{user_id}:installations"


def user_repositories(user_id: int, installation_id: int) -> str:
    """JSON: the repositories of one installation a person can access, cached likewise."""
    return f"{PREFIX}:user:{user_id}:repos:{installation_id}"


def metric(name: str) -> str:
    """Hash: a metric that worker processes add to, by label values."""
    return f"{PREFIX}:metrics:{name}"


SETUP_TOKEN = f"{PREFIX}:setup:token"  # opens /setup: printed in the server's log only


def setup_state(state: str) -> str:
    """Set while a `state` the setup page handed out may come back from GitHub, once."""
    return f"{PREFIX}:setup:state:{state}"


def slack_request_seen(digest: str) -> str:
    """Set for as long as Slack's signature over one request is valid: a replay is refused."""
    return f"{PREFIX}:slack:seen:{digest}"


def slack_action(action_id: str) -> str:
    """Hash: one button click from Slack (who, where to answer them) and how far its job got."""
    return f"{PREFIX}:slack:action:{action_id}"


def slack_command(command_id: str) -> str:
    """Hash: one `/stoplight TEAM` from Slack waiting for its job (who asked, for what, where to
    answer them)."""
    return f"{PREFIX}:slack:command:{command_id}"


def slack_link_offer(digest: str) -> str:
    """JSON: the Slack person a one-time link would link, by a hash of its token, while the link
    may be used."""
    return f"{PREFIX}:slack:link-offer:{digest}"


def slack_person(workspace: str, member: str) -> str:
    """The GitHub login a Slack person linked, tagged by their Slack workspace (a Slack person
    belongs to a workspace, not to an installation)."""
    return f"{PREFIX}:slack:{{{workspace}}}:person:{member}"


def slack_reported(problem: str) -> str:
    """Set once a Slack problem the operator must fix has been logged."""
    return f"{PREFIX}:slack:reported:{problem}"


@dataclass(frozen=True)
class InstallationKeys:
    installation_id: int

    @property
    def root(self) -> str:
        return f"{PREFIX}:i:{{{self.installation_id}}}"

    @property
    def teams(self) -> str:
        return f"{self.root}:teams"

    @property
    def token(self) -> str:
        return f"{self.root}:token"

    @property
    def writes(self) -> str:
        """Sorted set: the installation's GitHub writes of the last hour, by moment (ms)."""
        return f"{self.root}:writes"

    @property
    def writes_paused(self) -> str:
        """Milliseconds until which GitHub asked for no writes from this installation."""
        return f"{self.root}:writes:paused"

    @property
    def deleted(self) -> str:
        """Set when the app was uninstalled: late deliveries for it are ignored."""
        return f"{self.root}:deleted"

    @property
    def repositories(self) -> str:
        """Set: ids of the repositories the installation grants, once an event or sync said."""
        return f"{self.root}:repos"

    @property
    def waiting_deliveries(self) -> str:
        """Sorted set: the installation's deliveries waiting in the shared job lane."""
        return f"{self.root}:lane:waiting"

    @property
    def sync_lock(self) -> str:
        return f"{self.root}:sync:lock"

    def pulls_etag(self, repo: str) -> str:
        """The ETag of the repository's open-PR list as the last sync read it."""
        return f"{self.root}:etag:pulls:{repo}"

    def pull(self, pull_key: str) -> str:
        return f"{self.root}:pr:{pull_key}"

    def status_posted(self, repo: str, sha: str) -> str:
        return f"{self.root}:posted:status:{repo}:{sha}"

    def sending(self, ledger: str) -> str:
        """The intent noted while a write for `ledger` is in flight."""
        return f"{ledger}:sending"

    def labels_on(self, pull_key: str) -> str:
        return f"{self.root}:posted:labels:{pull_key}"

    def labels_in_repo(self, repo: str) -> str:
        return f"{self.root}:repo-labels:{repo}"

    def config(self, repo: str) -> str:
        """JSON: the repository's last good configuration and its current error, if any."""
        return f"{self.root}:config:{repo}"

    def files(self, repo: str, sha: str) -> str:
        """JSON: a PR's changed files at one head commit, as (path, changed lines) pairs."""
        return f"{self.root}:files:{repo}:{sha}"

    def repository_reader(self, repo: str, login: str) -> str:
        """ "1" or "0": whether GitHub said `login` may read the repository, cached a few
        minutes (for `/stoplight TEAM`, which has no token of the person's)."""
        return f"{self.root}:reader:{repo}:{login}"

    @property
    def team_homes(self) -> str:
        """Hash: team key -> a repository whose configuration defines the team."""
        return f"{self.root}:team-homes"

    @property
    def claims(self) -> str:
        """Hash: pull key -> JSON of who claimed it from Slack ("I'll review") and until when."""
        return f"{self.root}:claims"

    @property
    def signal_tokens(self) -> str:
        """Hash: SHA-256 of a bearer token for the pull signal -> JSON of its team and name.
        The token itself is never stored."""
        return f"{self.root}:signal:tokens"

    @property
    def signal_tokens_used(self) -> str:
        """Hash: SHA-256 of a bearer token -> when it was last used (epoch seconds)."""
        return f"{self.root}:signal:tokens:used"

    def signal_calls(self, caller: str, window: int) -> str:
        """Integer: a caller's requests to the pull signal in one rate-limit window."""
        return f"{self.root}:signal:calls:{caller}:{window}"

    def team(self, team: str) -> TeamKeys:
        return TeamKeys(f"{self.root}:t:{team}")


@dataclass(frozen=True)
class TeamKeys:
    root: str

    @property
    def waiting(self) -> str:
        """Sorted set: pull key -> moment it started waiting (epoch seconds)."""
        return f"{self.root}:waiting"

    @property
    def lines(self) -> str:
        """Integer: changed lines of the waiting PRs, kept in step with `waiting`."""
        return f"{self.root}:lines"

    @property
    def waiting_agents(self) -> str:
        """Sorted set: the waiting PRs that are agents', pull key -> moment it started waiting;
        kept in step with `waiting`."""
        return f"{self.root}:waiting:agents"

    @property
    def waiting_people(self) -> str:
        """Sorted set: person -> how many PRs credited to them wait (their agents' with their
        own), kept in step with `waiting`; nobody at zero."""
        return f"{self.root}:waiting:people"

    @property
    def held(self) -> str:
        """Sorted set: pull key -> the held score of the moment it was held and its number (see
        `queue.held_score`); the held lane, first in first out."""
        return f"{self.root}:held"

    @property
    def stale(self) -> str:
        """Sorted set: pull key -> moment its wait started (epoch seconds); PRs that waited past
        the team's stale_after, out of the measures."""
        return f"{self.root}:stale"

    @property
    def held_order(self) -> str:
        """Integer: the last number handed to a PR joining the held lane (ties within a second)."""
        return f"{self.root}:held:order"

    @property
    def open(self) -> str:
        """Set: pull keys of the team's open PRs, drafts included."""
        return f"{self.root}:open"

    @property
    def light(self) -> str:
        return f"{self.root}:light"

    # The effects passes' coordination, kept on the lanes' Redis with the jobs it is about.
    @property
    def effects_lock(self) -> str:
        return f"{self.root}:effects:lock"

    @property
    def effects_dirty(self) -> str:
        return f"{self.root}:effects:dirty"

    @property
    def effects_queued(self) -> str:
        """Set while an effects job for the team waits in the queue (see `request_effects`)."""
        return f"{self.root}:effects:queued"

    def slack_notice(self, change: str) -> str:
        """The team's Slack notice of one light change: claimed, then where it was posted."""
        return f"{self.root}:slack:notice:{change}"

    def slack_digest(self, day: str) -> str:
        """The team's daily Slack digest of one local date: claimed, then posted."""
        return f"{self.root}:slack:digest:{day}"

    @property
    def history(self) -> HistoryKeys:
        return HistoryKeys(f"{self.root}:history")


@dataclass(frozen=True)
class HistoryKeys:
    """Sorted sets by moment (epoch milliseconds), kept for 90 days: what moved the queue."""

    root: str

    @property
    def lights(self) -> str:
        """Light changes: "<ms>|<level>"."""
        return f"{self.root}:lights"

    @property
    def samples(self) -> str:
        """The measures after each change: "<ms>|<waiting>|<lines>|<oldest wait start ms>"."""
        return f"{self.root}:samples"

    @property
    def entries(self) -> str:
        """PRs entering review: "<ms>|<pull key>"."""
        return f"{self.root}:entries"

    @property
    def exits(self) -> str:
        """PRs leaving review: "<ms>|<pull key>|<moment its wait started, ms>", with "|held"
        after it for a PR reviewed in the held lane (its wait started when it was held)."""
        return f"{self.root}:exits"

    @property
    def stale(self) -> str:
        """PRs leaving the queue as stale: "<ms>|<pull key>|<moment its wait started, ms>"."""
        return f"{self.root}:stale"

    @property
    def held(self) -> str:
        """PRs joining the held lane: "<ms>|<pull key>"."""
        return f"{self.root}:held"


def job_id(kind: str, installation_id: int, *parts: str) -> str:
    """A stable RQ job id (letters, digits, dashes) for one kind of job on one subject: RQ
    keeps the job under it in Redis, so scheduling the same id again moves the one job."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()
    return f"{kind}-{installation_id}-{digest}"
