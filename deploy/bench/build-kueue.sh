#!/usr/bin/env bash
# Build Kueue's manager binary from the Go module proxy into a cache outside git, for the
# side-by-side benchmark (deploy/bench/multikueue.py). Nothing of Kueue's code is committed:
# `go install module@version` fetches the module, the CRDs come from the same module cache.
#
#   deploy/bench/build-kueue.sh            # builds v0.17.0
#   KUEUE_VERSION=v0.16.2 deploy/bench/build-kueue.sh
#
# Prints the cache dir on success. Built with `nice` because the build machine is shared.
set -euo pipefail

version="${KUEUE_VERSION:-v0.17.0}"
cache="${COMPUTEGRID_CACHE:-$HOME/.cache/computegrid}/kueue-${version}"
bin="$cache/bin"

if [[ -x "$bin/kueue" && -d "$cache/crds" ]]; then
    echo "$cache"
    exit 0
fi
mkdir -p "$bin" "$cache/crds"

export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOBIN="$bin"
log="$cache/build.log"
if ! nice -n 10 go install "sigs.k8s.io/kueue/cmd/kueue@${version}" >"$log" 2>&1; then
    echo "build-kueue: go install sigs.k8s.io/kueue/cmd/kueue@${version} failed; see $log" >&2
    tail -20 "$log" >&2
    exit 1
fi

# The CRDs ship in the module itself (config/components/crd/bases); copy them beside the binary
# so the benchmark does not depend on the module cache layout.
modsrc="$(go env GOMODCACHE)/sigs.k8s.io/kueue@${version}"
cp "$modsrc"/config/components/crd/bases/*.yaml "$cache/crds/"
chmod -R u+w "$cache/crds"
echo "$cache"
