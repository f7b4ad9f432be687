#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl), KWOK and Helm from the Go module proxy into a cache outside the checkout, keyed by
# version. Each binary is built only when missing, so only a machine's first run pays.
# Prints the cache's bin directory on the last line of stdout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${KEYTURN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keyturn}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=${GOTOOLCHAIN:-local}

log() { printf '[build-binaries %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { log "Go is required (https://go.dev/dl/); none found on PATH"; exit 1; }

check_pin() { # module dir, module path, version
  grep -qE "^require $2 $3\$" "$here/gobuild/$1/go.mod" ||
    { log "hack/gobuild/$1/go.mod does not require $2 $3 (versions.env); update both together"; exit 1; }
}
check_pin kubernetes k8s.io/kubernetes "$KUBERNETES_VERSION"
check_pin etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"

# build NAME DEST_DIR CMD...: runs CMD (which writes DEST_DIR/NAME.tmp) unless NAME exists.
build() {
  local name=$1 dest=$2; shift 2
  if [[ -x "$dest/$name" ]]; then log "$name: cached in $dest"; return; fi
  mkdir -p "$dest"
  log "$name: building (first run on this machine only; a cold build takes minutes)..."
  local start=$SECONDS
  "$@"
  mv -f "$dest/$name.tmp" "$dest/$name"
  log "$name: built in $((SECONDS - start))s"
}

k8s_dir="$cache/kubernetes-$KUBERNETES_VERSION"
kv=${KUBERNETES_VERSION#v}
k8s_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
 -X k8s.io/component-base/version.gitMajor=${kv%%.*} \
 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$kv") \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION \
 -X k8s.io/client-go/pkg/version.gitMajor=${kv%%.*} \
 -X k8s.io/client-go/pkg/version.gitMinor=$(cut -d. -f2 <<<"$kv") \
 -X k8s.io/client-go/pkg/version.gitTreeState=clean"
go_k8s() { (cd "$here/gobuild/kubernetes" && go build -trimpath -ldflags "$k8s_ldflags" -o "$k8s_dir/$1.tmp" "k8s.io/kubernetes/cmd/$1"); }
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build "$cmd" "$k8s_dir" go_k8s "$cmd"
done

etcd_dir="$cache/etcd-$ETCD_VERSION"
go_etcd() { (cd "$here/gobuild/etcd" && go build -trimpath -ldflags "-s -w" -o "$etcd_dir/etcd.tmp" go.etcd.io/etcd/server/v3); }
build etcd "$etcd_dir" go_etcd

kwok_dir="$cache/kwok-$KWOK_VERSION"
go_kwok() {
  (cd "$kwok_dir" && GOBIN="$kwok_dir/gobin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  mv "$kwok_dir/gobin/kwok" "$kwok_dir/kwok.tmp" && rmdir "$kwok_dir/gobin"
}
build kwok "$kwok_dir" go_kwok
# KWOK's "fast" stages ship as YAML in its module; join them into one --config file. The set is
# what its kustomize/stage/fast/kustomization.yaml lists: without node/heartbeat-with-lease the
# node-lifecycle controller would mark the Node unreachable and evict its Pods.
# Downloaded from a dir outside any Go module (and workspace), so no go.mod/go.sum is touched;
# regenerated when missing or made by an older version of this script.
if ! grep -qs 'name: node-heartbeat-with-lease' "$kwok_dir/stages.yaml"; then
  moddir=$(cd "$kwok_dir" && env -u GOFLAGS GOWORK=off go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d "$moddir/kustomize/stage" ]] || { log "kwok: no kustomize/stage in module dir '$moddir'"; exit 1; }
  : >"$kwok_dir/stages.yaml.tmp"
  for d in node/fast node/heartbeat-with-lease pod/fast; do
    for f in "$moddir/kustomize/stage/$d"/*.yaml; do
      [[ "$(basename "$f")" == kustomization.yaml ]] && continue
      { echo "---"; cat "$f"; } >>"$kwok_dir/stages.yaml.tmp"
    done
  done
  for kind in Node Pod; do
    grep -qE "^    kind: $kind\$" "$kwok_dir/stages.yaml.tmp" ||
      { log "kwok: no $kind stage found under $moddir/kustomize/stage"; exit 1; }
  done
  mv "$kwok_dir/stages.yaml.tmp" "$kwok_dir/stages.yaml"
  log "kwok: stages written to $kwok_dir/stages.yaml"
fi

helm_dir="$cache/helm-$HELM_VERSION"
go_helm() {
  (cd "$helm_dir" && GOBIN="$helm_dir/gobin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  mv "$helm_dir/gobin/helm" "$helm_dir/helm.tmp" && rmdir "$helm_dir/gobin"
}
build helm "$helm_dir" go_helm

# One directory of symlinks, so callers need a single PATH entry.
bin="$cache/bin-k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
mkdir -p "$bin"
for f in "$k8s_dir"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl} "$etcd_dir/etcd" "$kwok_dir/kwok" "$kwok_dir/stages.yaml" "$helm_dir/helm"; do
  ln -sfn "$f" "$bin/$(basename "$f")"
done
log "all binaries ready in $bin"
echo "$bin"
