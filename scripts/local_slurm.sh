#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the launcher=slurm tests and for trying the SLURM path.
#   scripts/local_slurm.sh up       install (Debian packages, needs root), configure and start munge, slurmctld, slurmd
#   scripts/local_slurm.sh down     stop the daemons
#   scripts/local_slurm.sh status   sinfo
# Accounting is off (submitit then warns that sacct is unavailable and carries on). Everything it writes lives in
# /etc/slurm, /etc/munge and $SLURM_LOCAL_STATE (default /var/lib/emg-lightning-slurm).
set -euo pipefail

STATE=${SLURM_LOCAL_STATE:-/var/lib/emg-lightning-slurm}
HOST=$(hostname -s)
CPUS=$(nproc)

die() { echo "local_slurm: $*" >&2; exit 1; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || die "installing slurm needs root (apt-get install slurmctld slurmd slurm-client munge)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null \
        || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null; } \
        || die "apt-get could not install slurmctld slurmd slurm-client munge"
}

MARKER="# written by emg-lightning scripts/local_slurm.sh"

write_config() {
    if [ -f /etc/slurm/slurm.conf ] && ! grep -q "^ClusterName=emglocal$" /etc/slurm/slurm.conf; then
        die "/etc/slurm/slurm.conf exists and is not ours: not replacing a real cluster's configuration"
    fi
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
    cat > /etc/slurm/slurm.conf <<CONF
$MARKER
ClusterName=emglocal
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
ReturnToService=2
MpiDefault=none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
}

start_munge() {
    pgrep -x munged >/dev/null && return
    mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
    [ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    chmod 700 /etc/munge && chmod 400 /etc/munge/munge.key
    su -s /bin/sh munge -c munged || die "munged did not start"
}

wait_gone() {  # a stopping daemon still saves its state for a moment: wait until it has exited
    for _ in $(seq 1 30); do pgrep -x "$1" >/dev/null || return 0; sleep 1; done
    die "$1 did not stop"
}

up() {
    [ "$(id -u)" = 0 ] || die "starting a local SLURM needs root"
    install_packages
    write_config
    start_munge
    for _ in $(seq 1 60); do
        # (re)start whichever daemon is not running, e.g. one that exited while starting
        pgrep -x slurmctld >/dev/null || slurmctld || die "slurmctld did not start (see $STATE/log/slurmctld.log)"
        pgrep -x slurmd >/dev/null || slurmd || die "slurmd did not start (see $STATE/log/slurmd.log)"
        if timeout 5 sinfo -h -o "%t" 2>/dev/null | grep -qE "idle|mix|alloc"; then
            echo "local_slurm: up ($HOST, $CPUS CPUs, partition debug)"; return
        fi
        timeout 5 scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    die "the node did not become idle within a minute: $(timeout 5 sinfo 2>&1 | tail -1)"
}

down() {
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    wait_gone slurmd
    wait_gone slurmctld
    echo "local_slurm: down"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) sinfo ;;
    *) die "usage: $0 up|down|status" ;;
esac
