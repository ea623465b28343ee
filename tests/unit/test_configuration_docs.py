"""docs/configuration.md lists every setting (issue 17): each field of the
settings model as its ``JUTELLA_<NAME>`` in the page's table, and each key of
the nested ``[register]`` and ``[retention]`` tables in the page's TOML
blocks; a name the page lists that the model no longer has fails too."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from jutella.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
NESTED = {"notice": "register", "retention": "retention"}  # model field -> its TOML table
NOT_SETTINGS = {"JUTELLA_CONFIG"}  # names the file itself


def documented_variables() -> set[str]:
    """The JUTELLA_* names in the page's table rows (one `JUTELLA_...` in backticks each)."""
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `JUTELLA_")]
    return {name for row in rows for name in re.findall(r"`(JUTELLA_[A-Z0-9_]+)`", row.split(" | ")[0])}


def model_variables() -> set[str]:
    return {f"JUTELLA_{name.upper()}" for name in Settings.model_fields if name not in NESTED}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):  # Address | None, list[Processor]
        found = _model_of(arg)
        if found:
            return found
    return None


def model_keys(model: type[BaseModel], prefix: str) -> set[str]:
    out = set()
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        out |= model_keys(sub, f"{prefix}.{name}") if sub else {f"{prefix}.{name}"}
    return out


def documented_keys() -> set[str]:
    """Dotted keys (register.controller.name) of every TOML block on the page."""
    def walk(value: Any, prefix: str) -> set[str]:
        if isinstance(value, dict):
            return set().union(*(walk(v, f"{prefix}.{k}" if prefix else k) for k, v in value.items()))
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return set().union(*(walk(v, prefix) for v in value))
        return {prefix}
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert blocks, "docs/configuration.md has no TOML blocks"
    return set().union(*(walk(tomllib.loads(block), "") for block in blocks))


def test_every_setting_is_in_the_table_and_none_that_is_gone():
    documented, model = documented_variables(), model_variables()
    assert len(documented) > 30, "the table's rows were not found"
    assert not model - documented, f"settings missing from docs/configuration.md: {sorted(model - documented)}"
    stale = documented - model - NOT_SETTINGS
    assert not stale, f"docs/configuration.md lists settings that do not exist: {sorted(stale)}"


def test_every_register_and_retention_key_is_in_the_toml_blocks():
    model = set().union(*(model_keys(_model_of(Settings.model_fields[field].annotation), table)
                          for field, table in NESTED.items()))
    documented = {key for key in documented_keys() if key.split(".")[0] in NESTED.values()}
    assert not model - documented, f"[register]/[retention] keys missing: {sorted(model - documented)}"
    assert not documented - model, f"[register]/[retention] keys that do not exist: {sorted(documented - model)}"
