"""The running components: started stage by stage from the table, stopped in reverse.

Like controller-runtime's ``controlplane.ControlPlane``, but generic over the table: it knows
no component by name, only stages, flag builders and health checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

from localcluster.components import COMPONENTS, STAGES, Component, Context, FlagEdits, by_name, in_stage
from localcluster.errors import ClusterError
from localcluster.process import Deadline, Probe, Process, ProcessSpec, stop_together, wait_until


class ControlPlane:
    """The processes of one cluster, with the flag edits it applies to the table."""

    def __init__(
        self,
        context: Context,
        *,
        deadline: Deadline,
        edits: Mapping[str, FlagEdits],
        components: Sequence[Component] = COMPONENTS,
    ) -> None:
        self.context = context
        self._deadline = deadline  # bounds the whole start, on top of each component's own timeout
        self._edits = dict(edits)
        self._components = list(components)
        self.processes: dict[str, Process] = {}  # what has been launched, in launch order

    def launch(self, stage: str) -> None:
        """Launches a stage's components side by side, without waiting for them."""
        for component in in_stage(stage, self._components):
            self._launch(component)

    def await_ready(self, stage: str) -> None:
        """Waits for each of a stage's components to pass its health check."""
        for component in in_stage(stage, self._components):
            self.processes[component.name].await_ready(self._deadline, self.processes.values())

    def start(self, stage: str) -> None:
        self.launch(stage)
        self.await_ready(stage)

    def wait(self, what: str, probe: Probe, *, blame: Sequence[str]) -> None:
        """Waits for a condition of the whole cluster; ``blame`` names the logs a timeout quotes."""
        blamed = [self.processes[name] for name in blame if name in self.processes]
        wait_until(what, probe, deadline=self._deadline, watched=self.processes.values(), blamed=blamed)

    def restart(self, name: str, edits: FlagEdits, grace: float) -> None:
        """Stops one component and starts it again, with the table's flags changed by ``edits``.

        Its ports, credentials and data stay the same, so its clients reconnect by themselves.
        """
        if name not in self.processes:
            raise ClusterError(f"no component {name!r} is running; running: {', '.join(self.processes)}")
        component = by_name(self._components)[name]
        edits.apply(name, component.args(self.context))  # a bad edit fails before the stop
        stop_together([self.processes[name]], grace)
        self._edits[name] = edits
        proc = self._launch(component)
        proc.await_ready(Deadline.after(component.start_timeout), [proc])

    def stop(self, grace: float) -> None:
        """Stops every launched process, stage by stage in reverse.

        Clients first, then the apiserver, then etcd: a server that still has clients
        connected drains them gracefully, which for etcd with the apiserver's watches open
        means waiting out its whole grace period.
        """
        stage_of = {c.name: c.stage for c in self._components}
        for stage in reversed(STAGES):
            stop_together([p for name, p in self.processes.items() if stage_of[name] == stage], grace)
        self.processes = {}

    def dead(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.returncode is not None]

    def spec(self, component: Component) -> ProcessSpec:
        """How to run ``component`` here: the table's flags with this cluster's edits."""
        ctx = self.context
        flags = self._edits.get(component.name, FlagEdits()).apply(component.name, component.args(ctx))
        return ProcessSpec(
            name=component.name,
            argv=[str(ctx.bin_dir / component.binary), *flags],
            log=ctx.workdir / "logs" / f"{component.name}.log",
            cwd=ctx.workdir,
            health=component.health(ctx),
            start_timeout=component.start_timeout,
            env=component.env(ctx),
        )

    def _launch(self, component: Component) -> Process:
        if component.config is not None:
            config = component.config(self.context)
            self.context.config_file(component.name).write_text(yaml.safe_dump(config))
        proc = Process(self.spec(component))
        proc.launch()
        self.processes[component.name] = proc
        return proc
