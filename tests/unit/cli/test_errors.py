"""cli/errors.py: API errors mapped onto exit codes and messages that name the refused verb."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from keyturn.cli.errors import ApiAction, from_api_exception
from unit.cli.samples import GET, PATCH_STATUS, api_error


@pytest.mark.parametrize(
    ("exc", "action", "code", "fragments"),
    [
        (
            api_error(404, 'jwtkeysets "api-keys" not found'),
            GET,
            3,
            ['JwtKeySet "api-keys" not found', '"auth"'],
        ),
        (
            api_error(404, 'configmaps "api-keys-jwks" not found'),
            ApiAction("get", "configmaps", "auth", "api-keys-jwks", group=""),
            3,
            ['ConfigMap "api-keys-jwks" not found'],
        ),
        (api_error(404, "the server could not find the requested resource"), GET, 3, ["CRD installed"]),
        (
            api_error(403, 'cannot patch resource "jwtkeysets/status"'),
            PATCH_STATUS,
            5,
            [
                "refused to patch jwtkeysets/status",
                "emergency-responder",
                "kubectl auth can-i patch jwtkeysets.keyturn.dev --subresource=status -n auth",
            ],
        ),
        (
            api_error(403, 'cannot patch resource "jwtkeysets"'),
            ApiAction("patch", "jwtkeysets", "auth", "api-keys"),
            5,
            ["refused to patch jwtkeysets (API group keyturn.dev)", "edit ClusterRole", "RoleBinding"],
        ),
        (
            api_error(403, 'cannot list resource "jwtkeysets"'),
            ApiAction("list", "jwtkeysets", None),
            5,
            ["in any namespace", "view ClusterRole", "ClusterRoleBinding", "--all-namespaces"],
        ),
        (api_error(401, "Unauthorized"), GET, 5, ["credentials"]),
        (api_error(422, "status.emergency.requestId must be"), PATCH_STATUS, 1, ["requestId must be"]),
        (api_error(409, "conflict"), GET, 1, ["conflict"]),
        (api_error(500, "etcd is sad"), GET, 1, ["500", "etcd is sad"]),
    ],
)
def test_api_errors_map_to_exit_codes(
    exc: ApiException, action: ApiAction, code: int, fragments: list[str]
) -> None:
    error = from_api_exception(exc, action)
    assert error.code == code
    for fragment in fragments:
        assert fragment in error.message
