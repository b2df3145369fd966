# Sourced by scripts/demo, scripts/test and scripts/bench: create or reuse .venv and install the project.
# Usage: ensure_venv [extras]   (extras: "" or "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

ensure_venv() {
    local extras="${1:-}"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "== creating $VENV"
        "$PY" -m venv "$VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
    fi
    local stamp="$VENV/.parasol-installed-${extras:-base}"
    local want
    want="$(cat "$ROOT/setup.cfg" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "== installing parasol_hybrid${extras:+[$extras]} into $VENV"
        if [ -n "$extras" ]; then
            "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
        else
            "$VENV/bin/python" -m pip install -q -e "$ROOT"
        fi
        # Real data sets ship inside these packages; --no-deps keeps torch & co. out.
        "$VENV/bin/python" -m pip install -q --no-deps recbole==1.2.1 gensim==4.4.0
        "$VENV/bin/python" -m pip install -q "scikit-learn>=1.3"
        echo "$want" > "$stamp"
    fi
}
