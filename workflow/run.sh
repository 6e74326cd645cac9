#!/usr/bin/env bash
# The README's commands:
#   bash workflow/run.sh demo                          # the whole pipeline on the built-in synthetic
#                                                      # dataset; prints the report's path
#   bash workflow/run.sh pipeline --configfile C.yaml  # the same with your config (real datasets)
#   bash workflow/run.sh test                          # the tests
#   bash workflow/run.sh setup                         # only the environment (e.g. before a SLURM run)
# Each creates the environment in .venv first if it is missing or out of date. Extra arguments
# are passed to snakemake (demo, pipeline) or pytest (test).
#
# demo and pipeline resume: rerun the same command after a failure or a kill. A Snakemake
# process killed outright (kill -9, out of memory, a closed terminal) leaves its lock in
# .snakemake/locks, and plain `snakemake` then refuses to start until `--unlock`; these
# commands remove such a lock, but only when no Snakemake process of this working directory
# is alive on this machine (a second run beside a live one still fails with Snakemake's lock
# error), after waiting for jobs the killed run left running.
set -euo pipefail
caller_dir=$(pwd)
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
UV_VERSION=0.13.9  # the installer (below); the packages' pins are requirements*.txt
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
    # The same pins through uv (from PyPI, into the venv) when it can: it fetches and unpacks in
    # parallel, about 4x faster than pip for these pins, most of them the CUDA build of torch
    # (several GB; docs/testing.md). pip is the fallback where uv cannot be installed or cannot
    # reach the index. uv reads no pip.conf and no PIP_* variable: an index given to pip in the
    # environment is handed to uv; one only pip.conf names is reached by the pip fallback.
    uv=(env)
    if [ -n "${PIP_INDEX_URL:-}" ]; then uv+=("UV_INDEX_URL=$PIP_INDEX_URL"); fi
    if [ -n "${PIP_EXTRA_INDEX_URL:-}" ]; then uv+=("UV_EXTRA_INDEX_URL=$PIP_EXTRA_INDEX_URL"); fi
    # --compile-bytecode: the .pyc files pip writes at install time. Without them every process
    # compiles torch's sources anew wherever Python may not write them (PYTHONDONTWRITEBYTECODE):
    # three times the import time.
    uv+=("$venv/bin/uv" pip install --quiet --compile-bytecode --python "$venv/bin/python")
    if ! { "$venv/bin/python" -m pip install --quiet "uv==$UV_VERSION" \
           && "${uv[@]}" -r requirements.txt \
           && "${uv[@]}" --no-deps -r requirements-nodeps.txt; }; then
        echo "note: uv could not install the environment; installing it with pip (slower) ..." >&2
        "$venv/bin/python" -m pip install --quiet -r requirements.txt
        "$venv/bin/python" -m pip install --quiet --no-deps -r requirements-nodeps.txt
    fi
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"

# The browser test of the report page (tests/test_viewer.py) drives Debian's Chromium with
# playwright (browser downloads are not used). Installed with apt where apt and root are
# there; elsewhere the test skips and says why.
ensure_chromium() {
    if command -v chromium > /dev/null || command -v chromium-browser > /dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
        echo "note: no Chromium and no root apt-get to install it: the report page's browser test will skip" >&2
        return 0
    fi
    echo "Installing Chromium (apt-get) for the report page's browser test ..."
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } > /dev/null; then
        echo "note: apt-get could not install chromium: the report page's browser test will skip" >&2
    fi
}

# Pids of the processes of this machine that belong to a run in folder $1: Snakemake itself
# ("S <pid>"), and jobs a killed Snakemake left running ("J <pid>": the project's CLIs,
# python -m extractors./model./evaluation./wmmt., working in that folder).
run_processes() {
    local dir=$1 proc pid cwd kind i
    local -a argv
    for proc in /proc/[0-9]*; do
        pid=${proc#/proc/}
        [ "$pid" = "$$" ] && continue
        mapfile -d '' -t argv 2> /dev/null < "$proc/cmdline" || continue
        kind=
        for ((i = 0; i < ${#argv[@]} && i < 3; i++)); do
            case "${argv[i]}" in
                snakemake | */snakemake) kind=S ;;
                -m) case "${argv[i + 1]:-}" in
                        snakemake) kind=S ;;
                        extractors.* | model.* | evaluation.* | wmmt.*) kind=J ;;
                    esac ;;
            esac
        done
        [ -n "$kind" ] || continue
        if ! cwd=$(readlink "$proc/cwd" 2>/dev/null); then
            # Another user's process: its folder is unknown, so a Snakemake counts as this one's.
            [ "$kind" = S ] && echo "S $pid"
            continue
        fi
        [ "$cwd" = "$dir" ] && echo "$kind $pid"
    done
    return 0
}

# A lock in $1/.snakemake/locks whose Snakemake is gone: wait for the jobs it left, then unlock.
# Never while a Snakemake process of that folder is alive: then Snakemake's own lock error stands.
remove_stale_lock() {
    local dir=$1
    shift
    compgen -G "$dir/.snakemake/locks/*" > /dev/null || return 0
    if [ ! -r /proc/self/cmdline ]; then
        echo "note: $dir is locked and this system has no /proc to tell whether its Snakemake is alive;" \
             "if none is, run the same command with --unlock once" >&2
        return 0
    fi
    local procs
    procs=$(run_processes "$dir")
    if grep -q '^S' <<< "$procs"; then
        return 0
    fi
    local waited=0
    while grep -q '^J' <<< "$procs"; do
        if [ "$waited" = 0 ]; then
            echo "A killed Snakemake run left jobs running in $dir (pids" \
                 "$(sed -n 's/^J //p' <<< "$procs" | paste -sd' ')): waiting for them to end" \
                 "before resuming (or end them yourself) ..." >&2
        fi
        sleep 2
        waited=1
        procs=$(run_processes "$dir")
        grep -q '^S' <<< "$procs" && return 0
    done
    echo "Removing the lock left by a Snakemake run that is no longer alive (killed?); resuming." >&2
    snakemake --profile workflow/profiles/local "$@" --unlock > /dev/null
}

# Snakemake arguments with the config files made absolute (they are read from the caller's
# folder, as a user expects) in $args; the working directory (--directory) in $workdir.
parse_snakemake_args() {
    args=()
    workdir=$root
    local want_config=0 want_dir=0 a
    local -a split=()
    for a in "$@"; do  # --configfile=C and --directory=D as two words
        case "$a" in
            --configfile=* | --configfiles=* | --directory=*) split+=("${a%%=*}" "${a#*=}") ;;
            *) split+=("$a") ;;
        esac
    done
    for a in "${split[@]}"; do
        if [ "$want_dir" = 1 ]; then
            workdir=$(cd "$caller_dir" && cd "$a" 2>/dev/null && pwd || echo "$a")
            want_dir=0
            args+=("$a")
            continue
        fi
        case "$a" in
            --configfile | --configfiles) want_config=1; args+=("$a"); continue ;;
            --directory | -d) want_dir=1; want_config=0; args+=("$a"); continue ;;
            -*) want_config=0 ;;
            *) if [ "$want_config" = 1 ] && [[ "$a" != /* ]] && [ -e "$caller_dir/$a" ]; then
                   a="$caller_dir/$a"
               fi ;;
        esac
        args+=("$a")
    done
}

# results/<main_dataset>/report.md of the config(s) a run used (the last --configfile wins).
report_path() {
    python - "$workdir" "$@" <<'EOF'
import sys
from pathlib import Path

import yaml

workdir, argv = sys.argv[1], sys.argv[2:]
config, files, taking = {}, ["config/config.yaml"], False
for arg in argv:
    if arg in ("--configfile", "--configfiles"):
        files, taking = [], True
    elif arg.startswith("-"):
        taking = False
    elif taking:
        files.append(arg)
for name in files:
    config.update(yaml.safe_load(open(name)) or {})
print(Path(workdir) / "results" / config["main_dataset"] / "report.md")
EOF
}

run_pipeline() {
    local args workdir
    parse_snakemake_args "$@"
    remove_stale_lock "$workdir" "${args[@]}"
    snakemake --profile workflow/profiles/local "${args[@]}"
    echo
    local report
    report=$(report_path "${args[@]}")
    echo "Evaluation report: $report"
    echo "Interactive report (open in a browser): ${report%.md}.html"
}

case "${1:-}" in
    demo)
        shift
        run_pipeline "$@"
        ;;
    pipeline)
        shift
        case " $* " in
            *" --configfile "* | *" --configfiles "* | *" --configfile="* | *" --configfiles="*) ;;
            *) echo "usage: bash workflow/run.sh pipeline --configfile CONFIG.yaml [snakemake args]" \
                    "(without a config: bash workflow/run.sh demo)" >&2
               exit 2 ;;
        esac
        run_pipeline "$@"
        ;;
    test)
        shift
        ensure_chromium
        # Two processes, each test file whole in one (its module fixtures, a SLURM cluster or a
        # DAG run, stay in one process), the slowest files first (tests/conftest.py: SLOW_FIRST);
        # WMMT_TEST_WORKERS=0 runs them in this process.
        python -m pytest -q -n "${WMMT_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
        ;;
    setup)
        ensure_chromium
        echo "Environment ready: $venv (jobs run its python; e.g. $venv/bin/snakemake --profile ...)"
        ;;
    *)
        echo "usage: bash workflow/run.sh demo|pipeline|test|setup [args]" >&2
        exit 2
        ;;
esac
