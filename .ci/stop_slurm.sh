#!/usr/bin/env bash
# Stop the daemons .ci/start_slurm.sh started, by their recorded PIDs (never by name).
set -u
[ -f /run/slurm-ci.pids ] || exit 0
. /run/slurm-ci.pids  # defines munged, slurmctld, slurmd
kill -TERM "$slurmd" "$slurmctld" 2>/dev/null
for _ in $(seq 100); do
  kill -0 "$slurmd" 2>/dev/null || kill -0 "$slurmctld" 2>/dev/null || break
  sleep 0.1
done
kill -TERM "$munged" 2>/dev/null
for _ in $(seq 50); do kill -0 "$munged" 2>/dev/null || break; sleep 0.1; done
rm -f /run/slurm-ci.pids
