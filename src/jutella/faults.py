"""What a fault of the storage (store/db.py ``storage_fault``: the database is
locked, full or unreachable) means to the person whose write it refused. One
table for the HTTP routes (web/errors.py) and the chat sockets
(realtime/connection.py), which both sit above it."""

from __future__ import annotations

# kind -> HTTP status, error code, Retry-After seconds, message. The same codes
# go into WebSocket error frames (realtime/connection.py), with the messages
# below that speak of the chat message.
FAULTS = {
    "locked": (503, "busy", 2, "The service is busy right now. Nothing was saved; try again in a moment."),
    "full": (507, "storage_full", 60, "The server cannot store anything right now. Nothing was saved; "
                                      "try again later."),
    "unavailable": (503, "unavailable", 5, "The service cannot reach its database right now. Nothing was "
                                           "saved; try again in a moment."),
    # the S3-compatible object store of the attachments' bytes (store/s3files.py) does not answer
    "files_unavailable": (503, "unavailable", 5, "The service cannot reach its file store right now. Nothing "
                                                 "was saved; try again in a moment."),
}
CHAT_FAULTS = {
    "locked": "The chat is busy right now. Your message was not sent; try again in a moment.",
    "full": "The server cannot store anything right now. Your message was not sent; try again later.",
    "unavailable": "The chat cannot reach its database right now. Your message was not sent; try again "
                   "in a moment.",
    "files_unavailable": "The chat cannot reach its file store right now. Nothing was sent; try again in a "
                         "moment.",
}


def fault_log_line(kind: str, where: str) -> str:
    """One line for the log: the kind of fault and where, no personal data."""
    return f"storage fault ({kind}) in {where}; nothing was stored"
