"""kube-apiserver's external JWT signer API (k8s.io/externaljwt apis/v1), generated: never edit.

`make externaljwt-stubs` (hack/externaljwt_stubs.py) copies the pinned api.proto here and
regenerates the modules; tests/unit/sasigner/test_stubs.py fails when they drift from it.
"""
