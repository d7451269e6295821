#!/usr/bin/env bash
# actionlint for .github/workflows/, built from the Go module proxy at a pinned release (this
# machine reaches package registries only, not GitHub's release downloads).
#
#   deploy/ci/actionlint.sh build   build it into the cache unless it is there (make test)
#   deploy/ci/actionlint.sh run     lint the workflows if it is built, else say how (make lint)
#
# Its own `go install pkg@version`, like helm: actionlint's go.mod must not join the test
# bed's tools module, whose dependencies are pinned to the control plane's release.
set -euo pipefail
ACTIONLINT_VERSION=v1.7.12   # newest on proxy.golang.org on 2026-11-29; its go.mod: go 1.25.0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${COMPUTEGRID_CACHE:-$HOME/.cache/computegrid}/tools/actionlint-${ACTIONLINT_VERSION}"

build() {
  [[ -x "$bin/actionlint" ]] && return 0
  command -v go >/dev/null || { echo "actionlint: 'go' not found on PATH" >&2; exit 1; }
  echo "actionlint: building ${ACTIONLINT_VERSION} into $bin"
  mkdir -p "$bin"
  GOBIN="$bin" CGO_ENABLED=0 GOTOOLCHAIN=local go install -ldflags "-s -w \
    -X github.com/rhysd/actionlint.version=${ACTIONLINT_VERSION}" \
    "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
}

case "${1:-run}" in
  build) build ;;
  run)
    if [[ ! -x "$bin/actionlint" ]]; then
      echo "actionlint: not built, workflows not linted (run 'deploy/ci/actionlint.sh build')"
      exit 0
    fi
    cd "$root" && "$bin/actionlint" -no-color -oneline && echo "actionlint: .github/workflows clean" ;;
  *) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
