#!/usr/bin/env bash
# The README's two commands:
#   bash workflow/run.sh demo   # create the environment if missing, run the whole pipeline
#                               # on the built-in synthetic dataset, print the report's path
#   bash workflow/run.sh test   # create the environment if missing, run the tests
# Extra arguments are passed to snakemake (demo) or pytest (test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want=$(cat requirements.txt requirements-nodeps.txt | sha256sum | cut -d' ' -f1)

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python=${PYTHON:-$(command -v python3.11 || command -v python3)}
    if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        echo "error: Python 3.11 is required (found $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
        exit 2
    fi
    echo "Creating the environment in $venv (one time, a few minutes) ..."
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r requirements.txt
    "$venv/bin/python" -m pip install --quiet --no-deps -r requirements-nodeps.txt
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"

case "${1:-}" in
    demo)
        shift
        snakemake --profile workflow/profiles/local "$@"
        echo
        echo "Evaluation report: $root/results/$(python -c 'import yaml; print(yaml.safe_load(open("config/config.yaml"))["main_dataset"])')/report.md"
        ;;
    test)
        shift
        python -m pytest -q "$@"
        ;;
    *)
        echo "usage: bash workflow/run.sh demo|test [args]" >&2
        exit 2
        ;;
esac
