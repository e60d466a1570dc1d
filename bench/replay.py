"""Replaying a captured request's SQL by the raw driver, as another request would send it.

``bench.explain.capture_request`` records one real request's statements with their
parameters; the replays (``bench.paths.ceiling``, ``bench.stack_app``) send the same
statements again with the probe's resident, session, case id, case number, key and township
replaced by new ones.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

# The idempotency key's insert returns its id, which a later statement may name.
KEY_INSERT = "INSERT INTO idempotency_keys"


def params_for(params: Any) -> Any:
    """Captured parameters as the driver takes them (a dict for psycopg, a tuple for sqlite3)."""
    if params is None:
        return ()
    return params if isinstance(params, list | tuple) else dict(params)


def substitute(value: Any, subst: dict[Any, Any]) -> Any:
    """``value`` with what names the probe request (``subst``: old -> new) replaced."""
    if isinstance(value, dict):
        return {k: substitute(v, subst) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(substitute(v, subst) for v in value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | uuid.UUID):
        return subst.get(value, value)
    if isinstance(value, str):
        if value in subst:
            return subst[value]
        for old in (k for k in subst if isinstance(k, str | uuid.UUID)):
            new = subst[old]
            if str(old) in value:
                value = value.replace(str(old), str(new))
            if isinstance(old, uuid.UUID) and old.hex in value:  # SQLite stores UUIDs as hex
                value = value.replace(old.hex, new.hex)
        return value
    return value


class Replay:
    """A captured script with its substitutions worked out once, so that replaying a request
    costs the driver's work and little else (``substitute`` walks every value on every call).

    ``template`` maps a name to what named the probe request (its resident id, case id, ...);
    ``params(i, new)`` gives statement ``i``'s parameters for a request named by ``new`` (the
    same names, new values)."""

    def __init__(self, script: list[tuple[str, Any, bool]], template: dict[str, Any]) -> None:
        self.statements = [(s, many) for s, _, many in script]
        olds = {old: name for name, old in template.items() if old is not None}
        self._builders = [
            [_builder(p, olds) for p in params]
            if many and isinstance(params, list)
            else _builder(params_for(params), olds)
            for _, params, many in script
        ]

    def params(self, i: int, new: dict[str, Any]) -> Any:
        built = self._builders[i]
        return [b(new) for b in built] if isinstance(built, list) else built(new)

    def send(self, cur: Any, new: dict[str, Any]) -> list[Any]:
        """Send every statement on the driver's cursor ``cur`` for the request ``new`` names;
        the key row's id, when its insert returns one, becomes ``new["key_row"]``. Returns the
        rows the last statement that read any gave."""
        rows: list[Any] = []
        for i, (statement, _) in enumerate(self.statements):
            params = self.params(i, new)
            if isinstance(params, list):
                cur.executemany(statement, params)
                continue
            cur.execute(statement, params)
            if statement.startswith(KEY_INSERT) and cur.description:
                new["key_row"] = cur.fetchone()[0]
            elif cur.description:
                rows = cur.fetchall()
        return rows


def _builder(params: Any, olds: dict[Any, str]) -> Any:
    """A function of the new names giving ``params`` with the old ones replaced: a value that
    is an old name is a slot; a string holding old names (the rows a multi-row insert sends as
    JSON) is rewritten by one regular expression; anything else is sent as captured."""
    items = list(params.items()) if isinstance(params, dict) else list(enumerate(params))
    spelled = _spellings(olds)
    pattern = re.compile("|".join(_find(k, spelled[k][1]) for k in sorted(spelled, key=len)[::-1]))
    fixed: dict[Any, Any] = {}
    slots: list[tuple[Any, str, Any]] = []
    texts: list[tuple[Any, list[Any]]] = []
    nested: list[tuple[Any, Any]] = []
    for key, value in items:
        hashable = isinstance(value, int | str | uuid.UUID) and not isinstance(value, bool)
        if hashable and value in olds:
            slots.append((key, olds[value], value))
        elif isinstance(value, str) and spelled and pattern.search(value):
            texts.append((key, _pieces(value, pattern, spelled)))
        elif isinstance(value, dict | list | tuple):
            nested.append((key, value))
        else:
            fixed[key] = value

    def build(new: dict[str, Any]) -> Any:
        out = dict(fixed)
        for key, name, old in slots:
            out[key] = new.get(name, old)  # the key row's id is new only after its insert
        for key, pieces in texts:
            out[key] = "".join(p if isinstance(p, str) else _respell(p, new) for p in pieces)
        if nested:
            subst = {old: new[name] for old, name in olds.items() if name in new}
            for key, value in nested:
                out[key] = substitute(value, subst)
        if isinstance(params, dict):
            return out
        return tuple(out[k] for k in range(len(items)))

    return build


def _find(text: str, form: str) -> str:
    """A regular expression finding ``text``: as a substring (a township inside a case number
    or a counter's prefix), except a number, which must not be part of a longer one."""
    return rf"(?<![\d.]){re.escape(text)}(?![\d.])" if form == "number" else re.escape(text)


def _spellings(olds: dict[Any, str]) -> dict[str, tuple[str, str]]:
    """How each old name is written inside a string: text -> (its name, its form)."""
    out: dict[str, tuple[str, str]] = {}
    for old, name in olds.items():
        if isinstance(old, uuid.UUID):
            out[str(old)] = (name, "uuid")
            out[old.hex] = (name, "hex")  # SQLite stores UUIDs as hex
        elif isinstance(old, int) and not isinstance(old, bool):
            out[str(old)] = (name, "number")
        elif isinstance(old, str) and old:
            out[old] = (name, "text")
    return out


def _pieces(text: str, pattern: re.Pattern[str], spelled: dict[str, tuple[str, str]]) -> list[Any]:
    """``text`` cut into literal strings and (name, form, old text) where an old name was."""
    out: list[Any] = []
    at = 0
    for m in pattern.finditer(text):
        out += [text[at : m.start()], (*spelled[m.group()], m.group())]
        at = m.end()
    return [*out, text[at:]]


def _respell(found: tuple[str, str, str], new: dict[str, Any]) -> str:
    name, form, old_text = found
    if name not in new:
        return old_text
    value = new[name]
    if form == "hex":
        return value.hex
    return str(value)
