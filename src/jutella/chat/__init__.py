"""Conversations, messages, presence, routing, and the actions that change them."""
