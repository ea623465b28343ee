"""The widget: the loader a site embeds (/widget.js), the chat frame it opens
(/widget/frame), and the demo host page (/demo)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
