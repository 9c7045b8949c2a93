"""Request bodies to events (pure): one event or a list, validated by the topic's own model.

What the client leaves out the ingest fills in: `event_id` (a fresh uuid; send your own to
make a retried POST recognisable downstream), `occurred_at` (now), `run_id` (the ingest's
`CHORUS_RUN_ID`), `producer` (`ingest:<agent id>`). Every problem names its field, with the
item's index in a batch: `[3].amount`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from schemas import Event

from .errors import InvalidBody

E = TypeVar("E", bound=Event)


def parse_events(body: Any, model: type[E], *, run_id: str, now: datetime, max_batch: int) -> list[E]:
    batched = isinstance(body, list)
    items = body if batched else [body]
    if batched and not items:
        raise InvalidBody([{"field": "<body>", "msg": "an empty list: send one event or a non-empty list"}])
    if len(items) > max_batch:
        raise InvalidBody([{"field": "<body>", "msg": f"{len(items)} events: at most {max_batch} per request"}])
    events: list[E] = []
    problems: list[dict[str, object]] = []
    for i, item in enumerate(items):
        where = f"[{i}]" if batched else ""
        if not isinstance(item, dict):
            problems.append({"field": where or "<body>", "msg": "must be a JSON object"})
            continue
        filled = {
            "event_id": uuid.uuid4().hex,
            "occurred_at": now,
            "run_id": run_id,
            "producer": f"ingest:{item.get('agent_id')}",
        } | item
        try:
            events.append(model.model_validate(filled))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
                problems.append(
                    {"field": f"{where}.{path}".lstrip(".") if path else where or "<body>", "msg": err["msg"]}
                )
    if problems:
        raise InvalidBody(problems)
    return events
