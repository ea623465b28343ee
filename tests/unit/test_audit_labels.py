"""The audit log speaks words (issue 17): every action name the Python code
writes (``audit.record(..., action=...)`` and ``audit.record_shown``) has a
label in the console's table (static/console/audit-words.js ACTIONS), and
every literal detail key a row carries has a phrase (DETAILS) or a count
label, so the console never shows ``conversation.view``, ``visitor:1`` or
JSON. A new action without a label fails here."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "jutella"
CONSOLE = SRC / "web" / "static" / "console"
WORDS = CONSOLE / "audit-words.js"
# actions written with an f-string, and every name each can take
EXPANSIONS = {
    "subject.{}.{}": {"subject.objection.set", "subject.objection.lift",
                      "subject.restriction.set", "subject.restriction.lift"},
}


def _module_constants(tree: ast.Module) -> dict[str, str]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return out


def _names(value: ast.expr, constants: dict[str, str], where: str) -> set[str]:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return {value.value}
    if isinstance(value, ast.IfExp):
        return _names(value.body, constants, where) | _names(value.orelse, constants, where)
    if isinstance(value, ast.Name) and value.id in constants:
        return {constants[value.id]}
    if isinstance(value, ast.Name) and value.id == "action":
        return set()  # record_shown passing its own argument on to record
    if isinstance(value, ast.JoinedStr):
        shape = "".join(p.value if isinstance(p, ast.Constant) else "{}" for p in value.values)
        assert shape in EXPANSIONS, f"{where}: an action made by an f-string ({shape}): list its names in EXPANSIONS"
        return EXPANSIONS[shape]
    raise AssertionError(f"{where}: an action name the test cannot read: {ast.dump(value)}")


@functools.cache
def _source_trees() -> tuple[tuple[Path, ast.Module], ...]:
    """jutella's modules parsed once per test process (three tests read them)."""
    return tuple((path, ast.parse(path.read_text(encoding="utf-8"), str(path))) for path in sorted(SRC.rglob("*.py")))


def audit_calls() -> list[tuple[str, ast.Call, dict[str, str]]]:
    out = []
    for path, tree in _source_trees():
        constants = _module_constants(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name in ("record", "record_shown") and any(k.arg == "action" for k in node.keywords):
                    out.append((f"{path.relative_to(SRC)}:{node.lineno}", node, constants))
    return out


def actions_in_source() -> dict[str, str]:
    found: dict[str, str] = {}
    for where, call, constants in audit_calls():
        action = next(k.value for k in call.keywords if k.arg == "action")
        for name in _names(action, constants, where):
            found.setdefault(name, where)
    return found


def detail_keys_in_source() -> dict[str, str]:
    found: dict[str, str] = {}
    for where, call, _ in audit_calls():
        func = call.func
        if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "record_shown":
            found.setdefault("shown", where)
        for keyword in call.keywords:
            if keyword.arg == "detail" and isinstance(keyword.value, ast.Dict):
                for key in keyword.value.keys:
                    if isinstance(key, ast.Constant):
                        found.setdefault(key.value, where)
    # counts written key by key (retention's run, erasure's receipt)
    for path in sorted((SRC / "privacy").glob("*.py")):
        for key in re.findall(r'counts\["(\w+)"\]', path.read_text(encoding="utf-8")):
            found.setdefault(key, str(path.relative_to(SRC)))
    return found


def js_table(path: Path, name: str) -> set[str]:
    text = path.read_text(encoding="utf-8")
    body = re.search(rf"^(?:export )?const {name} = \{{\n(.*?)^\}};", text, re.S | re.M)
    assert body, f"{path.name}: no table {name}"
    return set(re.findall(r'^\s+"?([\w.]+)"?:', body.group(1), re.M))


def test_the_scan_finds_the_actions():
    found = actions_in_source()
    assert {"login", "conversation.view", "department.members", "subject.erase", "audit.pruned",
            "offline_message.reopen", "subject.restriction.lift", "conversation.search"} <= set(found)
    assert len(found) > 40


def test_every_audit_action_has_a_label():
    labels = js_table(WORDS, "ACTIONS")
    missing = {name: where for name, where in actions_in_source().items() if name not in labels}
    assert not missing, f"audit actions without a label in audit-words.js ACTIONS: {missing}"


def test_every_detail_key_has_words():
    known = (js_table(WORDS, "DETAILS") | js_table(WORDS, "MORE_COUNTS")
             | js_table(CONSOLE / "view-privacy-find.js", "COUNT_LABELS"))
    missing = {key: where for key, where in detail_keys_in_source().items() if key not in known}
    assert not missing, f"audit detail keys without words in audit-words.js: {missing}"
