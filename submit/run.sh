#!/usr/bin/env bash
# Run a sparkml-jobs command through spark-submit.
#
#   submit/run.sh [spark-submit options] -- <sparkml-jobs arguments>
#   submit/run.sh --master spark://127.0.0.1:7077 --conf spark.executor.memory=1g -- \
#       linreg fit --input data/diamonds.csv --label price --output out/model
#
# Without "--" every argument goes to sparkml-jobs. The project's sparkml_jobs package is zipped
# into a temporary directory and shipped with --py-files; submit/entry.py runs the same CLI, so
# arguments, stdout (results), stderr (progress, one-line errors) and exit codes (0 ok, 2 bad
# usage or input, 1 other failure) are those of the `sparkml-jobs` console script.
#
# Environment (all optional):
#   SPARKML_PYTHON          driver Python with numpy/pyarrow/pyspark (default: the project's .venv)
#   PYSPARK_PYTHON          executors' Python (default: SPARKML_PYTHON; on a real cluster
#                           ./environment/bin/python with --archives venv.tar.gz#environment)
#   SPARK_HOME              Spark installation (default: the pyspark package of SPARKML_PYTHON)
#   SPARK_AUTH_SECRET       shared secret of a cluster started with spark.authenticate
#                           (passed in a mode-600 properties file, not on the command line)
#   SPARKML_QUIET_LOG4J=0   keep Spark's default INFO logging of the driver JVM
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${SPARKML_PYTHON:-$ROOT/.venv/bin/python}"

usage() {
  echo "usage: $0 [spark-submit options] -- <sparkml-jobs arguments>" >&2
  exit 2
}

[ "$#" -gt 0 ] || usage
[ -x "$PY" ] || { echo "run.sh: no Python at $PY (set SPARKML_PYTHON)" >&2; exit 1; }

submit_opts=()
job_args=()
if printf '%s\n' "$@" | grep -qx -- '--'; then
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do submit_opts+=("$1"); shift; done
  shift  # the "--"
fi
job_args=("$@")
[ "${#job_args[@]}" -gt 0 ] || usage

# the master (default local[*]), --properties-file and --py-files among the spark-submit options
master=""
props_file=""
py_files=""
opts=()
i=0
while [ "$i" -lt "${#submit_opts[@]}" ]; do
  opt="${submit_opts[$i]}"
  case "$opt" in
    --master) master="${submit_opts[$((i + 1))]:-}"; opts+=("$opt" "$master"); i=$((i + 2)); continue ;;
    --master=*) master="${opt#--master=}" ;;
    --properties-file) props_file="${submit_opts[$((i + 1))]:-}"; i=$((i + 2)); continue ;;
    --properties-file=*) props_file="${opt#--properties-file=}"; i=$((i + 1)); continue ;;
    --py-files) py_files="${submit_opts[$((i + 1))]:-}"; i=$((i + 2)); continue ;;
    --py-files=*) py_files="${opt#--py-files=}"; i=$((i + 1)); continue ;;
  esac
  opts+=("$opt")
  i=$((i + 1))
done
if [ -n "$props_file" ] && [ ! -r "$props_file" ]; then
  echo "run.sh: cannot read the properties file $props_file" >&2
  exit 2
fi
if [ -z "$master" ]; then
  master="local[*]"
  opts=(--master "$master" "${opts[@]+"${opts[@]}"}")
fi

if [ -z "${SPARK_HOME:-}" ]; then
  SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
fi
export SPARK_HOME
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PY}"

# A master on this machine: keep the driver on loopback too.
case "$master" in
  local*|spark://127.0.0.1:*|spark://localhost:*) export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}" ;;
esac

tmp="$(mktemp -d "${TMPDIR:-/tmp}/sparkml-submit.XXXXXX")"
relay_pid=""
cleanup() {
  if [ -n "$relay_pid" ]; then
    # unblock the relay if the driver never opened the FIFO, then let it drain and exit
    { exec 9<>"$tmp/stderr.fifo"; exec 9>&-; } 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# the package, as shipped to the driver and the executors
"$PY" - "$ROOT/sparkml_jobs" "$tmp/sparkml_jobs.zip" <<'EOF'
import pathlib, sys, zipfile
package, target = pathlib.Path(sys.argv[1]), sys.argv[2]
with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" not in path.parts:
            zf.write(path, path.relative_to(package.parent).as_posix())
EOF

# Spark's driver log: warnings and errors only (the CLI prints its own progress)
if [ "${SPARKML_QUIET_LOG4J:-1}" = 1 ] && [ -z "${SPARK_CONF_DIR:-}" ] \
   && [[ "${SPARK_SUBMIT_OPTS:-}" != *log4j* ]]; then
  cat >"$tmp/log4j2.properties" <<'EOF'
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.nativecode.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativecode.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
EOF
  export SPARK_SUBMIT_OPTS="${SPARK_SUBMIT_OPTS:-} -Dlog4j2.configurationFile=file:$tmp/log4j2.properties"
fi

# the shared secret of an authenticated cluster, never on a command line
if [ -n "${SPARK_AUTH_SECRET:-}" ]; then
  ( umask 077
    { [ -n "$props_file" ] && cat "$props_file" && echo
      echo "spark.authenticate true"
      echo "spark.authenticate.secret $SPARK_AUTH_SECRET"
    } >"$tmp/spark.properties" )
  props_file="$tmp/spark.properties"
fi
[ -n "$props_file" ] && opts+=(--properties-file "$props_file")

# spark-submit merges the Python driver's stderr into stdout; entry.py sends it back here
if mkfifo -m 600 "$tmp/stderr.fifo" 2>/dev/null; then
  cat "$tmp/stderr.fifo" >&2 &
  relay_pid=$!
  export SPARKML_JOBS_STDERR="$tmp/stderr.fifo"
fi

# in the background so that INT/TERM sent to this script reach spark-submit too
"$SPARK_HOME/bin/spark-submit" "${opts[@]}" --py-files "$tmp/sparkml_jobs.zip${py_files:+,$py_files}" \
  "$HERE/entry.py" "${job_args[@]}" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null || true' INT TERM
while :; do
  code=0
  wait "$child" || code=$?
  kill -0 "$child" 2>/dev/null || break  # still running: the wait was cut short by a signal
done
exit "$code"
