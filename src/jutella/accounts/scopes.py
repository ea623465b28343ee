"""What an API token may do: its scopes, each mapped onto the roles whose
rights it carries, in this one table (docs/api.md).

A route opens to tokens by naming its scope in its guard
(``Staff(scope=CONVERSATIONS_READ)``, web/auth.py); the guard then asks for
the roles written here, so a scope and its routes' roles cannot drift apart.
A route that names no scope refuses every token (403). No scope carries the
``privacy`` role: a token never reaches the register, and never sees a person
whose processing is restricted (chat/access.py).

A token is made by a member of staff who holds, for each of its scopes, one
of the roles listed (:func:`check_scopes`), or by the operator on the command
line; docs/api.md says how each acts.
"""

from __future__ import annotations

from dataclasses import dataclass

from .roles import ADMIN, AGENT

CONVERSATIONS_READ = "conversations:read"
OFFLINE_READ = "offline:read"
REPORTS_READ = "reports:read"
WEBHOOKS_MANAGE = "webhooks:manage"


@dataclass(frozen=True)
class Scope:
    name: str
    roles: tuple[str, ...]  # the route's guard admits any of these; a creator needs one of them
    description: str


SCOPES: dict[str, Scope] = {s.name: s for s in (
    Scope(CONVERSATIONS_READ, (AGENT,), "read conversations, their messages, and search them"),
    Scope(OFFLINE_READ, (AGENT,), "read the messages left through the email form"),
    Scope(REPORTS_READ, (ADMIN,), "read the daily reports (no personal data)"),
    Scope(WEBHOOKS_MANAGE, (ADMIN,), "list, add, change and remove webhooks"),
)}

#: the roles an operator's token (made on the command line) acts with, narrowed to its scopes
OPERATOR_ROLES = (ADMIN, AGENT)


class ScopeError(ValueError):
    """A scope that does not exist (``unknown``) or that the maker's roles do not carry."""

    def __init__(self, scope: str, unknown: bool):
        super().__init__(f"unknown scope {scope!r}" if unknown else f"the scope {scope} needs the "
                         f"{' or '.join(SCOPES[scope].roles)} role")
        self.scope, self.unknown = scope, unknown


def check_scopes(names: list[str] | tuple[str, ...], creator_roles: list[str] | None) -> list[str]:
    """The scopes de-duplicated and sorted, or ScopeError for the first unknown
    one or one the creator's roles do not carry (``creator_roles`` None: the
    operator, who may give any scope). No scopes: an empty list (the caller refuses it)."""
    for name in names:
        if name not in SCOPES:
            raise ScopeError(name, True)
        if creator_roles is not None and not set(SCOPES[name].roles) & set(creator_roles):
            raise ScopeError(name, False)
    return sorted(set(names))


def roles_for(scope: str) -> tuple[str, ...]:
    return SCOPES[scope].roles
