"""rollout.py: Rollouts is total; a failing, hanging or hostile API server is a degraded result, never
an exception.

The Kubernetes client talks real HTTP to a small local server that plays the API server's part.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from kubernetes import client

from keyturn.domain.annotations import revision_annotation
from keyturn.domain.egress import EgressPolicy
from keyturn.domain.model import Ring
from keyturn.domain.propagation import Share
from keyturn.domain.reasons import Reason
from keyturn.domain.targets import Role, TargetState, revisions
from keyturn.rollout import RolloutResult, Rollouts
from planning import spec, step

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SPEC = spec(rollout={"timeout": "1m", "pauseBetween": "0s"})
RING = step(SPEC, Ring(), NOW).ring
LIST_PATH = "/apis/apps/v1/namespaces/ns/deployments"
OTHER_KINDS = ("/apis/apps/v1/namespaces/ns/statefulsets", "/apis/apps/v1/namespaces/ns/daemonsets")


def item(name: str, annotations: dict[str, str], revision: str | None = None) -> dict[str, Any]:
    template = {"annotations": {revision_annotation("keys"): revision}} if revision else {}
    return {
        "metadata": {"name": name, "namespace": "ns", "generation": 1, "annotations": annotations},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": template, "spec": {"containers": []}},
        },
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
    }


class FakeApiServer:
    """Answers LIST with `items` (or `list_status`), PATCH with `patch_status`; records the patches."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.list_status = 200
        self.patch_status = 200
        self.hang = False
        self.patches: list[tuple[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        if self.hang:
            await asyncio.Event().wait()
        if request.method == "GET" and request.path == LIST_PATH:
            if self.list_status != 200:
                return web.json_response(
                    {"kind": "Status", "code": self.list_status}, status=self.list_status
                )
            return web.json_response({"kind": "DeploymentList", "apiVersion": "apps/v1", "items": self.items})
        if request.method == "GET" and request.path in OTHER_KINDS:
            return web.json_response({"kind": "List", "apiVersion": "apps/v1", "items": []})
        if request.method == "PATCH":
            self.patches.append((request.path.rsplit("/", 1)[1], await request.json()))
            if self.patch_status != 200:
                return web.json_response(
                    {"kind": "Status", "code": self.patch_status}, status=self.patch_status
                )
            name = request.path.rsplit("/", 1)[1]
            return web.json_response(next(i for i in self.items if i["metadata"]["name"] == name))
        return web.json_response({}, status=404)


@asynccontextmanager
async def api_server(fake: FakeApiServer) -> AsyncIterator[Any]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{runner.addresses[0][1]}")
    configuration.retries = False
    api = client.ApiClient(configuration)
    try:
        yield api
    finally:
        await runner.cleanup()
        api.close()


def pass_with(
    fake: FakeApiServer, configure: Callable[[Rollouts], None] = lambda r: None
) -> tuple[RolloutResult, RolloutResult]:
    """observe then advance, as the executor does; both must return."""

    async def go() -> tuple[RolloutResult, RolloutResult]:
        async with api_server(fake) as api:
            rollouts = Rollouts(api, EgressPolicy())
            configure(rollouts)
            observed = await rollouts.observe({}, SPEC, RING, NOW)
            return observed, await rollouts.advance({}, SPEC, RING, NOW, observed)

    return asyncio.run(go())


def test_a_failing_list_holds_activations_but_raises_nothing() -> None:
    fake = FakeApiServer()
    fake.list_status = 500
    observed, advanced = pass_with(fake)
    assert observed.degraded is not None and observed.degraded[0] is Reason.TARGETS_UNREADABLE
    assert "HTTP 500" in observed.degraded[1]
    # Unknown targets: verifiers may not count as ready, and the signer wave is not over.
    assert not observed.verifiers_ready and not observed.signers_ready and observed.signer_targets
    assert advanced.degraded == observed.degraded and fake.patches == []


def test_a_hanging_api_server_times_out() -> None:
    fake = FakeApiServer()
    fake.hang = True

    def short(rollouts: Rollouts) -> None:
        rollouts.workloads.request_timeout = 0.3

    observed, _ = pass_with(fake, short)
    assert observed.degraded is not None and observed.degraded[0] is Reason.TARGETS_UNREADABLE


def test_hostile_targets_are_reported_and_the_others_roll() -> None:
    fake = FakeApiServer()
    keyset = {"keyturn.dev/keyset": "keys"}
    fake.items = [
        item("bad-role", {**keyset, "keyturn.dev/role": "admin"}),
        item("bad-stamp", {**keyset, "keyturn.dev/role": "signer", "keyturn.dev/stamped-keys": "yesterday"}),
        item(
            "long-host",
            {**keyset, "keyturn.dev/role": "verifier", "keyturn.dev/health-url": f"http://{'a' * 64}.x/h"},
        ),
        item("other", {"keyturn.dev/keyset": "other-keys", "keyturn.dev/role": "admin"}),
    ]
    observed, advanced = pass_with(fake)
    assert observed.degraded is not None and observed.degraded[0] is Reason.BAD_TARGET
    message = observed.degraded[1]
    assert "deployment bad-role: keyturn.dev/role 'admin'" in message
    assert "deployment bad-stamp: keyturn.dev/stamped-keys 'yesterday'" in message
    assert "deployment long-host: keyturn.dev/health-url" in message and "longer than 63" in message
    assert "other" not in message.replace("others", "")
    assert [t.name for t in observed.targets] == ["bad-stamp", "long-host"]
    assert [e.reason for e in observed.events] == [Reason.BAD_TARGET]
    # The signer with the damaged stamp is restarted first, as if it had never been stamped.
    assert [name for name, _ in fake.patches] == ["bad-stamp"]
    assert advanced.view.targets[0].name == "bad-stamp"


def test_a_refused_patch_is_the_targets_failure() -> None:
    fake = FakeApiServer()
    fake.items = [item("api", {"keyturn.dev/keyset": "keys", "keyturn.dev/role": "signer"})]
    fake.patch_status = 403
    observed, advanced = pass_with(fake)
    assert observed.degraded is None
    assert advanced.degraded is not None and advanced.degraded[0] is Reason.TARGET_FAILED
    assert "deployment api: restarting it failed (HTTP 403" in advanced.degraded[1]
    assert [e.reason for e in advanced.events] == [Reason.TARGET_FAILED]
    assert [name for name, _ in fake.patches] == ["api"]


def test_a_target_deleted_before_its_patch_is_no_fault() -> None:
    fake = FakeApiServer()
    fake.items = [item("api", {"keyturn.dev/keyset": "keys", "keyturn.dev/role": "signer"})]
    fake.patch_status = 404
    _, advanced = pass_with(fake)
    assert advanced.degraded is None and advanced.events == []


def test_a_ready_target_with_a_failing_mark_is_reported() -> None:
    desired = revisions(RING)
    fake = FakeApiServer()
    fake.items = [
        item(
            "api",
            {
                "keyturn.dev/keyset": "keys",
                "keyturn.dev/role": "both",
                "keyturn.dev/stamped-keys": "2026-05-01T11:59:00Z",
            },
            revision=desired[Role.BOTH],
        )
    ]
    fake.patch_status = 500
    _, advanced = pass_with(fake)
    assert (
        advanced.degraded is not None
        and "recording that it passed the gate failed (HTTP 500" in advanced.degraded[1]
    )
    body = json.dumps(fake.patches[0][1])
    assert "keyturn.dev/ready-keys" in body


GATED = spec(
    rollout={"timeout": "1m", "pauseBetween": "0s"},
    propagation={"prometheus": {"address": "http://prometheus:9090"}},
)


def gated_pass(fake: FakeApiServer, shares: dict[str, Share]) -> tuple[RolloutResult, RolloutResult]:
    async def go() -> tuple[RolloutResult, RolloutResult]:
        async with api_server(fake) as api:
            rollouts = Rollouts(api, EgressPolicy())
            observed = await rollouts.observe({}, GATED, RING, NOW, shares)
            return observed, await rollouts.advance({}, GATED, RING, NOW, observed)

    return asyncio.run(go())


def reloading(name: str, role: str) -> dict[str, Any]:
    annotations = {"keyturn.dev/keyset": "keys", "keyturn.dev/role": role, "keyturn.dev/reload": "none"}
    return item(name, annotations)


def test_reload_none_verifiers_wait_for_the_share_of_the_next_kid_in_the_view_only() -> None:
    assert RING.next is not None
    fake = FakeApiServer()
    fake.items = [reloading("web", "verifier")]
    observed, advanced = gated_pass(fake, {RING.next.kid: Share(NOW, 0.5)})
    # The planner's side: the gate holds the activation itself, with its own reason.
    assert observed.verifiers_ready
    (view,) = advanced.view.targets
    assert view.state is TargetState.PENDING and advanced.view.in_progress
    assert fake.patches == []  # never restarted
    _, accepted = gated_pass(fake, {RING.next.kid: Share(NOW, 1.0)})
    assert accepted.view.targets[0].state is TargetState.READY and not accepted.view.in_progress


def test_reload_none_signers_count_once_they_accept_the_current_kid() -> None:
    assert RING.current is not None
    fake = FakeApiServer()
    fake.items = [reloading("api", "signer")]
    below, _ = gated_pass(fake, {RING.current.kid: Share(NOW, 0.5)})
    assert not below.signers_ready
    above, _ = gated_pass(fake, {RING.current.kid: Share(NOW, 1.0)})
    assert above.signers_ready
    unasked, _ = gated_pass(fake, {})
    assert unasked.signers_ready  # not asked about: not in question
    assert fake.patches == []
