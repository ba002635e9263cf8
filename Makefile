# hmmpar: two commands on a fresh Debian machine (as root) or an existing one.
#   make demo   - install what is missing, run the flagship demo on 2 MPI ranks
#   make test   - install what is missing, run serial + MPI (2 and 3 ranks) tests
#   make bench  - run the benchmarks (JSON + PNG in benchmarks/results)
SHELL := /bin/bash
PYTHON := .venv/bin/python
DEBS := python3-petsc4py python3-mpi4py python3-h5py-mpi python3-numba python3-scipy \
        python3-matplotlib openmpi-bin libpetsc-real-dev python3-venv python3-pip python3-dev \
        python3-lammps liblammps-dev
# python3-lammps: the second MD engine (micro.engine = "lammps", tests, benchmarks/md.py); with
# --no-install-recommends it adds liblammps0, libkim-api2 and libvoro++1 (16 MB installed). Its Python
# module opens "liblammps.so", which only liblammps-dev ships (bookworm's liblammps0 has the .so.0).
# python3-slepc4py: eigenvalues of the coarse Jacobian (hmmpar/couplers/continuation.py, else ARPACK); its .pth
# finds the module through the /usr/lib/slepc alternative, which only libslepc-real-dev sets (with its ARPACK -dev packages, ~6 MB).
DEBS += python3-slepc4py libslepc-real-dev
TEST_PIPS := pytest pytest-mpi
# Independent equations of state, the oracles of the MD validation tests (tests/validation/micro/md):
# prebuilt wheels (teqp: C++, feos and its si-units: Rust) that need only numpy at run time and
# work with Debian's numpy 1.24. Installed with --no-deps, so that pip can never replace
# Debian's numpy/h5py/mpi4py; pinned, because feos changes its Python API between minor versions.
EOS_PIPS := teqp==0.23.2 feos==0.10.5 si-units==0.11.5
# OpenMPI refuses root unless told; set it only when we are root.
ifeq ($(shell id -u),0)
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
endif
export OMPI_MCA_rmaps_base_oversubscribe := 1
MPIRUN := mpirun --oversubscribe
DEMO_CONFIG ?= drivers/configs/elliptic.toml

.PHONY: setup demo test test-serial test-mpi bench bench-gillespy2 bench-dedalus clean
.DEFAULT_GOAL := demo

setup: .venv/.hmmpar-ready

# Debian's numpy/h5py/petsc4py are used as they are: the venv sees them through
# --system-site-packages and hmmpar is installed with --no-deps, because Debian's
# h5py is not registered under the name "h5py" and pip would replace it by a serial wheel.
.venv/.hmmpar-ready: pyproject.toml Makefile
	@missing=""; for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "error: need root (or sudo) to install:$$missing" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@[ -x $(PYTHON) ] || /usr/bin/python3 -m venv --system-site-packages .venv
	@$(PYTHON) -m pip install -q --disable-pip-version-check --no-deps -e .
	@$(PYTHON) -m pip install -q --disable-pip-version-check $(TEST_PIPS)
	@$(PYTHON) -m pip install -q --disable-pip-version-check --no-deps $(EOS_PIPS)
	@$(PYTHON) -c "import hmmpar, numpy, scipy, numba, petsc4py, mpi4py, matplotlib, teqp, feos; import h5py; \
	  assert h5py.get_config().mpi, 'h5py in the venv has no MPI support (a pip h5py wheel shadows Debian python3-h5py-mpi?)'" 
	@$(PYTHON) -c "from hmmpar.micro.md.lammps_engine import check_available; check_available()"
	@touch $@
	@echo "setup: ready (.venv)"

demo: setup
	$(MPIRUN) -n 2 $(PYTHON) -m hmmpar.cli run $(DEMO_CONFIG)

# All tests on 1 rank (MPI-marked ones as a singleton), then the MPI tests at 2 and 3 ranks; any failing part fails the target,
# and a part that collects no test (pytest exit 5) fails too.
test: setup
	$(PYTHON) -m pytest -q -p no:cacheprovider --with-mpi tests
	$(MPIRUN) -n 2 $(PYTHON) -m pytest -q -p no:cacheprovider --with-mpi tests/mpi
	$(MPIRUN) -n 3 $(PYTHON) -m pytest -q -p no:cacheprovider --with-mpi tests/mpi

bench: setup
	$(PYTHON) benchmarks/farm.py
	$(PYTHON) benchmarks/elliptic.py
	$(PYTHON) benchmarks/md_noise.py
	$(PYTHON) benchmarks/ssa_engines.py
	$(PYTHON) benchmarks/ssa_nested.py
	$(PYTHON) benchmarks/scaling.py
	$(PYTHON) benchmarks/superparam_scaling.py
	$(PYTHON) benchmarks/superparam.py
	$(PYTHON) benchmarks/md.py
	$(PYTHON) benchmarks/gas_dynamics.py
	$(PYTHON) benchmarks/couplers.py

# hmmpar's SSA against GillesPy2's compiled solver; installs GillesPy2 into its own venv
# (benchmarks/.venv-gillespy2: needs PyPI and g++ on the first run), about 6 minutes
bench-gillespy2: setup
	$(PYTHON) benchmarks/ssa_gillespy2.py

# hmmpar's convection micro model against Dedalus 3 (time per step, Nu, Vrms); installs Dedalus into
# its own venv (benchmarks/.venv-dedalus: needs PyPI, and apt-get for the FFTW/MPI headers on the
# first run, ~2 min), then ~3.5 min
bench-dedalus: setup
	$(PYTHON) benchmarks/convection.py

clean:
	rm -rf runs .pytest_cache .venv/.hmmpar-ready
