from __future__ import annotations


class AccountError(Exception):
    """An expected refusal. ``message`` is English and is also the msgid the web
    layer translates; ``status`` is the HTTP status it maps to."""

    def __init__(self, code: str, message: str, status: int = 400, **params: object):
        super().__init__(message.format(**params) if params else message)
        self.code = code
        self.message = message
        self.status = status
        self.params = params
