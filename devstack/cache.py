"""The state cache: what each service's database holds, read once per run and kept current.

States come from one ``stack_state`` process per service. After a step writes, the step
updates the cached state from what it reported and marks it stale, so later decisions need no
new process and ``verify`` re-reads only what changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from devstack import registry
from devstack.config import Settings
from devstack.state import ServiceState, read, read_all


@dataclass
class StateCache:
    """Each service's last known state, and whether it was read since the last write."""

    settings: Settings
    _states: dict[str, ServiceState] = field(default_factory=dict)
    _fresh: set[str] = field(default_factory=set)

    def states(
        self, services: Iterable[registry.Service] = registry.SERVICES, fresh: bool = False
    ) -> dict[str, ServiceState]:
        """Return the states of ``services``; ``fresh`` re-reads those a step has written to."""
        wanted = tuple(services)
        missing = tuple(
            s for s in wanted if s.name not in self._states or (fresh and s.name not in self._fresh)
        )
        if len(missing) > 1:
            self._states.update(read_all(self.settings, missing))
        elif missing:
            self._states[missing[0].name] = read(self.settings, missing[0])
        self._fresh.update(s.name for s in missing)
        return {s.name: self._states[s.name] for s in wanted}

    def state(self, service: registry.Service) -> ServiceState:
        return self.states((service,))[service.name]

    def forget(self, service: registry.Service) -> None:
        self._states.pop(service.name, None)
        self._fresh.discard(service.name)

    def touched(self, service: registry.Service) -> ServiceState:
        """Return a cached state for a step to update after it wrote; it is stale from now on."""
        self._fresh.discard(service.name)
        return self._states[service.name]

    def synced(self, delivered_all: bool) -> None:
        """Update states after a sync, so the seeds that follow need no new process."""
        publisher = registry.publisher()
        if delivered_all and publisher.name in self._states:
            state = self.touched(publisher)
            state.delivered_events += state.pending_event_total
            state.pending_events = {}
        else:
            self.forget(publisher)
        for consumer in registry.consumers():
            if consumer.name in self._states:
                self.touched(consumer).processed_events += 1  # no longer an empty mirror

    def last_seeds(self) -> dict[str, dict[str, int] | None]:
        return {name: state.last_seed for name, state in self.states().items()}

    def prime(self, states: dict[str, ServiceState]) -> None:
        """Take states known to be current (the verified record's, while its fingerprint holds)."""
        self._states.update(states)
        self._fresh.update(states)

    def counts(self) -> dict[str, dict[str, int] | None]:
        return {name: state.counts for name, state in self.states().items()}
