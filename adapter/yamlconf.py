"""Load YAML mapping files into pydantic models, with errors that name the file, line and field.

A hospital edits `mappings/*.yaml` by hand; an error like `study.yaml:42: visits.1.window: ...` lets
them fix it without reading Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from adapter.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that remembers the line of every mapping value and sequence item."""


def _compose_lines(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _compose_lines(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _compose_lines(item, (*path, index), lines)


def read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return its data and a map from field path to line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from exc
    lines: dict[Loc, int] = {}
    if node is not None:
        _compose_lines(node, (), lines)
    return data, lines


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def format_validation_error(path: Path, exc: ValidationError, lines: dict[Loc, int]) -> str:
    parts = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = _line_for(loc, lines)
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = f"{path}:{line}" if line else str(path)
        parts.append(f"{where}: {field}: {err['msg']}")
    return "\n".join(parts)


def load_model(path: Path, model: type[M]) -> M:
    """Read `path` and validate it as `model`; raise ConfigError naming file:line and field."""
    data, lines = read_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: the file is empty")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, lines)) from exc
