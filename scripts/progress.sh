# Sourced by the setup and check scripts. `long_step LABEL COMMAND...` runs a
# long command with its output in a log file, and says every 10 s which step
# is running and for how long, so a terminal is never silent for minutes. On
# failure it shows the end of the log. quiet_step and mirror_from_apt: below.
step() { printf '== setup: %s\n' "$*"; }

long_step() {
  local label=$1 log started=$SECONDS pid rc=0 next=10
  shift
  log=${SDN_HA_CACHE:-$HOME/.cache/sdn_ha}/logs/$(printf '%s' "$label" | tr -c 'A-Za-z0-9' '-' | cut -c1-40).log
  mkdir -p "$(dirname "$log")"
  step "$label ..."
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - started)) -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      step "$label: still running, $((SECONDS - started)) s"
      next=$((next + 10))
    fi
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    step "$label: FAILED after $((SECONDS - started)) s (exit $rc); the end of $log:"
    tail -25 "$log" >&2
    return "$rc"
  fi
  step "$label: done in $((SECONDS - started)) s"
}

# quiet_step PREFIX LOG NAME COMMAND...: run a check with its output in LOG,
# which the caller may read afterwards, and print one line; on failure show
# the end of LOG without pip's chatter, and exit.
quiet_step() {
  local prefix=$1 log=$2 name=$3 started=$SECONDS
  shift 3
  if ! "$@" >"$log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$log" \
      | grep -v "^Requirement already\|^  \|WARNING: Location\|^Collecting\|^Downloading\|^Processing\|^Run command" \
      | tail -60 || true
    echo "$prefix: FAIL: $name" >&2
    exit 1
  fi
  echo "$prefix: $name passed ($((SECONDS - started)) s)"
}

# The Debian mirror this machine already uses (its main suite, not security,
# updates or backports); no host is hard-coded in the scripts.
mirror_from_apt() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 ~ /^https?:/ && $3 !~ /-(security|updates|backports)$/ {print $2; exit}' \
    /etc/apt/sources.list 2>/dev/null || true)
  echo "$uri"
}
