"""The simulated fleet, tick by tick: pure and deterministic (no I/O, no clock; seeded randomness).

Per-agent state lives in numpy arrays so that a tick of 10,000 agents is a handful
of vector operations; only formatting the events is a per-event Python loop.

Every tick draws the same random arrays whatever the quarantine state, so that
quarantining one agent changes nothing about the others except through the
resources they share.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from schemas import TRUTH, GroundTruth, Intention, encode

from . import chaos
from .profiles import PROFILES
from .resources import Claim, ResourceManager
from .scenario import ChaosSpec, HealingSpec, Scenario, agent_id
from .wire import PRODUCER, Clock, EventIds, Templates, json_str

# What the claim modes ask for: a share of the target's capacity per acquisition, priority, hold time.
CLAIM_SHAPE = {"hoarder": (0.08, 10, 90.0), "deceptive": (0.06, 9, 60.0), "defiant": (0.06, 9, 60.0)}
CLAIM_RATE = 2.0  # acquisitions per second of an agent in a claim mode
FLOOD_FACTOR = 20.0
LATENCY_FACTOR = 10.0
ERROR_RISE = 0.45
PRIMARY_SHARE = 0.8  # how often an agent claims its own resource rather than another
DEGRADED = 0.25  # degradation above which an agent counts as suffering
DEGRADED_MIN_TICKS = 3  # ticks of suffering that make a never-infected agent count as degraded, not a blip


@dataclass
class TickBatch:
    """What one tick produced: (key, value) records per topic, and counts for the progress line."""

    tick: int
    sim_time_s: float
    intentions: list[tuple[bytes, bytes]] = field(default_factory=list)
    vitals: list[tuple[bytes, bytes]] = field(default_factory=list)
    truth: list[tuple[bytes, bytes]] = field(default_factory=list)
    granted: int = 0
    denied: int = 0
    suffering_healthy: int = 0
    healthy: int = 0
    cured: int = 0

    @property
    def events(self) -> int:
        return len(self.intentions) + len(self.vitals) + len(self.truth)


class Simulation:
    """One run of a scenario. Call `step()` once per tick until `done`."""

    @property
    def degraded_healthy(self) -> int:
        """Agents never infected in this run that suffered from contention for a while."""
        return int((~self.ever_infected & (self.suffering_ticks >= DEGRADED_MIN_TICKS)).sum())

    def __init__(self, scenario: Scenario, run_id: str, *, gate: bool = True) -> None:
        self.scenario = scenario
        self.run_id = run_id
        self.gate = gate
        self.tick = 0
        self.ticks = chaos.total_ticks(scenario)
        self.fingerprint = scenario.fingerprint()
        self._rng = np.random.default_rng([scenario.seed, 1])
        self._ids = EventIds(self.fingerprint)
        self._clock = Clock(scenario.start)
        self._templates = Templates(run_id)
        self._tick_ms = round(scenario.tick * 1000)
        self._setup_agents()
        self._setup_resources()
        self._outbreaks = chaos.plan(scenario)
        self._releases: list[tuple[float, int, int, int, float]] = []  # (due_s, n, agent, resource, amount)
        self._release_n = 0
        self.ignored_inputs = 0
        self._healing = scenario.healing or HealingSpec()
        self._cures: list[tuple[int, int, int, str]] = []  # (due tick, n, agent, action): heaps of pending cures
        self._heal_draws = np.zeros(self.n, dtype=np.int64)
        self.healing_received = 0

    # --- setup ------------------------------------------------------------------------------------------------

    def _setup_agents(self) -> None:
        spec, rng = self.scenario.agents, self._rng
        n = self.n = spec.count
        names = list(spec.profiles)
        weights = np.array([spec.profiles[p] for p in names], dtype=float)
        self.profile_names = names
        self.profile = rng.choice(len(names), size=n, p=weights / weights.sum())
        profiles = [PROFILES[p] for p in names]

        def column(attr: str, spread: float) -> np.ndarray:
            values = np.array([getattr(p, attr) for p in profiles], dtype=float)[self.profile]
            return values * rng.lognormal(0.0, spread, n) if spread else values

        self.rate = column("intent_rate", 0.2)
        self.amount = column("amount", 0.2)
        self.hold = column("hold_s", 0.2)
        self.priority = column("priority", 0.0).astype(np.int64)
        self.base_latency = column("latency_ms", 0.15)
        self.base_errors = column("error_rate", 0.15)
        self.base_cpu = column("cpu", 0.15)
        self.base_queue = column("queue_depth", 0.15)
        self.base_rps = column("requests_per_s", 0.15)
        self.burst_on = column("burst_on", 0.0)
        self.burst_off = column("burst_off", 0.0)
        self.burst_factor = column("burst_factor", 0.0)
        self.bursting = np.zeros(n, dtype=bool)
        k = spec.dependencies
        # Each agent depends on k others (never itself): damage upstream spreads downstream.
        self.upstream = (np.arange(n)[:, None] + rng.integers(1, n, size=(n, k))) % n
        self.coupling = spec.coupling
        self.ids = [agent_id(i) for i in range(n)]
        self.id_json = [json_str(a) for a in self.ids]
        self.keys = [a.encode() for a in self.ids]
        self.index = {a: i for i, a in enumerate(self.ids)}
        self.stress = np.zeros(n)
        self.degradation = np.zeros(n)
        self.backlog = np.zeros(n)
        self.quarantined = np.zeros(n, dtype=bool)
        self.quarantined_since = np.full(n, -1, dtype=np.int64)  # tick of the current quarantine, -1 free
        self.ever_infected = np.zeros(n, dtype=bool)
        self.suffering_ticks = np.zeros(n, dtype=np.int64)
        self.mode = np.zeros(n, dtype=np.int64)  # chaos.MODE_CODE, 0 healthy
        self.outbreak_of = np.full(n, -1, dtype=np.int64)
        self.target = np.zeros(n, dtype=np.int64)
        self.seq = np.zeros(n, dtype=np.int64)
        # Each infected agent's dials (see ChaosSpec): strength relative to the classic one, onset, ramp.
        self.factor = np.ones(n)
        self.error_rise = np.zeros(n)
        self.claim_share = np.zeros(n)
        self.claim_priority = np.ones(n, dtype=np.int64)
        self.claim_hold = np.ones(n)
        self.onset_tick = np.zeros(n, dtype=np.int64)
        self.ramp_ticks = np.zeros(n)

    def _setup_resources(self) -> None:
        specs = self.scenario.resources
        self.resource_names = [r.name for r in specs]
        self.resource_json = [json_str(r) for r in self.resource_names]
        self.capacity = np.array([r.capacity_for(self.n) for r in specs])
        self.resource_index = {r: i for i, r in enumerate(self.resource_names)}
        self.primary = self._rng.choice(len(specs), size=self.n, p=self.capacity / self.capacity.sum())
        self.target[:] = self.primary
        self.manager = ResourceManager(dict(enumerate(self.capacity.tolist())))

    # --- the tick ---------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.tick >= self.ticks

    @property
    def sim_time_s(self) -> float:
        return self.tick * self._tick_ms / 1000

    def step(
        self,
        quarantine: Iterable[tuple[str, bool]] = (),
        admitted: Iterable[Intention] = (),
        healing: Iterable[tuple[str, str]] = (),
    ) -> TickBatch:
        """Advance one tick. `quarantine`: (agent id, quarantined?) decisions received since the last tick;
        `admitted`: intentions the gate let through since the last tick (gate mode only);
        `healing`: (agent id, action) healing actions issued to agents since the last tick."""
        k = self.tick
        t0_ms, t1_ms = k * self._tick_ms, (k + 1) * self._tick_ms
        t0, t1 = t0_ms / 1000, t1_ms / 1000
        batch = TickBatch(tick=k, sim_time_s=t1)
        self._apply_quarantine(quarantine)
        self._apply_healing(healing, k)
        self._run_chaos(k, batch)
        self._run_cures(k, batch)
        requests = np.zeros(self.n, dtype=np.int64)
        denied = np.zeros(self.n, dtype=np.int64)
        if self.gate:
            self._admit(admitted, requests, denied, batch)
        self.manager.expire(t0)
        rows = self._intentions(t0, t1, t0_ms)
        if not self.gate:
            self._decide_own(rows, requests, denied, batch)
        self._emit_intentions(rows, batch)
        self._vitals(t1_ms, requests, denied, batch)
        self.tick += 1
        return batch

    def _apply_quarantine(self, decisions: Iterable[tuple[str, bool]]) -> None:
        for agent, quarantined in decisions:
            i = self.index.get(agent)
            if i is None:
                self.ignored_inputs += 1
            else:
                self.quarantined[i] = quarantined
                self.quarantined_since[i] = self.tick if quarantined else -1
                if quarantined:
                    # The resource manager enforces a quarantine too: what the agent holds goes back to
                    # the pool at once, instead of starving others until its leases expire.
                    self.manager.revoke(i)

    def _apply_healing(self, actions: Iterable[tuple[str, str]], k: int) -> None:
        """Each action cures the agent's current infection with its probability, after the delay. Draws come from a
        generator of their own per agent and action count, so healing changes no other random draw of the run."""
        delay_ticks = math.ceil(self._healing.delay / self.scenario.tick - 1e-9)
        for agent, action in actions:
            i = self.index.get(agent)
            if i is None:
                self.ignored_inputs += 1
                continue
            self.healing_received += 1
            self._heal_draws[i] += 1
            mode = int(self.mode[i])
            if mode == 0:
                continue
            p = self._healing.cures.get(action, {}).get(chaos.MODES[mode - 1], 0.0)
            draw = np.random.default_rng([self.scenario.seed, 4243, i, int(self._heal_draws[i])]).random()
            if draw < p:
                heapq.heappush(self._cures, (k + delay_ticks, int(self._heal_draws[i]), i, action))

    def _run_cures(self, k: int, batch: TickBatch) -> None:
        while self._cures and self._cures[0][0] <= k:
            _, _, i, action = heapq.heappop(self._cures)
            index = int(self.outbreak_of[i])
            if self.mode[i] == 0 or index < 0:
                continue  # already cured, or its infection ended on schedule
            outbreak = next(o for o in self._outbreaks if o.index == index)
            self.mode[i], self.outbreak_of[i], self.target[i] = 0, -1, self.primary[i]
            self._truth(outbreak, np.array([i]), "end", self.sim_time_s, batch, cured_by=action)
            batch.cured += 1

    def _run_chaos(self, k: int, batch: TickBatch) -> None:
        for outbreak in self._outbreaks:
            if outbreak.end_tick == k:
                members = np.flatnonzero(self.outbreak_of == outbreak.index)
                self.mode[members] = 0
                self.outbreak_of[members] = -1
                self.target[members] = self.primary[members]
                self._truth(outbreak, members, "end", outbreak.end_s or 0.0, batch)
            if outbreak.start_tick == k:
                members = chaos.choose_agents(self.scenario, outbreak, self.mode == 0)
                # An agent named by a newer entry leaves its older infection: close that one in the truth.
                for earlier in self._outbreaks:
                    moved = members[self.outbreak_of[members] == earlier.index]
                    if len(moved):
                        self._truth(earlier, moved, "end", outbreak.start_s, batch)
                self.mode[members] = chaos.MODE_CODE[outbreak.spec.mode]
                self.outbreak_of[members] = outbreak.index
                self._dial(outbreak.spec, members, k)
                if outbreak.spec.resource is not None:
                    self.target[members] = self.resource_index[outbreak.spec.resource]
                self._truth(outbreak, members, "start", outbreak.start_s, batch)

    def _upstream_degradation(self) -> np.ndarray:
        """How degraded each agent's upstreams are to it. A quarantined upstream is failed over to a healthy
        replica `failover_s` after its quarantine: from then on it no longer drags its dependents down."""
        ups = self.degradation[self.upstream]
        failover = self.scenario.agents.failover_s
        if failover is not None:
            since = self.quarantined_since[self.upstream]
            ups = np.where((since >= 0) & ((self.tick - since) * self.scenario.tick >= failover), 0.0, ups)
        return ups.mean(axis=1)

    def _dial(self, spec: ChaosSpec, members: np.ndarray, tick: int) -> None:
        default_factor = FLOOD_FACTOR if spec.mode == "flood" else LATENCY_FACTOR
        self.factor[members] = spec.factor if spec.factor is not None else default_factor
        self.error_rise[members] = spec.error_rise if spec.error_rise is not None else ERROR_RISE
        share, prio, hold_s = CLAIM_SHAPE.get(spec.mode, (0.0, 1, 1.0))
        self.claim_share[members] = spec.share if spec.share is not None else share
        self.claim_priority[members] = spec.priority if spec.priority is not None else prio
        self.claim_hold[members] = spec.hold_s if spec.hold_s is not None else hold_s
        self.onset_tick[members] = tick
        self.ramp_ticks[members] = spec.ramp_s / self.scenario.tick

    def _strength(self) -> np.ndarray:
        """Per agent, how far its infection has grown (0..1): 1 at once, or linearly over its ramp."""
        grown = (self.tick - self.onset_tick + 1) / np.maximum(self.ramp_ticks, 1e-9)
        return np.where(self.ramp_ticks > 0, np.clip(grown, 0.0, 1.0), 1.0)

    def _truth(
        self, outbreak: chaos.Outbreak, members: np.ndarray, phase: str, at_s: float, batch: TickBatch,
        cured_by: str | None = None,
    ) -> None:  # fmt: skip
        for i in members.tolist():
            infection = f"{self.fingerprint[:8]}-c{outbreak.index}-{self.ids[i]}"
            event = GroundTruth(
                event_id=self._ids.make(infection, phase),
                occurred_at=self._clock.at(at_s),
                run_id=self.run_id,
                producer=PRODUCER,
                agent_id=self.ids[i],
                infection_id=infection,
                mode=outbreak.spec.mode,
                phase=phase,
                scenario=self.scenario.name,
                cured_by=cured_by,
            )
            batch.truth.append((TRUTH.key_of(event), encode(event)))

    # --- intentions -------------------------------------------------------------------------------------------

    def _intentions(self, t0: float, t1: float, t0_ms: int) -> dict[str, np.ndarray]:
        """This tick's releases and acquisitions, as columns sorted by time then agent."""
        rng, n = self._rng, self.n
        silent = self.quarantined & (self.mode != chaos.MODE_CODE["defiant"])
        # Bursts: a two-state chain per agent.
        flip = rng.random(n)
        self.bursting = np.where(self.bursting, flip >= self.burst_off, flip < self.burst_on)
        rate = self.rate * np.where(self.bursting, self.burst_factor, 1.0)
        strength = self._strength()
        flood = 1.0 + (self.factor - 1.0) * strength
        rate = np.where(self.mode == chaos.MODE_CODE["flood"], rate * flood, rate)
        claiming = np.isin(self.mode, [chaos.MODE_CODE[m] for m in chaos.CLAIM_MODES])
        rate = np.where(claiming, CLAIM_RATE, rate)
        counts = rng.poisson(rate * (t1 - t0))
        agent = np.repeat(np.arange(n), counts)
        total = len(agent)
        offset = rng.integers(0, self._tick_ms, total)
        amount = np.maximum(1.0, np.round(rng.gamma(2.0, self.amount[agent] / 2.0)))
        hold = np.round(rng.exponential(self.hold[agent]) + 0.5, 1)
        priority = np.clip(self.priority[agent] + rng.integers(-1, 2, total), 1, 10)
        elsewhere = rng.integers(0, len(self.resource_names), total)
        resource = np.where(rng.random(total) < PRIMARY_SHARE, self.target[agent], elsewhere)
        for mode in CLAIM_SHAPE:
            rows = self.mode[agent] == chaos.MODE_CODE[mode]
            who = agent[rows]
            resource[rows] = self.target[who]
            share = self.claim_share[who] * strength[who]
            amount[rows] = np.maximum(0.1, np.round(share * self.capacity[resource[rows]], 1))
            priority[rows] = self.claim_priority[who]
            hold[rows] = self.claim_hold[who]
        keep = ~silent[agent]
        acquire = {
            "agent": agent[keep], "at_ms": t0_ms + offset[keep], "resource": resource[keep], "amount": amount[keep],
            "priority": priority[keep], "hold": hold[keep], "release": np.zeros(int(keep.sum()), dtype=bool),
        }
        return _sorted(_concat(self._due_releases(t0, t1, silent), acquire))

    def _due_releases(self, t0: float, t1: float, silent: np.ndarray) -> dict[str, np.ndarray]:
        """Releases of granted leases that fall due this tick; a silent agent lets its leases lapse instead."""
        due: list[tuple[float, int, int, int, float]] = []
        while self._releases and self._releases[0][0] < t1:
            entry = heapq.heappop(self._releases)
            if not silent[entry[2]]:
                due.append(entry)
        m = len(due)
        return {
            "agent": np.array([d[2] for d in due], dtype=np.int64),
            "at_ms": np.array([round(max(d[0], t0) * 1000) for d in due], dtype=np.int64),
            "resource": np.array([d[3] for d in due], dtype=np.int64),
            "amount": np.array([d[4] for d in due], dtype=float),
            "priority": self.priority[np.array([d[2] for d in due], dtype=np.int64)] if m else np.zeros(0, np.int64),
            "hold": np.zeros(m),
            "release": np.ones(m, dtype=bool),
        }

    def _decide_own(self, rows: dict[str, np.ndarray], requests: np.ndarray, denied: np.ndarray, b: TickBatch) -> None:
        """Without a gate the resource manager takes the fleet's own intentions straight away."""
        release = rows["release"]
        for i, r, amt in zip(rows["agent"][release].tolist(), rows["resource"][release].tolist(),
                             rows["amount"][release].tolist(), strict=True):
            self.manager.release(i, r, amt)
        acq = ~release
        claims = [
            Claim(i, r, amt, p, at / 1000, h)
            for i, r, amt, p, at, h in zip(rows["agent"][acq].tolist(), rows["resource"][acq].tolist(),
                                           rows["amount"][acq].tolist(), rows["priority"][acq].tolist(),
                                           rows["at_ms"][acq].tolist(), rows["hold"][acq].tolist(), strict=True)
        ]
        self._settle_claims(claims, requests, denied, b)

    def _admit(self, admitted: Iterable[Intention], requests: np.ndarray, denied: np.ndarray, b: TickBatch) -> None:
        claims = []
        for intention in admitted:
            i, r = self.index.get(intention.agent_id), self.resource_index.get(intention.resource)
            if i is None or r is None:
                self.ignored_inputs += 1
                continue
            at = (intention.occurred_at - self.scenario.start).total_seconds()
            if intention.action == "release":
                self.manager.release(i, r, intention.amount)
            else:
                claims.append(Claim(i, r, intention.amount, intention.priority, at, intention.hold_s or 1.0))
        self._settle_claims(claims, requests, denied, b)

    def _settle_claims(self, claims: list[Claim], requests: np.ndarray, denied: np.ndarray, b: TickBatch) -> None:
        for claim, granted in zip(claims, self.manager.decide(claims), strict=True):
            requests[claim.agent] += 1
            if granted:
                b.granted += 1
                self._release_n += 1
                heapq.heappush(
                    self._releases, (claim.at + claim.hold_s, self._release_n, claim.agent, claim.resource, claim.amount)
                )
            else:
                b.denied += 1
                denied[claim.agent] += 1

    def _emit_intentions(self, rows: dict[str, np.ndarray], batch: TickBatch) -> None:
        agents = rows["agent"]
        # Per-agent sequence numbers, in the order the rows are emitted.
        by_agent = np.argsort(agents, kind="stable")
        sorted_agents = agents[by_agent]
        first = np.searchsorted(sorted_agents, sorted_agents, side="left")
        rank = np.empty(len(agents), dtype=np.int64)
        rank[by_agent] = np.arange(len(agents)) - first
        seq = self.seq[agents] + rank
        np.add.at(self.seq, agents, 1)
        ids, fmt, clock, out = self._ids, self._templates.intention, self._clock, batch.intentions
        for i, at, r, amt, p, h, rel, s in zip(
            agents.tolist(), rows["at_ms"].tolist(), rows["resource"].tolist(), rows["amount"].tolist(),
            rows["priority"].tolist(), rows["hold"].tolist(), rows["release"].tolist(), seq.tolist(), strict=True,
        ):
            name = self.ids[i]
            value = fmt(
                ids.make(name, "i", str(s)), clock.iso_ms(at), self.id_json[i], "release" if rel else "acquire",
                self.resource_json[r], amt, p, None if rel else h,
            )
            out.append((self.keys[i], value))

    # --- vitals -----------------------------------------------------------------------------------------------

    def _vitals(self, t1_ms: int, requests: np.ndarray, denied: np.ndarray, batch: TickBatch) -> None:
        rng, n, mode = self._rng, self.n, self.mode
        code = chaos.MODE_CODE
        asked = requests > 0
        share_denied = np.divide(denied, requests, out=np.zeros(n), where=asked)
        self.stress = np.where(asked, 0.6 * self.stress + 0.4 * share_denied, 0.9 * self.stress)
        self.backlog = 0.7 * self.backlog + 3.0 * denied
        strength = self._strength()
        # An infection's own trouble grows with its strength relative to the classic one (a mild one
        # hurts its agent, and through it its dependents, less).
        latency_x = 1.0 + (self.factor - 1.0) * strength
        relative = np.select(
            [mode == code["latency"], mode == code["flood"], mode == code["errors"]],
            [(latency_x - 1.0) / (LATENCY_FACTOR - 1.0), (latency_x - 1.0) / (FLOOD_FACTOR - 1.0),
             self.error_rise * strength / ERROR_RISE],
            strength,
        )
        relative = np.clip(relative, 0.0, 1.0)
        own_trouble = np.select(
            [(mode == code["latency"]) | (mode == code["errors"]), mode == code["flood"]], [1.0, 0.5], 0.0
        ) * relative
        upstream = self._upstream_degradation() if self.upstream.shape[1] else np.zeros(n)
        g = np.clip(self.stress + self.coupling * upstream + own_trouble, 0.0, 1.0)
        deceptive = mode == code["deceptive"]
        g = np.where(deceptive, 0.0, g)  # looks perfectly healthy
        self.degradation = g
        noise_lat, noise_err, noise_q, noise_cpu, noise_rps = (
            rng.lognormal(0.0, 0.08, n), rng.normal(0.0, 0.002, n), rng.normal(0.0, 0.5, n),
            rng.normal(0.0, 0.02, n), rng.lognormal(0.0, 0.05, n),
        )
        latency = self.base_latency * (1.0 + 4.0 * g) * noise_lat * np.where(mode == code["latency"], latency_x, 1.0)
        errors = self.base_errors + 0.25 * g + noise_err + np.where(
            mode == code["errors"], self.error_rise * strength, 0.0
        )
        queue = self.base_queue + 40.0 * g + np.where(deceptive, 0.0, self.backlog) + noise_q
        cpu = self.base_cpu + 0.3 * g + noise_cpu + np.select(
            [mode == code["flood"], mode == code["hoarder"]], [0.4, 0.25], 0.0
        ) * relative
        rps = self.base_rps * (1.0 - 0.5 * g) * noise_rps * np.where(mode == code["flood"], latency_x, 1.0)
        columns = [
            _clean(latency, 0.0, None, 2), _clean(errors, 0.0, 1.0, 4), _clean(queue, 0.0, None, 2),
            _clean(cpu, 0.0, 1.0, 4), _clean(rps, 0.0, None, 2),
        ]
        healthy = mode == 0
        suffering = healthy & (g > DEGRADED)
        batch.healthy = int(healthy.sum())
        batch.suffering_healthy = int(suffering.sum())
        self.ever_infected |= ~healthy
        self.suffering_ticks += suffering
        at = self._clock.iso_ms(t1_ms)
        tick = str(self.tick)
        ids, fmt, out = self._ids, self._templates.vitals, batch.vitals
        # What an agent sees of its upstreams: how degraded they are, as a latency-weighted health check would.
        ups: list[float | None] = _clean(upstream, 0.0, 1.0, 3) if self.upstream.shape[1] else [None] * n
        for name, key, aid, lat, err, q, c, r, u in zip(
            self.ids, self.keys, self.id_json, *columns, ups, strict=True
        ):
            out.append((key, fmt(ids.make(name, "v", tick), at, aid, lat, err, q, c, r, u)))


def _clean(values: np.ndarray, low: float, high: float | None, decimals: int) -> list[float]:
    # Adding 0.0 turns -0.0 into 0.0, which the codec would otherwise write as "-0.0".
    return (np.round(np.clip(values, low, high), decimals) + 0.0).tolist()


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _sorted(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.lexsort((~rows["release"], rows["agent"], rows["at_ms"]))
    return {k: v[order] for k, v in rows.items()}
