"""Every string the console shows and every error message the server raises has
a Finnish and a Swedish translation, with the same {placeholders}; and the
console's scripts never turn text into markup.

The msgids are found in the source itself: in the console's scripts, the
double-quoted literal inside t("…") or N_("…") (pt("context", "…") with its
msgctxt, keyed "context\x04msgid" as the merged catalogue keys it); in the Python code, the
literal message of AccountError (and its subclasses), ApiError and
error_response, plus the fixed texts of the HTTP error handler.
"""

from __future__ import annotations

import ast
import functools
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
JS_CONTEXT_MSGID = re.compile(r'\bpt\(\s*"((?:[^"\\\n]|\\.)*)",\s*"((?:[^"\\\n]|\\.)*)"')
SEP = "\x04"  # between msgctxt and msgid (jutella.i18n.CONTEXT_SEP)
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def read_catalog(lang: str, domain: str | None = "messages") -> dict[str, str]:
    folder = LOCALE / lang / "LC_MESSAGES"
    out: dict[str, str] = {}
    for path in [folder / f"{domain}.po"] if domain else sorted(folder.glob("*.po")):
        with path.open("rb") as fh:
            po = read_po(fh, locale=lang)
        out.update({(f"{m.context}{SEP}{m.id}" if m.context else m.id): m.string
                    for m in po if m.id and isinstance(m.id, str) and m.string and not m.fuzzy})
    return out


def console_msgids() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(CONSOLE.glob("*.js")):
        text = path.read_text(encoding="utf-8")
        for match in JS_MSGID.finditer(text):
            found.setdefault(json.loads(f'"{match.group(1)}"'), path.name)
        for match in JS_CONTEXT_MSGID.finditer(text):
            found.setdefault(json.loads(f'"{match.group(1)}"') + SEP + json.loads(f'"{match.group(2)}"'), path.name)
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


@functools.cache
def _source_trees() -> dict[Path, ast.Module]:
    """jutella's modules parsed once per test process (the scan and the per-language tests read them)."""
    return {path: ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in sorted(SRC.rglob("*.py"))}


def server_msgids() -> dict[str, str]:
    return dict(_server_msgids())


@functools.cache
def _server_msgids() -> dict[str, str]:
    trees = _source_trees()
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


# -- one English word, two meanings: message contexts (issue 17) -------------------------------------
# Words used with two meanings in the console or the widget ("To" a person in the transfer panel, "To"
# the last day in the audit log's filter; "From" likewise): each use must name its sense with a msgctxt
# (pt("recipient", "To"), pgettext(lang, "date range", "To")), never the bare t("To"). Any msgid that some
# .po file gives a msgctxt joins them. A word that gains a second meaning is added here (docs/i18n.md).
AMBIGUOUS = {"To", "From"}
WIDGET = SRC / "web" / "static" / "widget"
TEMPLATES = SRC / "web" / "templates"
PLAIN_USE = re.compile(r'''(?:\b(?:t|N_|_)\(\s*|\bgettext\(\s*[\w.]+,\s*|data-i18n(?:-label|-placeholder)?=)"([^"\\\n]*)"''')


def po_entries(lang: str) -> list[tuple[str, str | None, str, str]]:
    """(file, msgctxt, msgid, translation) of every translated entry of every domain."""
    out = []
    for path in sorted((LOCALE / lang / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as fh:
            po = read_po(fh, locale=lang)
        out += [(path.name, m.context, m.id, m.string) for m in po
                if m.id and isinstance(m.id, str) and m.string and not m.fuzzy]
    return out


@pytest.mark.parametrize("lang", LANGS)
def test_no_msgid_has_two_translations_without_a_context(lang):
    """The console gets every domain merged into one catalogue: a msgid given two translations in two
    files (Finnish "To": "Asti" for a date, "Kenelle" for a transfer) keeps only one of them, and the
    other place shows the wrong word. Two senses need two msgctxts."""
    seen: dict[tuple[str | None, str], tuple[str, str]] = {}
    clashes = []
    for name, context, msgid, text in po_entries(lang):
        first = seen.setdefault((context, msgid), (name, text))
        if first[1] != text:
            clashes.append(f"{msgid!r} (msgctxt {context!r}): {first[0]} {first[1]!r} / {name} {text!r}")
    assert not clashes, clashes


def _ambiguous() -> set[str]:
    contexted = {msgid for lang in LANGS for _, context, msgid, _ in po_entries(lang) if context}
    return AMBIGUOUS | contexted


def test_words_with_two_meanings_are_used_with_a_context():
    """No script, template or Python module looks up a two-meaning word without saying which meaning,
    and no .po file translates one without a msgctxt."""
    ambiguous = _ambiguous()
    sources = [*CONSOLE.glob("*.js"), *WIDGET.glob("*.js"), *TEMPLATES.glob("*.html"), *SRC.rglob("*.py")]
    bare = []
    for path in sorted(sources):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in PLAIN_USE.finditer(line):
                if match.group(1) in ambiguous:
                    bare.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not bare, bare
    plain = sorted({f"{lang}/{name}: {msgid!r}" for lang in LANGS for name, context, msgid, _ in po_entries(lang)
                    if context is None and msgid in ambiguous})
    assert not plain, plain


def test_contexts_reach_the_console_and_the_server():
    from jutella import i18n
    assert i18n.pgettext("fi", "recipient", "To") == "Kenelle"
    assert i18n.pgettext("fi", "date range", "To") == "Asti"
    assert i18n.pgettext("sv", "recipient", "To") == "Till"
    assert i18n.pgettext("en", "recipient", "To") == "To"
    assert i18n.catalog("fi")["recipient\x04To"] == "Kenelle"
    assert "To" not in i18n.catalog("fi")  # no bare entry for a two-meaning word


@pytest.mark.parametrize("lang", LANGS)
def test_the_record_of_processing_speaks_the_console_language(lang):
    """The register's record of processing (article 30) in the Finnish or Swedish console is in
    that language: no sentence of it is the English one (the controller's and contact's own
    details, the version and the date are data, the same in every language)."""
    from jutella.privacy.notice import record_of_processing
    from jutella.settings import load_settings

    settings = load_settings(**{"register": {"marketing": {"enabled": True},
                                             "processors": [{"name": "Relay Ab", "kind": "mail"}]}})

    def sentences(record: dict) -> set[str]:
        out: set[str] = set()
        def walk(value):
            if isinstance(value, str):
                out.add(value)
            elif isinstance(value, dict):
                for v in value.values():
                    walk(v)
            elif isinstance(value, list):
                for v in value:
                    walk(v)
        walk({k: v for k, v in record.items() if k not in ("controller", "contact", "version", "date",
                                                             "data_protection_officer", "processors")})
        return out

    english, translated = sentences(record_of_processing(settings, "en")), sentences(record_of_processing(settings, lang))
    assert len(english) > 20
    assert not english & translated, sorted(english & translated)
