"""Every string the console shows and every error message the server raises has
a Finnish and a Swedish translation, with the same {placeholders}; and the
console's scripts never turn text into markup.

The msgids are found in the source itself: in the console's scripts, the
double-quoted literal inside t("…") or N_("…"); in the Python code, the
literal message of AccountError (and its subclasses), ApiError and
error_response, plus the fixed texts of the HTTP error handler.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

SRC = Path(__file__).resolve().parents[2] / "src" / "jutella"
CONSOLE = SRC / "web" / "static" / "console"
LOCALE = SRC / "locale"
LANGS = ("fi", "sv")
JS_MSGID = re.compile(r'\b(?:t|N_)\(\s*"((?:[^"\\\n]|\\.)*)"')
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def read_catalog(lang: str, domain: str | None = "messages") -> dict[str, str]:
    folder = LOCALE / lang / "LC_MESSAGES"
    out: dict[str, str] = {}
    for path in [folder / f"{domain}.po"] if domain else sorted(folder.glob("*.po")):
        with path.open("rb") as fh:
            po = read_po(fh, locale=lang)
        out.update({m.id: m.string for m in po if m.id and isinstance(m.id, str) and m.string and not m.fuzzy})
    return out


def console_msgids() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(CONSOLE.glob("*.js")):
        for match in JS_MSGID.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(json.loads(f'"{match.group(1)}"'), path.name)
    return found


def _message_positions(trees: list[ast.Module]) -> dict[str, int]:
    """Exception class name -> index of its message argument: AccountError's
    own, ApiError's, and those of any subclass, following their __init__."""
    positions = {"AccountError": 1, "ApiError": 2}
    classes = [n for tree in trees for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    changed = True
    while changed:
        changed = False
        for cls in classes:
            if cls.name in positions:
                continue
            parents = [b.id for b in cls.bases if isinstance(b, ast.Name) and b.id in positions]
            if not parents:
                continue
            position = positions[parents[0]]
            for item in cls.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    names = [a.arg for a in item.args.args][1:]
                    if "message" in names:
                        position = names.index("message")
            positions[cls.name] = position
            changed = True
    return positions


def server_msgids() -> dict[str, str]:
    trees = {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in sorted(SRC.rglob("*.py"))}
    positions = _message_positions(list(trees.values()))
    positions["error_response"] = 3
    found: dict[str, str] = {}
    for path, tree in trees.items():
        where = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                at = positions.get(name)
                if at is not None and len(node.args) > at:
                    arg = node.args[at]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found.setdefault(arg.value, where)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "http_error":
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Dict):
                        for value in sub.values:
                            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                                found.setdefault(value.value, where)
    return found


def test_the_source_scan_finds_the_strings():
    console, server = console_msgids(), server_msgids()
    assert len(console) > 100, "the console's t()/N_() calls were not found"
    assert "Sign in" in console and "Require two-factor sign-in for everyone" in console
    assert "Wrong email or password." in server and "Sign in first." in server and "Not found." in server
    assert "Check the field {field}: {problem}" in server


@pytest.mark.parametrize("lang", LANGS)
def test_every_console_string_is_translated(lang):
    # The console page embeds every domain's catalog (messages.po, and e.g. chat.po).
    translations = read_catalog(lang, domain=None)
    missing = {msgid: where for msgid, where in console_msgids().items() if msgid not in translations}
    assert not missing, f"{lang} catalogs lack: {missing}"


@pytest.mark.parametrize("lang", LANGS)
def test_every_server_error_message_is_translated(lang):
    translations = read_catalog(lang, domain=None)
    missing = {msgid: where for msgid, where in server_msgids().items() if msgid not in translations}
    assert not missing, f"{lang} catalogs lack: {missing}"


@pytest.mark.parametrize("path", sorted(LOCALE.glob("*/LC_MESSAGES/*.po")), ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_placeholders_match_and_the_header_is_right(path):
    lang = path.parts[-3]
    with path.open("rb") as fh:
        po = read_po(fh, locale=lang)
    assert str(po.locale) == lang
    assert po.mime_headers and dict(po.mime_headers)["Content-Type"].lower() == "text/plain; charset=utf-8"
    wrong = {}
    for message in po:
        if message.id and isinstance(message.id, str) and message.string:
            if sorted(PLACEHOLDER.findall(message.id)) != sorted(PLACEHOLDER.findall(message.string)):
                wrong[message.id] = message.string
    assert not wrong, wrong


def test_the_console_never_parses_text_as_markup():
    """Staff names, emails and audit details are untrusted: the console's
    scripts build elements and set textContent, and never use an HTML parser
    or run strings as code."""
    forbidden = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\s*\(|new\s+Function\b|"
                           r"setAttribute\(\s*[\"']on|createContextualFragment|DOMParser)")
    hits = []
    for path in sorted(CONSOLE.glob("*.js")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("//", 1)[0]
            if forbidden.search(code):
                hits.append(f"{path.name}:{number}: {line.strip()}")
    assert not hits, hits
