from __future__ import annotations

ADMIN = "admin"  # the chat system's administrator: accounts, settings
AGENT = "agent"  # answers chats, reads chat histories
PRIVACY = "privacy"  # the register's contact person: data-subject requests
ROLES = (ADMIN, AGENT, PRIVACY)


def check_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    """Return the roles de-duplicated and sorted, or raise ValueError naming the bad one."""
    if not roles:
        raise ValueError("an account needs at least one role (admin, agent, privacy)")
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: choose from admin, agent, privacy")
    return sorted(set(roles))
