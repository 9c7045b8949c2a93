"""Redis key names: namespaced by run_id, one hash tag per (run, entity) so an entity's keys share a cluster slot."""

from __future__ import annotations


def entity_key(processor: str, run_id: str, entity: str) -> str:
    """The hash holding an entity's state, version and offset fences."""
    return f"chorus:{processor}:{{{run_id}:{entity}}}"


def history_key(processor: str, run_id: str, entity: str) -> str:
    """The entity's capped history list (same hash tag as its state)."""
    return entity_key(processor, run_id, entity) + ":history"


def parts_key(processor: str, run_id: str, entity: str) -> str:
    """The hash of an entity's parts (Processor.parts_of; same hash tag as its state)."""
    return entity_key(processor, run_id, entity) + ":parts"


def fence_field(topic: str, partition: int) -> str:
    return f"f:{topic}:{partition}"


def nonce_key(processor: str, run_id: str, nonce: str) -> str:
    """Where a processor remembers an operator command's nonce (and the message that first carried it)."""
    return f"chorus:{processor}:nonce:{{{run_id}:{nonce}}}"
