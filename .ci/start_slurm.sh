#!/usr/bin/env bash
# Start a throw-away single-node SLURM (Debian slurm-wlm + munge) on this machine, as root, with
# NGPU fake GPUs (character devices with /dev/null's numbers, declared in gres.conf).
# Usage: bash .ci/start_slurm.sh [NGPU]. The daemons' PIDs go to /run/slurm-ci.pids, which
# .ci/stop_slurm.sh reads. No accounting daemon: the Snakemake profile polls with squeue.
set -euo pipefail
NGPU=${1:-1}
export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
H=$(hostname -s)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm /run/munge
chown slurm:slurm /var/spool/slurmctld /var/log/slurm
chown munge:munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --force 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
for i in $(seq 0 $((NGPU - 1))); do [ -e /dev/fakegpu$i ] || mknod /dev/fakegpu$i c 1 3; done
MEM=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 85 / 100 ))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=localci
SlurmctldHost=${H}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
DefMemPerCPU=1000
GresTypes=gpu
NodeName=${H} NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=${MEM} Gres=gpu:${NGPU} State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
echo "NodeName=${H} Name=gpu Count=${NGPU} File=/dev/fakegpu[0-$((NGPU - 1))]" > /etc/slurm/gres.conf
# setpriv execs munged itself, so $! is munged's PID (runuser would fork and linger).
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
  > /var/log/slurm/munged.out 2>&1 &
MUNGED=$!
for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
/usr/sbin/slurmctld -D > /var/log/slurm/slurmctld.out 2>&1 &
CTLD=$!
/usr/sbin/slurmd -D > /var/log/slurm/slurmd.out 2>&1 &
SLURMD=$!
echo "munged=$MUNGED slurmctld=$CTLD slurmd=$SLURMD" > /run/slurm-ci.pids
state=""
for _ in $(seq 120); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
if [ "$state" != idle ]; then
  echo "SLURM node not idle (state: $state)" >&2
  tail -20 /var/log/slurm/*.out >&2
  exit 1
fi
sinfo -o "%P %N %c %m %G %T"
