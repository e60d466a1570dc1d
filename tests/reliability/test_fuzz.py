"""Spec-driven fuzzing: every documented operation, as every role, from the app's own spec.

For each (operation, role) schemathesis generates valid (positive) and invalid (negative)
requests from the OpenAPI document and sends them to the app in-process. Every response must:

- never be a 5xx;
- carry a status code the operation documents *explicitly* — flask-smorest's catch-all
  ``default`` response does not count, or the check would accept anything;
- match the documented schema and content type of that status;
- be the uniform ``{code, message, errors}`` body when it is an error;
- reject negative (schema-violating) input with a 4xx.

Example counts: ``FUZZ_EXAMPLES`` per mode (default 4, derandomised so CI is reproducible);
``make fuzz`` runs more with a random seed. The totals are printed at the end of the run.
"""

from __future__ import annotations

import os
import re

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from tests.reliability import support as r

EXAMPLES = r.env_int("FUZZ_EXAMPLES", 4)
RANDOM = os.environ.get("FUZZ_RANDOM", "") not in {"", "0"}

_SCHEMA = schemathesis.openapi.from_dict(r.spec())
# The test sends each role's real token, so generated Authorization headers would only be
# overwritten (and make "negative" cases that are not). Unknown query parameters are ignored
# by design (webargs EXCLUDEs them: tracking parameters must not break links), so they are
# not generated as "invalid" either.
_SCHEMA.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
_UNSATISFIABLE: set[tuple[str, GenerationMode]] = set()
_OPERATIONS = {op.label: op for op in (res.ok() for res in _SCHEMA.get_all_operations())}


def _labels() -> list[str]:
    return sorted(_OPERATIONS)


@pytest.fixture
def world(app, session):
    return r.seed_world(app, session)


def _strategy(op, mode: GenerationMode, world: r.World):
    generated = op.as_strategy(generation_mode=mode)
    known = world.known_path_values()
    names = r.path_params(op.path)
    if names and all(n in known for n in names):
        # Half the time aim at a real resource so the fuzzer reaches the handler's logic.
        real = op.as_strategy(generation_mode=mode, path_parameters={n: known[n] for n in names})
        return st.one_of(generated, real)
    return generated


def _check(op, case, resp, *, mode: GenerationMode) -> None:
    label = op.label
    status = resp.status_code
    body = resp.content[:500]
    assert status < 500, f"{label}: {status} {body!r}"
    documented = r.documented_statuses(op.definition.raw)
    assert status in documented, f"{label}: undocumented status {status} {body!r}"
    if status >= 400:
        payload = resp.json()
        assert isinstance(payload, dict) and set(payload) == {"code", "message", "errors"}, (
            f"{label}: error body not in the uniform shape: {payload!r}"
        )
        assert payload["code"] and payload["message"], payload
    checks = [response_schema_conformance, content_type_conformance]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    case.validate_response(resp, checks=checks)


def _examples(op, role: str) -> int:
    """Full count where the role gets past authentication and the role check; one example
    where the answer can only be 401/403 (the check runs before any parsing)."""
    raw = op.definition.raw
    if role == "anonymous" and raw.get("security"):
        return min(EXAMPLES, 1)
    allowed = re.search(
        r"允许：([a-z_, ]+)", raw.get("responses", {}).get("403", {}).get("description", "")
    )
    if allowed and role not in {a.strip() for a in allowed.group(1).split(",")}:
        return min(EXAMPLES, 1)
    return EXAMPLES


def _run_mode(app, op, world: r.World, role: str, mode: GenerationMode) -> int:
    """Run up to EXAMPLES generated requests of one mode; return how many were sent."""
    headers = world.auth(role)
    sent = 0

    @settings(
        max_examples=_examples(op, role),
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        verbosity=hypothesis.Verbosity.quiet,
    )
    @given(case=_strategy(op, mode, world))
    def run(case) -> None:
        nonlocal sent
        if role == "anonymous" and case.headers:
            case.headers.pop("Authorization", None)
        resp = case.call(app=app, headers=headers)
        sent += 1
        _check(op, case, resp, mode=mode)

    if (op.label, mode) in _UNSATISFIABLE:
        return 0
    try:
        run()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (no parameters, no body, or only
        # unconstrained strings): remember it so the other roles do not search again.
        if mode is GenerationMode.POSITIVE:
            raise
        _UNSATISFIABLE.add((op.label, mode))
    return sent


@pytest.mark.parametrize("label", _labels())
def test_fuzz_operation(app, world, label: str) -> None:
    """Positive and negative examples of one operation, as every role and anonymously."""
    op = _OPERATIONS[label]
    for role in r.ROLES:
        ran = 0
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                ran += _run_mode(app, op, world, role, mode)
            except Exception as exc:
                exc.add_note(f"while fuzzing {label} as {role} ({mode.value})")
                raise
        assert ran > 0, (label, role)
        r.STATS["fuzz examples"] += ran
    r.FUZZED_OPERATIONS.add(label)
