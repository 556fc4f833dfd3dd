#!/usr/bin/env bash
# A Spark standalone cluster on this machine, from the pip-installed pyspark: 1 master + N workers,
# bound to 127.0.0.1 only.
#
#   submit/cluster.sh start    start master + workers, wait until all workers registered;
#                              the LAST line of stdout is the master URL spark://127.0.0.1:PORT
#   submit/cluster.sh stop     stop exactly the processes `start` started (pid files)
#   submit/cluster.sh status   "running ..." (exit 0) or "not running" (exit 3)
#
# Environment (all optional):
#   SPARKML_CLUSTER_DIR      state directory: pid files, logs, master URL, work dirs
#                            (default: submit/.cluster next to this script)
#   SPARKML_PYTHON           Python with sparkml_jobs' dependencies (default: the project's .venv)
#   SPARKML_WORKERS          number of workers (default 2)
#   SPARKML_WORKER_CORES     cores per worker (default 1)
#   SPARKML_WORKER_MEMORY    memory per worker for executors (default 1g)
#   SPARK_MASTER_PORT        master RPC port (default: a free port)
#   SPARK_MASTER_WEBUI_PORT  master web UI port, serves /json/ (default: a free port)
#   SPARKML_START_TIMEOUT    seconds to wait for the workers to register (default 120)
#   SPARK_AUTH_SECRET        turn on spark.authenticate with this shared secret; every
#                            application must then use it too (submit/run.sh does, from the same
#                            variable). It is written to a mode-600 properties file, never put on a
#                            command line.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
STATE="${SPARKML_CLUSTER_DIR:-$HERE/.cluster}"
PY="${SPARKML_PYTHON:-$ROOT/.venv/bin/python}"
WORKERS="${SPARKML_WORKERS:-2}"
WORKER_CORES="${SPARKML_WORKER_CORES:-1}"
WORKER_MEMORY="${SPARKML_WORKER_MEMORY:-1g}"
TIMEOUT="${SPARKML_START_TIMEOUT:-120}"
HOST=127.0.0.1

die() { echo "cluster.sh: $*" >&2; exit 1; }

spark_home() {
  [ -x "$PY" ] || die "no Python at $PY (set SPARKML_PYTHON, or run 'make test' to build .venv)"
  "$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
}

free_port() {
  "$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pid from a pid file if that process is alive and is still the Spark daemon we started
live_pid() {
  local file="$1" class="$2" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$class" || return 1
    # a zombie (exited, not yet reaped by its parent) counts as gone
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ] || return 1
  fi
  echo "$pid"
}

MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

master_pid() { live_pid "$STATE/master.pid" "$MASTER_CLASS"; }
worker_pid() { live_pid "$STATE/worker-$1.pid" "$WORKER_CLASS"; }

any_running() {
  master_pid >/dev/null && return 0
  local f
  for f in "$STATE"/worker-*.pid; do
    [ -e "$f" ] || continue
    live_pid "$f" "$WORKER_CLASS" >/dev/null && return 0
  done
  return 1
}

# number of ALIVE workers in the master's JSON (empty output if the master does not answer)
alive_workers() {
  "$PY" - "$1" <<'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2) as r:
        doc = json.load(r)
except Exception:
    sys.exit(0)
print(sum(1 for w in doc.get("workers", []) if w.get("state") == "ALIVE"))
EOF
}

launch() {  # launch NAME CLASS ARGS... : start a daemon in the background, record its pid
  local name="$1"; shift
  # spark-class ends in `exec java ...`, so $! is the JVM's pid. Close stdin and send both output
  # streams to the log so the caller's pipes are not held open by the daemon.
  nohup "$SPARK_HOME/bin/spark-class" "$@" </dev/null >"$STATE/logs/$name.out" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

start() {
  mkdir -p "$STATE"
  if any_running; then
    if [ -f "$STATE/master-url" ] && master_pid >/dev/null; then
      echo "cluster.sh: already running (stop it first to restart)" >&2
      cat "$STATE/master-url"
      return 0
    fi
    die "a partial cluster is running from $STATE; run '$0 stop' first"
  fi
  SPARK_HOME="$(spark_home)"
  export SPARK_HOME
  rm -f "$STATE"/*.pid "$STATE/master-url" "$STATE/ports"
  mkdir -p "$STATE/logs"
  local port="${SPARK_MASTER_PORT:-$(free_port)}"
  local webui="${SPARK_MASTER_WEBUI_PORT:-$(free_port)}"

  # Loopback only: SPARK_LOCAL_IP is where every service (RPC, block manager, web UIs) binds.
  export SPARK_LOCAL_IP="$HOST" SPARK_PUBLIC_DNS="$HOST"
  export SPARK_DAEMON_MEMORY="${SPARK_DAEMON_MEMORY:-512m}"
  export PYSPARK_PYTHON="$PY"
  export SPARK_LOG_DIR="$STATE/logs" SPARK_PID_DIR="$STATE"
  local props="$STATE/daemon.properties"
  ( umask 077
    {
      echo "spark.master.rest.enabled false"
      if [ -n "${SPARK_AUTH_SECRET:-}" ]; then
        echo "spark.authenticate true"
        echo "spark.authenticate.secret $SPARK_AUTH_SECRET"
      fi
    } >"$props" )

  launch master "$MASTER_CLASS" --host "$HOST" --port "$port" --webui-port "$webui" \
    --properties-file "$props"
  local url="spark://$HOST:$port"
  local i
  for i in $(seq 1 "$WORKERS"); do
    mkdir -p "$STATE/work-$i" "$STATE/local-$i"
    SPARK_LOCAL_DIRS="$STATE/local-$i" \
      launch "worker-$i" "$WORKER_CLASS" --host "$HOST" --port 0 --webui-port "$(free_port)" \
        --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" --work-dir "$STATE/work-$i" \
        --properties-file "$props" "$url"
  done
  echo "port=$port webui=$webui workers=$WORKERS" >"$STATE/ports"

  local deadline=$((SECONDS + TIMEOUT)) alive=""
  while :; do
    alive="$(alive_workers "$webui")"
    [ "${alive:-0}" -ge "$WORKERS" ] && break
    if ! master_pid >/dev/null; then
      echo "cluster.sh: the master exited; last lines of $STATE/logs/master.out:" >&2
      tail -n 20 "$STATE/logs/master.out" >&2 || true
      stop >/dev/null 2>&1 || true
      exit 1
    fi
    for i in $(seq 1 "$WORKERS"); do
      if ! worker_pid "$i" >/dev/null; then
        echo "cluster.sh: worker $i exited; last lines of $STATE/logs/worker-$i.out:" >&2
        tail -n 20 "$STATE/logs/worker-$i.out" >&2 || true
        stop >/dev/null 2>&1 || true
        exit 1
      fi
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "cluster.sh: only ${alive:-0} of $WORKERS workers registered after ${TIMEOUT}s" >&2
      stop >/dev/null 2>&1 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "$url" >"$STATE/master-url"
  echo "cluster.sh: master $url (web UI http://$HOST:$webui), $WORKERS workers x" \
       "$WORKER_CORES core(s) / $WORKER_MEMORY, state in $STATE" >&2
  echo "$url"
}

stop_one() {  # stop_one NAME CLASS : SIGTERM, wait up to 15 s, then SIGKILL
  local name="$1" class="$2" pid n
  if pid="$(live_pid "$STATE/$name.pid" "$class")"; then
    kill -TERM "$pid" 2>/dev/null || true
    for n in $(seq 1 30); do
      live_pid "$STATE/$name.pid" "$class" >/dev/null || break
      sleep 0.5
    done
    if live_pid "$STATE/$name.pid" "$class" >/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "cluster.sh: stopped $name (pid $pid)" >&2
  fi
  rm -f "$STATE/$name.pid"
}

stop() {
  [ -d "$STATE" ] || { echo "cluster.sh: not running" >&2; return 0; }
  local f name
  # workers first: a worker stopping with SIGTERM also stops the executors it launched
  for f in "$STATE"/worker-*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    stop_one "$name" "$WORKER_CLASS"
  done
  stop_one master "$MASTER_CLASS"
  rm -f "$STATE/master-url" "$STATE/ports"
}

status() {
  local pid f ok=0
  if pid="$(master_pid)"; then
    echo "master: running (pid $pid) $(cat "$STATE/master-url" 2>/dev/null || echo '(starting)')" \
         "$(cat "$STATE/ports" 2>/dev/null || true)"
    ok=1
  fi
  for f in "$STATE"/worker-*.pid; do
    [ -e "$f" ] || continue
    if pid="$(live_pid "$f" "$WORKER_CLASS")"; then
      echo "$(basename "$f" .pid): running (pid $pid)"
      ok=1
    fi
  done
  if [ "$ok" = 1 ]; then
    echo "running"
    return 0
  fi
  echo "not running"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
