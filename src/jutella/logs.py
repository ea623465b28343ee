"""Logging without personal data: no access log, and a filter that rewrites
any IP address a library puts into a log line (uvicorn names WebSocket peers,
for example) before it is written."""

from __future__ import annotations

import logging
import re

_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_PEER_TUPLE = re.compile(r"\('[^']*', \d+\)")


# the server's own bind addresses, not a person's: kept in log lines, not bound to
_KEEP = {"127.0.0.1", "0.0.0.0", "::1", "::"}  # nosec B104


def _sub(match: re.Match[str]) -> str:
    return match.group(0) if match.group(0) in _KEEP else "[address]"


def redact(text: str) -> str:
    text = _PEER_TUPLE.sub("(client)", text)
    text = _IPV4.sub(_sub, text)
    return _IPV6.sub(_sub, text)


class RedactAddresses(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw text
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def log_config(level: str = "info") -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "jutella.logs.RedactAddresses"}},
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain",
                                "filters": ["redact"], "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "jutella": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
