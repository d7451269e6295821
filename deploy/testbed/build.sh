#!/usr/bin/env bash
# Build (or reuse from the cache) the test bed's control-plane binaries.
#
# Why build at all: the fleet runs real kube-apiserver/controller-manager/scheduler/etcd
# processes under kwok's binary runtime, and this machine reaches only package registries,
# so the binaries come from Go modules pinned in deploy/testbed/tools/go.mod (see
# versions.env and gen-tools-mod.sh). The result lives outside git, keyed by version:
#   ${COMPUTEGRID_CACHE:-$HOME/.cache/computegrid}/k8s-<K8S_VERSION>/bin
# Each binary has its own stamp (versions + go.sum hash + Go version), so a second run is a
# few stat calls and an interrupted cold build resumes where it stopped.
#
# Env: COMPUTEGRID_CACHE (cache root), COMPUTEGRID_TRIMPATH=1 (add -trimpath),
#      COMPUTEGRID_BUILD_P (go build -p, default: Go's own).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
tools="$here/tools"

cache_root="${COMPUTEGRID_CACHE:-$HOME/.cache/computegrid}"
bin="$cache_root/k8s-${K8S_VERSION}/bin"
mkdir -p "$bin"

export GOTOOLCHAIN=local CGO_ENABLED=0
command -v go >/dev/null || { echo "testbed-build: 'go' not found on PATH (need Go >= 1.26)" >&2; exit 1; }
go_version="$(go env GOVERSION)"

flags=(-mod=readonly)
[[ "${COMPUTEGRID_TRIMPATH:-0}" == 1 ]] && flags+=(-trimpath)
[[ -n "${COMPUTEGRID_BUILD_P:-}" ]] && flags+=(-p "$COMPUTEGRID_BUILD_P")

# Contents only: sha256sum of the files would also hash their paths, so every checkout
# (a CI clone, a worktree) would rebuild everything.
sum_hash="$(cat "$tools/go.mod" "$tools/go.sum" | sha256sum | cut -c1-16)"
key="k8s=${K8S_VERSION} etcd=${ETCD_VERSION} kwok=${KWOK_VERSION} go=${go_version} mods=${sum_hash} trimpath=${COMPUTEGRID_TRIMPATH:-0}"

# k8s "v1.36.3" -> major "1", minor "36"
k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X ${p}.gitVersion=${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${k8s_minor}"
  k8s_ldflags+=" -X ${p}.gitTreeState=clean -X ${p}.buildDate=1970-01-01T00:00:00Z"
done
# kwok's consts carry versions without the leading "v".
kwok_ldflags="-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
kwok_ldflags+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"

# name | package | ldflags   (small ones first so a kwok/etcd problem shows in seconds)
targets=(
  "etcd|go.etcd.io/etcd/server/v3|"
  "kwok|sigs.k8s.io/kwok/cmd/kwok|$kwok_ldflags"
  "kwokctl|sigs.k8s.io/kwok/cmd/kwokctl|$kwok_ldflags"
  "kubectl|k8s.io/kubernetes/cmd/kubectl|$k8s_ldflags"
  "kube-apiserver|k8s.io/kubernetes/cmd/kube-apiserver|$k8s_ldflags"
  "kube-controller-manager|k8s.io/kubernetes/cmd/kube-controller-manager|$k8s_ldflags"
  "kube-scheduler|k8s.io/kubernetes/cmd/kube-scheduler|$k8s_ldflags"
)

start=$SECONDS
built=0
echo "testbed-build: $key"
echo "testbed-build: into $bin"
cd "$tools"
for t in "${targets[@]}"; do
  IFS='|' read -r name pkg ldflags <<<"$t"
  stamp="$bin/.stamp-$name"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    echo "  [cached] $name"
    continue
  fi
  t0=$SECONDS
  echo "  [build ] $name ($pkg) ... (elapsed $((SECONDS - start))s)"
  go build "${flags[@]}" -ldflags "-s -w${ldflags:+ $ldflags}" -o "$bin/$name.tmp" "$pkg"
  mv -f "$bin/$name.tmp" "$bin/$name"
  printf '%s' "$key" >"$stamp"
  built=$((built + 1))
  echo "  [done  ] $name in $((SECONDS - t0))s (elapsed $((SECONDS - start))s)"
done

# helm, for the chart test: its own module at a pinned release (its go.mod has no replace
# directives, so `go install pkg@version` works; it must not join tools/go.mod, whose
# k8s.io modules are pinned to the control plane's release).
helm_key="helm=${HELM_VERSION} go=${go_version} trimpath=${COMPUTEGRID_TRIMPATH:-0}"
if [[ -x "$bin/helm" && -f "$bin/.stamp-helm" && "$(cat "$bin/.stamp-helm")" == "$helm_key" ]]; then
  echo "  [cached] helm"
else
  t0=$SECONDS
  echo "  [build ] helm (helm.sh/helm/v3/cmd/helm@${HELM_VERSION}) ... (elapsed $((SECONDS - start))s)"
  helm_tmp="$(mktemp -d)"
  helm_flags=()
  [[ "${COMPUTEGRID_TRIMPATH:-0}" == 1 ]] && helm_flags+=(-trimpath)
  GOBIN="$helm_tmp" go install "${helm_flags[@]}" \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  mv -f "$helm_tmp/helm" "$bin/helm"
  rmdir "$helm_tmp"
  printf '%s' "$helm_key" >"$bin/.stamp-helm"
  built=$((built + 1))
  echo "  [done  ] helm in $((SECONDS - t0))s (elapsed $((SECONDS - start))s)"
fi
"$bin/kubectl" version --client 2>/dev/null | sed -n "1s/^/testbed-build: kubectl /p"  # sed reads it all: no SIGPIPE under pipefail
echo "testbed-build: ${built} built, $(( ${#targets[@]} + 1 - built )) cached, $((SECONDS - start))s"
echo "testbed-build: put it first on PATH: export PATH=\"$bin:\$PATH\""
