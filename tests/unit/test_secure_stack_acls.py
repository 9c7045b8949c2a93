"""The secure stack's ACLs follow the processors: each reads exactly its sources, writes only what it emits."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chorus import secure
from chorus.pipeline import PROCESSORS
from processors.runtime import Settings
from schemas import DEADLETTER, REGISTRY

ROOT = Path(__file__).resolve().parents[2]


def sources(name: str) -> set[str]:
    module = __import__(f"processors.{name}.app", fromlist=["make_processor"])
    if name in ("trust", "healing"):
        processor = module.make_processor(module.load_policy(None) if name == "healing" else module.TrustPolicy())
    else:
        processor = module.make_processor(Settings())
    return {spec.name for spec in processor.sources}


def emitted(name: str) -> set[str]:
    """Registry topics whose spec constant the processor's package names in an Output(...) or OutMessage(...)."""
    by_constant = {}
    import schemas

    for const in dir(schemas):
        value = getattr(schemas, const)
        if value in REGISTRY:
            by_constant[const] = value.name
    found = set()
    for path in (ROOT / "processors" / name).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("Output",) and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Name) and arg.id in by_constant:
                    found.add(by_constant[arg.id])
    return found


@pytest.mark.parametrize("name", PROCESSORS)
def test_each_processor_may_read_its_sources_and_write_what_it_emits(name) -> None:
    reads, writes, groups = secure.GRANTS[name]
    assert sources(name) <= set(reads)
    assert emitted(name) <= set(writes)
    assert DEADLETTER.name in writes
    assert groups == (f"chorus-{name}",)


def test_nobody_but_the_gate_writes_admitted_intentions_or_decisions() -> None:
    for principal, (_reads, writes, _groups) in secure.GRANTS.items():
        if principal != "quarantine":
            assert "agent.intentions.admitted" not in writes and "immune.quarantine" not in writes, principal
    assert secure.GRANTS["agent"][1] == ("agent.intentions", "agent.vitals")
    assert secure.GRANTS["operator"][1] == ("immune.commands",)
