# The two commands a user needs:
#   make lab    create the embedded lab and deploy site.yml onto it
#   make test   run every test (lint, unit, build, Molecule)
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/sdn_ha
VENV := $(CACHE)/venv
export PATH := $(VENV)/bin:$(PATH)
# The lab's podman: its own config (netavark, runc) and its own storage.
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export CONTAINERS_STORAGE_CONF := $(CURDIR)/lab/storage.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The lab's vault password (it decrypts the lab's view sync key). Given to
# the lab's runs only, not in ansible.cfg: an `ansible-vault encrypt_string`
# typed in this tree must never encrypt a real secret with a public password.
export ANSIBLE_VAULT_PASSWORD_FILE := $(CURDIR)/lab/vault-password
export SDN_HA_CACHE := $(CACHE)

.PHONY: setup lab status destroy test lint unit build collection ee-context examples molecule sidecar-wheel bench-failover bench-soak bench-mirror bench-relay bench-nat bench-nat-pool bench-fleet bench-peer-view bench-pace bench-runtime bench-capture bench-gate bench-figures

setup:
	@bash scripts/setup.sh

# Every target that talks to lab addresses checks first that lab traffic
# stays on this machine (lab/labnet.py; create.yml runs it itself).
LABNET := python3 lab/labnet.py check

lab: setup
	ansible-playbook lab/create.yml
	ansible-playbook site.yml
	ansible-playbook playbooks/status.yml

status:
	@$(LABNET)
	@ansible-playbook playbooks/status.yml

destroy:
	ansible-playbook lab/destroy.yml

test: setup lint unit build examples collection molecule

lint:
	yamllint .
	ansible-lint
	ruff check .
	ruff format --check .

# The collection's unit tests and the sidecar's (sidecar/tests).
unit:
	pytest

# Rebuild the sidecar's wheel (roles/mirror/files) after changing sidecar/;
# the sidecar's tests fail while the wheel differs from the sources.
sidecar-wheel:
	bash scripts/sidecar-wheel.sh

build:
	bash scripts/build-check.sh

# What Galaxy, Automation Hub and a certified collection's maintainers run, on
# the built collection: ansible-test sanity and units, antsibull-docs lint,
# galaxy-importer, antsibull-changelog, ansible-builder introspect and create.
collection:
	bash scripts/collection-checks.sh

# The execution environment's build context (execution-environment/context),
# with the collection built into it. Building the image needs its base image
# from quay.io: cd execution-environment && ansible-builder build -t sdn-ha-ee
ee-context: setup
	rm -rf execution-environment/context execution-environment/sdn_ha-control_plane-*.tar.gz
	ansible-galaxy collection build --force --output-path execution-environment .
	cd execution-environment && $(CACHE)/venv-release/bin/ansible-builder create -c context

# Every example inventory the docs show passes the validator (it runs on
# this machine and contacts no host).
examples:
	@log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for example in docs/examples/*/; do \
	  ansible-playbook -i $$example playbooks/validate.yml --skip-tags validate_hosts > $$log 2>&1 \
	    || { cat $$log; echo "examples: $$example FAILED"; exit 1; }; \
	  echo "examples: $$example passes the validator"; \
	done

# One lab for the whole run: the default scenario builds and checks it, the
# validation, mirror, failover and nat scenarios run against it (failover
# turns TLS on, so the relay; nat last: it switches the lab to NAT mode),
# then it is destroyed.
molecule:
	molecule test -s default
	molecule test -s validation
	molecule test -s mirror
	molecule test -s failover
	molecule test -s nat
	molecule destroy -s default

# Benchmarks: not part of `make test`. They need a running lab (`make lab`).
TRIALS ?= 5
bench-failover:
	python3 benchmarks/failover.py --trials $(TRIALS)

# The mirror's benchmarks need only the lab image (`make setup`).
# bench-mirror: (a) direct, (b) HAProxy alone and (c) HAProxy with the
# kernel capture feeding a master, interleaved, judged against its targets;
# (p), the relay in front of HAProxy (the TLS path, in plain TCP), runs too.
# bench-capture: the same capture behind NAT mode's DNAT, with its controls.
# bench-relay: the relay of proxy mode with TLS; AGAINST=REV adds the relay
# of git revision REV, measured in the same run.
# NICE=N adds the daemon at nice N under SCHED_BATCH (mirror_capture_nice).
RUNS ?= 5
bench-mirror: setup
	python3 benchmarks/capture.py --path proxy --relay --runs $(RUNS) $(if $(NICE),--nice $(NICE))

bench-capture: setup
	python3 benchmarks/capture.py --path nat --runs $(RUNS) --controls

bench-relay: setup
	python3 benchmarks/relay.py --runs $(RUNS) $(if $(AGAINST),--against $(AGAINST))

# Proxy against NAT mode through an LB failover; converges the lab into each.
bench-nat:
	python3 benchmarks/nat_failover.py --trials $(TRIALS)

# The pool with the emulated fleet: the spread over the backups, and a dying
# backup's switches served again, NAT mode against proxy mode.
bench-nat-pool:
	python3 benchmarks/nat_pool.py --trials $(TRIALS)

# A fleet of N switches on the lab's rack (10 real OVS in namespaces, the rest
# emulated), for each N and mode: connect, an LB and a backup killed, spread,
# sidecar memory and CPU per switch, site.yml's run time, one switch added.
# Three trials unless TRIALS is given; converges the lab and back.
NS ?= 1,50,200,500
MODES ?= proxy,nat
bench-fleet:
	python3 benchmarks/fleet.py --ns $(NS) --modes $(MODES) --trials $(if $(filter command line environment,$(origin TRIALS)),$(TRIALS),3)

# The active LB killed at N switches, with the master's catch-up unpaced
# (mirror_master_connect_rate 0), paced (100) and with none (the master
# stopped, the baseline): ROUNDS (2) rounds of each; ARMS=20,100,off picks
# others.
bench-pace:
	python3 benchmarks/pace.py --n $(or $(N),500) --mode $(or $(MODE),proxy) --rounds $(if $(filter command line environment,$(origin ROUNDS)),$(ROUNDS),2) $(if $(ARMS),--arms $(ARMS))

# The master's Faucet at N switches, its own lists of running peers against
# sdn-ha-faucet's view (controller_peer_view), ROUNDS (2) rounds of each.
bench-peer-view:
	python3 benchmarks/peer_view.py --n $(or $(N),500) --mode $(or $(MODE),nat) --rounds $(if $(filter command line environment,$(origin ROUNDS)),$(ROUNDS),2)

# What NAT mode's identity gate costs a connecting switch, against the same
# switch with the gate stopped; converges the lab into NAT mode and back.
ROUNDS ?= 5
bench-gate:
	python3 benchmarks/gate.py --rounds $(ROUNDS)

# Run times of site.yml (converged), site.yml --check and the status view,
# against a bare `ansible -m ping` of every lab host in the same run.
bench-runtime:
	python3 benchmarks/runtime.py --runs $(RUNS)

# Figures in docs/figures/, drawn from the saved results (benchmarks/results/
# *.json) by benchmarks/benchlib/figures.py, with matplotlib from a virtualenv
# of the benchmarks' own.
BENCH_VENV := $(CACHE)/bench-venv
bench-figures:
	@test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/pip install -q --disable-pip-version-check -r benchmarks/requirements.txt
	cd benchmarks && $(BENCH_VENV)/bin/python -m benchlib.figures

SOAK_SECONDS ?= 300
SOAK_LOSS ?= 0
bench-soak:
	python3 benchmarks/vrrp_soak.py --seconds $(SOAK_SECONDS) --loss $(SOAK_LOSS) $(if $(filter-out 0,$(SOAK_LOSS)),--no-busy)
