#!/bin/bash
# The body of every hmmpar batch job: run a driver, survive the wall-time limit, continue.
#
#   bash slurm/hmmpar_job.sh DRIVER [CONFIG] [hmmpar run options ...]
# (without CONFIG the driver's default config: drivers/DRIVER.py says which)
#
# Called by slurm/<driver>.sbatch (and slurm/sweep.sbatch); it can also run outside Slurm.
# Environment (all optional):
#   HMMPAR_ROOT   repository root               (default: $SLURM_SUBMIT_DIR, else this script's ..)
#   PYTHON        the Python with hmmpar         (default: $HMMPAR_ROOT/.venv/bin/python)
#   OUT           run directory                  (default: runs/DRIVER-JOBID; arrays: runs/DRIVER-ARRAYID/ELEMENT)
#   NTASKS        MPI ranks                      (default: $SLURM_NTASKS, else 2)
#   LAUNCHER      mpirun | srun                  (default: mpirun; srun uses --mpi=$SRUN_MPI, default pmix)
#   CONTINUE      requeue | resubmit | none      (what to do after "checkpointed" exit 75; default requeue)
#   NEXT_NTASKS   ranks of a resubmitted continuation (default: NTASKS)
#   SWEEP_KEY, SWEEP_VALUES  job arrays: element i runs with --set SWEEP_KEY=<i-th of SWEEP_VALUES>
#
# The run always starts with `--restart auto`: the first start is a fresh run, a requeued or
# resubmitted job continues from the newest complete checkpoint in $OUT/checkpoints.
# Signals: Slurm sends USR1 (`#SBATCH --signal=B:USR1@SECONDS`) or TERM to this shell; it is
# forwarded to the launcher, which passes it on to the ranks; hmmpar checkpoints at the next
# step boundary and exits with 75.
# Exit codes (docs/slurm.md): 0 finished; 75 checkpointed, continued as CONTINUE says;
# 2 bad config / input / checkpoint (not continued); 1 internal error; others from MPI / the OS.
set -u
DRIVER=${1:?usage: hmmpar_job.sh DRIVER [CONFIG] [hmmpar run options]}
shift
HMMPAR_ROOT=${HMMPAR_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
cd "$HMMPAR_ROOT" || exit 2
CONFIG=()   # none given: the driver's default config
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then CONFIG=("$1"); shift; fi
PYTHON=${PYTHON:-$HMMPAR_ROOT/.venv/bin/python}
NTASKS=${NTASKS:-${SLURM_NTASKS:-2}}
LAUNCHER=${LAUNCHER:-mpirun}
CONTINUE=${CONTINUE:-requeue}
JOB=${SLURM_JOB_ID:-local}
if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then
    OUT=${OUT:-runs/$DRIVER-$SLURM_ARRAY_JOB_ID}/${SLURM_ARRAY_TASK_ID}
else
    OUT=${OUT:-runs/$DRIVER-$JOB}
fi
if [ "$(id -u)" = 0 ]; then  # OpenMPI refuses root unless told
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
[ -x "$PYTHON" ] || { echo "hmmpar_job: no Python at $PYTHON (run 'make setup' first or set PYTHON)" >&2; exit 2; }
[ -f "drivers/$DRIVER.py" ] || { echo "hmmpar_job: no driver drivers/$DRIVER.py" >&2; exit 2; }
if [ ${#CONFIG[@]} -gt 0 ] && [ ! -f "${CONFIG[0]}" ]; then echo "hmmpar_job: config ${CONFIG[0]} not found" >&2; exit 2; fi

SWEEP=()
if [ -n "${SWEEP_KEY:-}" ]; then
    read -r -a values <<< "${SWEEP_VALUES:-}"
    i=${SLURM_ARRAY_TASK_ID:-0}
    [ "$i" -lt "${#values[@]}" ] || { echo "hmmpar_job: array element $i but SWEEP_VALUES has ${#values[@]} values" >&2; exit 2; }
    SWEEP=(--set "$SWEEP_KEY=${values[$i]}")
fi

case "$LAUNCHER" in
    mpirun) LAUNCH=(mpirun --oversubscribe -n "$NTASKS") ;;
    srun)   LAUNCH=(srun --mpi="${SRUN_MPI:-pmix}" -n "$NTASKS") ;;
    *) echo "hmmpar_job: LAUNCHER=$LAUNCHER is not mpirun or srun" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
echo "hmmpar_job: $DRIVER, config ${CONFIG[0]:-(driver default)}, $NTASKS ranks via $LAUNCHER, output $OUT, job $JOB" \
     "(restart count ${SLURM_RESTART_COUNT:-0})"
"${LAUNCH[@]}" "$PYTHON" "drivers/$DRIVER.py" "${CONFIG[@]}" --set "run.output_dir=\"$OUT\"" \
    "${SWEEP[@]}" --restart auto "$@" &
PID=$!
forward() { echo "hmmpar_job: got $1, asking hmmpar to checkpoint"; kill -USR1 "$PID" 2>/dev/null; }
trap 'forward USR1' USR1
trap 'forward TERM' TERM
while true; do
    wait "$PID"
    rc=$?
    kill -0 "$PID" 2>/dev/null || break   # wait returned because of a trapped signal: keep waiting
done
if [ "$rc" = 75 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    case "$CONTINUE" in
        requeue)
            echo "hmmpar_job: checkpointed; requeueing job $SLURM_JOB_ID"
            # the job is killed once the requeue is accepted; retry a busy controller
            for attempt in 1 2 3 4 5; do
                if scontrol requeue "$SLURM_JOB_ID"; then sleep 120; exit "$rc"; fi
                echo "hmmpar_job: scontrol requeue failed (attempt $attempt); retrying" >&2
                sleep $((attempt * 2))
            done
            echo "hmmpar_job: could not requeue job $SLURM_JOB_ID; resubmit it by hand (it continues from $OUT)" >&2 ;;
        resubmit)
            script=${HMMPAR_SBATCH:-slurm/$DRIVER.sbatch}
            next=${NEXT_NTASKS:-$NTASKS}
            # the continuation appends to this job's output file
            log=$(scontrol show job "$SLURM_JOB_ID" | sed -n 's/^ *StdOut=\(.*\)$/\1/p')
            echo "hmmpar_job: checkpointed; submitting the continuation ($script, $next ranks) after job $SLURM_JOB_ID"
            OUT=$OUT NTASKS=$next sbatch --parsable --dependency="afterany:$SLURM_JOB_ID" \
                --ntasks="$next" --export=ALL ${log:+--output="$log"} --open-mode=append \
                "$script" "${CONFIG[@]}" "$@" ;;
        none) echo "hmmpar_job: checkpointed; not continued (CONTINUE=none)" ;;
    esac
fi
exit "$rc"
