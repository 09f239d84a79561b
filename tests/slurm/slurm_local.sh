# A private single-node SLURM cluster for tests and trials, started without systemd:
# munged, slurmctld and slurmd of Debian's munge and slurm-wlm packages, each with its own
# key, socket, ports, state, spool and logs in one folder, so it never touches a system
# SLURM or a stale instance of itself. Source this file, then:
#
#   slurm_start DIR      # start it; exports SLURM_CONF; fails (printing the logs) unless the
#                        # node reaches state idle within 40 s
#   sbatch ... ; squeue ; scontrol show job ...
#   slurm_stop DIR       # cancel every job, stop the three daemons it started (by pid)
#
# The node is this machine (its hostname, nproc CPUs, half its memory), in partition debug.
# Job completions are recorded in DIR/jobcomp.txt (JobState=..., ExitCode=...). Runs as
# root (SlurmUser=root), as tests do in this project's containers.

slurm_free_ports() { # two free TCP ports on the loopback
  /usr/bin/python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
}

slurm_logs() { # print the daemons' logs (on failure)
  local d=$1 f
  for f in "$d"/munged.log "$d"/slurmctld.log "$d"/slurmd.log; do
    [[ -e "$f" ]] || continue
    echo "---- $f (last 40 lines)"
    tail -n 40 "$f"
  done
}

slurm_start() {
  local d=$1 p
  for p in munged slurmctld slurmd sbatch squeue sinfo scontrol scancel; do
    if ! command -v "$p" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$p ]]; then
      echo "slurm_start: $p not found: install Debian's slurm-wlm and munge (tools/setup.sh does)" >&2
      return 1
    fi
  done
  mkdir -p "$d/state" "$d/spool"
  chmod 700 "$d"
  # munge: a fresh key, its own socket
  dd if=/dev/urandom of="$d/munge.key" bs=1024 count=1 status=none
  chmod 600 "$d/munge.key"
  if ! munged --force --socket="$d/munge.sock" --key-file="$d/munge.key" \
       --pid-file="$d/munged.pid" --log-file="$d/munged.log" --seed-file="$d/munged.seed"; then
    echo "slurm_start: munged did not start" >&2; slurm_logs "$d" >&2; return 1
  fi
  local host ports cpus mem
  host=$(hostname -s)
  read -r -a ports < <(slurm_free_ports)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
  cat > "$d/slurm.conf" <<CONF
ClusterName=rdmltest
SlurmctldHost=$host
SlurmctldPort=${ports[0]}
SlurmdPort=${ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$d/munge.sock
CredType=cred/munge
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=kill_invalid_depend
JobCompType=jobcomp/filetxt
JobCompLoc=$d/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$d/slurm.conf
  if ! slurmctld -f "$SLURM_CONF"; then
    echo "slurm_start: slurmctld did not start" >&2; slurm_logs "$d" >&2; return 1
  fi
  if ! slurmd -f "$SLURM_CONF"; then
    echo "slurm_start: slurmd did not start" >&2; slurm_logs "$d" >&2; return 1
  fi
  local i state=""
  for ((i = 0; i < 80; i++)); do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1)
    [[ "$state" == idle ]] && return 0
    sleep 0.5
  done
  echo "slurm_start: the node did not become idle in 40 s (state: \"$state\")" >&2
  sinfo -R >&2 2>&1
  slurm_logs "$d" >&2
  return 1
}

slurm_stop() {
  local d=$1 f pid i
  if [[ -n "${SLURM_CONF:-}" && -e "$d/slurmctld.pid" ]]; then
    scancel --full --user="$(id -un)" >/dev/null 2>&1 || true
    for ((i = 0; i < 20; i++)); do
      [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
  for f in slurmd slurmctld munged; do
    [[ -s "$d/$f.pid" ]] || continue
    pid=$(cat "$d/$f.pid")
    kill "$pid" 2>/dev/null || continue
    for ((i = 0; i < 40; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -9 "$pid" 2>/dev/null || true
  done
}
