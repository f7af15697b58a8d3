#!/usr/bin/env bash
# Runs one SLURM batch script on a private single-node SLURM cluster on localhost, then checks it.
#
# Everything lives in one temporary folder: a munged with its own key and socket, a slurm.conf with
# its own ports, slurmctld and slurmd (started with -D, no systemd needed), their state, spool and logs,
# and the folder the job is submitted from. Whatever happens (success, failure, Ctrl-C, timeout) the
# daemons this script started are stopped by PID and the folder is removed; a running system munged or
# SLURM is never touched. Every wait is bounded. Facts used: ../../shared PLATFORM.md, "A single-node
# SLURM on localhost".
#
# Usage: run_job.sh JOB_SCRIPT CHECK_SCRIPT [SBATCH_OPTION...]
#   JOB_SCRIPT     submitted with `sbatch --wait` from the work folder WORK (the job's SLURM_SUBMIT_DIR);
#                  the job sees this script's environment (sbatch exports it), so job parameters are
#                  passed as environment variables.
#   CHECK_SCRIPT   run as `bash CHECK_SCRIPT WORK JOB_ID` once the job ended COMPLETED with exit 0;
#                  its exit status is the verdict. It runs with SLURM_CONF set, so it may submit more.
#   SBATCH_OPTION  extra sbatch options (they win over the script's #SBATCH lines).
# Environment:
#   SLURM_TEST_JOB_TIMEOUT  seconds the job may take from submission to end (default 300)
#   SLURM_TEST_KEEP=1       keep the temporary folder (daemons are stopped anyway) for debugging
# Exit status: 0 passed; 1 failed (reason on stderr, with the job output and daemon logs);
#              77 cannot run here (SLURM or munge not installed, not root): the CTest skip code.
set -uo pipefail

say() { echo "slurm-test: $*" >&2; }
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; }

if [ $# -lt 2 ]; then usage; exit 2; fi
job_script=$(readlink -f "$1")
check_script=$(readlink -f "$2")
shift 2
sbatch_options=("$@")
job_timeout=${SLURM_TEST_JOB_TIMEOUT:-300}
[ -r "$job_script" ] || { say "cannot read job script '$1'"; exit 1; }
[ -r "$check_script" ] || { say "cannot read check script '$2'"; exit 1; }

# --- can it run here? ------------------------------------------------------------------------------
for tool in slurmctld slurmd sbatch scontrol sinfo squeue scancel munged munge unmunge mungekey setpriv timeout; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    say "SKIP: '$tool' not found (install slurm-wlm and munge: jobs/setup-debian.sh)"
    exit 77
  fi
done
if [ "$(id -u)" -ne 0 ]; then
  say "SKIP: needs root (slurmd launches job steps; the test cluster runs with SlurmUser=root)"
  exit 77
fi
if ! id munge >/dev/null 2>&1; then
  say "SKIP: no 'munge' user (installed with the munge package)"
  exit 77
fi

# --- state, cleanup ----------------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/idprune-slurm.XXXXXX") || { say "mktemp failed"; exit 1; }
chmod 755 "$tmp"  # munged requires every directory above its socket to be searchable by all
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool" "$tmp/log" "$tmp/tmpfs" "$tmp/work"
chown munge:munge "$tmp/munge"
chmod 755 "$tmp/munge"
conf="$tmp/slurm.conf"
munged_pid="" ctld_pid="" slurmd_pid="" sbatch_pid="" job_id=""
# Daemons and everything they start (slurmstepd, job tasks) inherit this variable; the cleanup uses it
# to find leftovers of this test cluster only. It is not exported in this shell itself.
marker="IDPRUNE_SLURM_TEST_DIR=$tmp"

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Waits up to $2 seconds for process $1 to end; true when it has ended.
wait_gone() {
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  ! alive "$pid"
}

# Stops process $1 (named $2): TERM, then KILL after 5 s.
stop_pid() {
  alive "$1" || return 0
  kill -TERM "$1" 2>/dev/null
  wait_gone "$1" 5 && return 0
  say "$2 (pid $1) ignored SIGTERM, killing it"
  kill -KILL "$1" 2>/dev/null
  wait_gone "$1" 2 || say "WARNING: $2 (pid $1) is still running"
}

# PIDs of processes carrying this test cluster's marker in their environment (slurmstepd, job tasks).
marked_pids() {
  grep -lzxF "$marker" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 | grep -vx "$$"
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  export SLURM_CONF="$conf"
  stop_pid "$sbatch_pid" "sbatch --wait"
  [ -z "$job_id" ] && job_id=$(head -n 1 "$tmp/work/sbatch.stdout" 2>/dev/null | cut -d';' -f1)
  if alive "$ctld_pid"; then
    if [ "$rc" -ne 0 ]; then
      # Every job of this private cluster (the check may have submitted more than one).
      # shellcheck disable=SC2046  # one word per job id
      timeout 5 scancel $(timeout 5 squeue -h -o %i 2>/dev/null) >/dev/null 2>&1
    fi
    # Give cancelled steps a moment to end before the daemons go.
    local deadline=$((SECONDS + 10))
    while [ -n "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && ((SECONDS < deadline)); do sleep 0.2; done
    timeout 10 scontrol shutdown >/dev/null 2>&1
  fi
  wait_gone "$ctld_pid" 10 || true
  wait_gone "$slurmd_pid" 10 || true
  stop_pid "$ctld_pid" slurmctld
  stop_pid "$slurmd_pid" slurmd
  for pid in $(marked_pids); do
    say "stopping leftover process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80))"
    kill -KILL "$pid" 2>/dev/null
  done
  stop_pid "$munged_pid" munged
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ]; then
    say "kept $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

show_logs() {
  local f n
  for f in "$tmp"/work/*.out "$tmp"/log/sbatch.stderr "$tmp"/log/slurmctld.log "$tmp"/log/slurmd.log \
    "$tmp"/log/munged.out; do
    [ -s "$f" ] || continue
    case $f in "$tmp"/work/*) n=60 ;; *) n=20 ;; esac
    echo "----- ${f#"$tmp"/} (last $n lines)" >&2
    tail -n "$n" "$f" >&2
  done
}
fail() {
  say "FAILED: $*"
  show_logs
  exit 1
}

# --- munged: own key, socket, pid file; run as the munge user -------------------------------------
setpriv --reuid=munge --regid=munge --clear-groups mungekey --create --keyfile="$tmp/munge/munge.key" \
  >"$tmp/log/mungekey.log" 2>&1 || fail "mungekey could not create a key"
# setpriv execs munged, so $! is munged's own PID; -F keeps it in the foreground (no fork).
setpriv --reuid=munge --regid=munge --clear-groups munged -F --socket="$tmp/munge/munge.socket" \
  --key-file="$tmp/munge/munge.key" --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" \
  --log-file="$tmp/log/munged.log" >"$tmp/log/munged.out" 2>&1 &
munged_pid=$!
deadline=$((SECONDS + 15))
until timeout 5 munge -n -S "$tmp/munge/munge.socket" 2>/dev/null |
  timeout 5 unmunge -S "$tmp/munge/munge.socket" >/dev/null 2>&1; do
  alive "$munged_pid" || fail "munged exited"
  ((SECONDS < deadline)) || fail "munged not answering after 15 s"
  sleep 0.1
done

# --- slurm.conf --------------------------------------------------------------------------------------
# A free port pair in 20000-29999, so that several test clusters (or a real one) can coexist.
port_in_use() { command -v ss >/dev/null && [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]; }
for ((i = 0; ; i++)); do
  ctld_port=$((20000 + (RANDOM % 5000) * 2))
  slurmd_port=$((ctld_port + 1))
  port_in_use "$ctld_port" || port_in_use "$slurmd_port" || break
  ((i < 50)) || fail "no free port pair found in 20000-29999"
done
# The node's real topology (slurmd -C), so the node is never drained for claiming more than it has.
node_line=$(timeout 10 slurmd -C 2>/dev/null | sed -n 's/^NodeName=[^ ]* //p')
[ -n "$node_line" ] || fail "slurmd -C printed no node configuration"
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
cat >"$conf" <<EOF
# Private single-node test cluster of tests/slurm/run_job.sh (removed when the test ends).
ClusterName=idprunetest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
TmpFS=$tmp/tmpfs
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
# Job ids differ between concurrent test clusters (PMIx keeps per-job files keyed by job id).
FirstJobId=$((1000 + RANDOM * 10))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmix
ReturnToService=2
MailProg=/bin/true
MinJobAge=600
NodeName=localhost $node_line State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$conf"

# --- slurmctld, slurmd -------------------------------------------------------------------------------
env "$marker" slurmctld -D -f "$conf" >"$tmp/log/slurmctld.out" 2>&1 &
ctld_pid=$!
env "$marker" slurmd -D -f "$conf" -N localhost >"$tmp/log/slurmd.out" 2>&1 &
slurmd_pid=$!
deadline=$((SECONDS + 30))
while state=$(timeout 5 sinfo -h -n localhost -o %t 2>/dev/null); [ "$state" != idle ]; do
  alive "$ctld_pid" || fail "slurmctld exited"
  alive "$slurmd_pid" || fail "slurmd exited"
  ((SECONDS < deadline)) || fail "node not idle after 30 s (state '$state')"
  sleep 0.2
done
say "cluster up in ${SECONDS}s (ports $ctld_port/$slurmd_port, $cpus CPUs, folder $tmp)"

# --- the job -----------------------------------------------------------------------------------------
cd "$tmp/work" || fail "cannot enter $tmp/work"
start=$SECONDS
# In the background, so that a signal to this script runs the cleanup at once (bash runs traps only
# between foreground commands, and `wait` is interruptible).
env "$marker" timeout "$job_timeout" sbatch --wait --parsable --output="$tmp/work/job-%j.out" \
  "${sbatch_options[@]}" "$job_script" >"$tmp/work/sbatch.stdout" 2>"$tmp/log/sbatch.stderr" &
sbatch_pid=$!
wait "$sbatch_pid"
sbatch_rc=$?
sbatch_pid=""
job_id=$(head -n 1 "$tmp/work/sbatch.stdout" | cut -d';' -f1)
[ -n "$job_id" ] || fail "sbatch submitted nothing: $(cat "$tmp/log/sbatch.stderr")"
[ "$sbatch_rc" -eq 124 ] && fail "job $job_id still not finished after ${job_timeout}s"
info=$(timeout 10 scontrol show job "$job_id" 2>&1)
job_state=$(sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' <<<"$info")
exit_code=$(sed -n 's/.* ExitCode=\([0-9:]*\).*/\1/p' <<<"$info")
say "job $job_id ended $job_state, exit $exit_code, after $((SECONDS - start))s (sbatch --wait returned $sbatch_rc)"
if [ "$job_state" != COMPLETED ] || [ "$exit_code" != 0:0 ] || [ "$sbatch_rc" -ne 0 ]; then
  fail "job $job_id did not complete successfully"
fi

# --- its results -------------------------------------------------------------------------------------
if ! bash "$check_script" "$tmp/work" "$job_id"; then
  fail "check $(basename "$check_script") rejected the results of job $job_id"
fi
say "PASSED: $(basename "$job_script") (job $job_id) in ${SECONDS}s"
