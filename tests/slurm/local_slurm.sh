#!/bin/bash
# A single-node Slurm for the tests: install (Debian slurm-wlm + munge), configure, start,
# stop. Idempotent; needs root. Usage: local_slurm.sh start|stop|status
#
# Settings that work in a container/VM without cgroups or systemd: proctrack/linuxproc,
# task/none, SlurmUser=root, select/cons_tres. The node advertises max(4, nproc) CPUs
# (SlurmdParameters=config_overrides) so that 3-rank test jobs fit on a 2-core machine,
# where the tests oversubscribe anyway.
set -euo pipefail
ACTION=${1:-start}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
MARK=/run/hmmpar-local-slurm   # written when this script started the daemons

die() { echo "local_slurm: $*" >&2; exit 1; }

install_packages() {
    local missing=""
    for p in slurm-wlm munge; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        [ "$(id -u)" = 0 ] || die "need root to install:$missing"
        echo "local_slurm: installing$missing"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends $missing >/dev/null || die "apt-get install$missing failed"
    fi
}

write_config() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc); [ "$cpus" -ge 4 ] || cpus=4
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    mkdir -p "$CONF_DIR" "$LOG_DIR" "$STATE" "$SPOOL"
    cat > "$CONF.new" <<CONF
# written by hmmpar tests/slurm/local_slurm.sh
ClusterName=hmmpar-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
KillWait=5
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
    if ! cmp -s "$CONF.new" "$CONF"; then mv "$CONF.new" "$CONF"; else rm -f "$CONF.new"; fi
}

running() { pgrep -x "$1" >/dev/null; }

start_munge() {
    running munged && return 0
    [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || \
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    runuser -u munge -- /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force
    for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "munged does not answer"
}

wait_idle() {
    local host state
    host=$(hostname -s)
    for _ in $(seq 150); do
        state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
        case "$state" in
            idle*|mixed*|allocated*) return 0 ;;
            drain*|down*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 0.2
    done
    die "node $host is not idle (state '${state:-none}'); see $LOG_DIR/slurmd.log and slurmctld.log"
}

case "$ACTION" in
    start)
        [ "$(id -u)" = 0 ] || die "need root"
        install_packages
        write_config
        start_munge
        started=""
        if ! running slurmctld; then /usr/sbin/slurmctld -i; started=1; fi
        if ! running slurmd; then /usr/sbin/slurmd; started=1; fi
        [ -n "$started" ] && touch "$MARK"
        wait_idle
        echo "local_slurm: up ($(sinfo -h -o '%P %D %c %T'))"
        ;;
    stop)
        pkill -x slurmd 2>/dev/null || true
        pkill -x slurmctld 2>/dev/null || true
        for _ in $(seq 50); do running slurmd || running slurmctld || break; sleep 0.1; done
        rm -f "$MARK"
        echo "local_slurm: stopped"
        ;;
    status)
        if running slurmctld && running slurmd; then sinfo; else echo "local_slurm: not running"; exit 3; fi
        ;;
    *) die "usage: $0 start|stop|status" ;;
esac
