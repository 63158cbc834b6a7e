#!/usr/bin/env bash
# infra/ci/venv.sh — sourced by the CI scripts: one idempotent virtualenv per tool.
#
#   ensure_venv NAME REQUIREMENT...   creates (or reuses) $CONTINUITY_HOME/tools/NAME with exactly
#                                     these pip requirements and prints its path on stdout
#
# Why one venv per tool: checkov pins an older boto3 than cfn-lint and cargo-lambda want, and a
# shared environment would make their versions depend on install order.
# A stamp file ($venv/.stamp) holds the requirements asked for (line 1) and the versions that
# were installed (line 2); a changed pin reinstalls that one venv. Re-running when everything is
# present costs a file comparison. Writes only under CONTINUITY_HOME (pip's cache included).
# Concurrent runs are serialised with flock, like infra/local/install.sh.

CONTINUITY_HOME="${CONTINUITY_HOME:-$HOME/.cache/email-continuity}"
export CONTINUITY_HOME
export PIP_CACHE_DIR="$CONTINUITY_HOME/.cache/pip"

ensure_venv() {
  local name="$1"; shift
  local venv="$CONTINUITY_HOME/tools/$name"
  local want="$*"
  mkdir -p "$CONTINUITY_HOME/tools"
  (
    if command -v flock >/dev/null 2>&1; then
      exec 8>"$CONTINUITY_HOME/tools/.$name.lock"
      flock 8
    fi
    if [[ -f "$venv/.stamp" && "$(head -n1 "$venv/.stamp")" == "$want" && -x "$venv/bin/python" ]]; then
      echo "$name: already present ($(sed -n 2p "$venv/.stamp")) at $venv" >&2
      exit 0
    fi
    echo "$name: installing $want into $venv" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv" \
      || { echo "venv.sh: ERROR: could not create $venv (is python3-venv installed?)" >&2; exit 1; }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
      || { echo "venv.sh: ERROR: pip install $want failed" >&2; exit 1; }
    local names=() r
    for r in "$@"; do names+=("${r%%[=<>!~]*}"); done
    local got
    got="$("$venv/bin/python" - "${names[@]}" <<'PY'
import importlib.metadata as m, sys
print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))
PY
)"
    printf '%s\n%s\n' "$want" "$got" > "$venv/.stamp"
    echo "$name: installed $got" >&2
  ) || return 1
  echo "$venv"
}
