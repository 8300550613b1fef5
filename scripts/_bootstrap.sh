# Shared by scripts/quickstart and scripts/test: a project virtualenv and, where
# allowed, the Debian packages the real-service tests use.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${HULLWATCH_VENV:-$HERE/.venv}"
PY="$VENV/bin/python"

find_python() {
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$c"; return 0
    fi
  done
  echo "hullwatch needs Python 3.11 (python3.11 or python3 on PATH)" >&2
  return 1
}

# ensure_venv EXTRAS: create the virtualenv if needed and install the project
# (editable) with EXTRAS, skipping pip when pyproject.toml has not changed.
ensure_venv() {
  local extras="$1"
  if [ ! -x "$PY" ]; then
    "$(find_python)" -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
  fi
  local stamp="$VENV/.hullwatch-installed"
  local hash have_hash have_extras
  hash="$(sha256sum "$HERE/pyproject.toml" | cut -d' ' -f1)"
  if [ -f "$stamp" ]; then
    read -r have_hash have_extras < "$stamp" || true
    if [ "$have_hash" = "$hash" ] && covers "${have_extras:-}" "$extras"; then
      return 0
    fi
  fi
  # An install with more extras serves a later call that wants fewer.
  local all_extras="$extras"
  if [ -f "$stamp" ] && [ "${have_hash:-}" = "$hash" ]; then all_extras="$(merge "${have_extras:-}" "$extras")"; fi
  local target="$HERE"
  [ -n "$all_extras" ] && target="$HERE[$all_extras]"
  "$PY" -m pip install --quiet --disable-pip-version-check -e "$target"
  echo "$hash $all_extras" > "$stamp"
}

# covers HAVE WANT: every comma-separated extra of WANT is in HAVE
covers() {
  local e
  for e in ${2//,/ }; do
    [[ ",$1," == *",$e,"* ]] || return 1
  done
  return 0
}

merge() {
  local out="$1" e
  for e in ${2//,/ }; do
    [[ ",$out," == *",$e,"* ]] || out="${out:+$out,}$e"
  done
  echo "$out"
}

# Debian packages for the real-service tests: registries, rpm tooling, Go.
SYSTEM_PACKAGES=(docker-registry skopeo apache2-utils rpm libdb5.3-dev build-essential golang-go libcommons-lang3-java libslf4j-java ruby ruby-rack python3-six php-cli php-composer-semver)

missing_system_packages() {
  local missing=()
  for p in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

# Installs missing packages when running as root under CI, or when asked to
# with HULLWATCH_INSTALL_SYSTEM_DEPS=1; otherwise says what is missing.
ensure_system_packages() {
  command -v dpkg-query >/dev/null 2>&1 || { echo "note: not a Debian system; real-service tests need: ${SYSTEM_PACKAGES[*]}" >&2; return 0; }
  local missing
  missing="$(missing_system_packages)"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ] && { [ "${CI:-}" = true ] || [ "${HULLWATCH_INSTALL_SYSTEM_DEPS:-}" = 1 ]; }; then
    echo "installing system packages: $missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "note: missing system packages: $missing (set HULLWATCH_INSTALL_SYSTEM_DEPS=1 as root to install)" >&2
  fi
}

# bsddb3 writes real Berkeley DB rpm databases for the rpm tests; it compiles
# against Debian's libdb headers, so it is installed here rather than as an extra.
ensure_bsddb3() {
  "$PY" -c 'import bsddb3' >/dev/null 2>&1 && return 0
  if [ -f /usr/include/db.h ]; then
    BERKELEYDB_DIR=/usr "$PY" -m pip install --quiet --disable-pip-version-check "bsddb3==6.2.9" \
      || echo "note: bsddb3 did not build; the Berkeley DB rpm tests will say so" >&2
  fi
}

# Test inputs from the npm registry (esbuild's Go binary, the SARIF schema), pinned in package-lock.json.
ensure_node_modules() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "note: npm not found; tests that read npm packages will say so" >&2
    return 0
  fi
  local stamp="$HERE/node_modules/.hullwatch-lock-sha"
  local want
  want="$(sha256sum "$HERE/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    (cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
  fi
}
