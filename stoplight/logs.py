"""Logging: plain text by default, or one JSON object a line (LOG_FORMAT=json).

Jobs bind what they work on (delivery id, installation, repository, PR) for as long as they
run, and every line logged meanwhile carries it: as fields in JSON, as a bracketed suffix in
text. The app's secrets are masked in every line, whatever logged them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from pydantic import SecretStr

from stoplight.core.text import escape_controls
from stoplight.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
MASK = "[secret]"
# What a job is about, in the order the text format shows it.
SUBJECT_FIELDS = ("delivery", "installation", "repo", "pr", "team")

_subject: ContextVar[Mapping[str, str | int]] = ContextVar(
    "log_subject", default=MappingProxyType({})
)


@contextmanager
def bound(**subject: str | int | None) -> Iterator[None]:
    """Add fields to every line logged in this block (this thread or task only)."""
    token = _subject.set(
        {**_subject.get(), **{name: value for name, value in subject.items() if value is not None}}
    )
    try:
        yield
    finally:
        _subject.reset(token)


def about(change: object) -> Any:
    """Bind the repository and PR a change is about, if it is about one."""
    pull = getattr(change, "pull", None)
    return bound(repo=getattr(pull, "repo", None), pr=getattr(pull, "number", None))


class _SubjectFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # A line can also name its subject itself: log.info(..., extra={"delivery": ...}).
        named = {name: getattr(record, name) for name in SUBJECT_FIELDS if hasattr(record, name)}
        record.subject = {**_subject.get(), **named}
        return True


class _Masking(logging.Formatter):
    def __init__(self, secrets: list[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted(secrets, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


class TextFormatter(_Masking):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__(secrets, TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        subject: Mapping[str, Any] = getattr(record, "subject", {})
        shown = " ".join(
            f"{name}={escape_controls(str(subject[name]))}"
            for name in SUBJECT_FIELDS
            if name in subject
        )
        return self.mask(f"{line} [{shown}]" if shown else line)

    # Messages carry titles, keys and exception text from outside: a newline or an escape
    # sequence in them must not start a line of its own or rewrite the reader's terminal.
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        # A traceback keeps its lines; what is inside each is escaped.
        return "\n".join(escape_controls(line) for line in super().formatException(ei).split("\n"))


class JsonFormatter(_Masking):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "subject", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.mask(json.dumps(entry, default=str))


def secrets_of(settings: Settings) -> list[str]:
    # Every setting typed as a secret, so that a secret added later is masked without a list
    # here to remember.
    values = [getattr(settings, name) for name in type(settings).model_fields]
    found = [value.get_secret_value().strip() for value in values if isinstance(value, SecretStr)]
    # A PEM is also logged line by line, or escaped onto one line.
    pem_lines = [
        line for value in found if "\n" in value for line in value.splitlines() if len(line) > 20
    ]
    return [secret for secret in found + pem_lines if len(secret) >= 4]


def handler(settings: Settings) -> logging.Handler:
    out = logging.StreamHandler(sys.stderr)
    secrets = secrets_of(settings)
    formatter = JsonFormatter(secrets) if settings.log_format == "json" else TextFormatter(secrets)
    out.setFormatter(formatter)
    out.addFilter(_SubjectFilter())
    return out


def configure(settings: Settings) -> None:
    """Send every logger's lines through one handler in the configured format."""
    logging.basicConfig(level=settings.log_level, handlers=[handler(settings)], force=True)
