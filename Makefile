# sysbox-ro-webhook: `make help` lists the targets.

CARGO   ?= cargo
BIN     := target/release/sysbox-ro-webhook
IMAGE   ?= sysbox-ro-webhook:dev
OVERLAY ?= deploy/overlays/self-signed
KUBECTL ?= kubectl

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the release binary (target/release/sysbox-ro-webhook)
	$(CARGO) build --release --locked --bin sysbox-ro-webhook

.PHONY: demo
demo: build ## Serve the embedded example cluster (no cluster needed) and answer two sample reviews
	examples/demo.sh

.PHONY: run
run: build ## Serve the example cluster state on 127.0.0.1:8443 (admin :8080) until Ctrl-C
	@[ -f certs/dev/tls.crt ] || $(BIN) certs --ip 127.0.0.1 --dns localhost --out certs/dev >/dev/null
	$(BIN) serve --listen 127.0.0.1:8443 --admin-listen 127.0.0.1:8080 \
	  --tls-cert certs/dev/tls.crt --tls-key certs/dev/tls.key --cluster-state examples/cluster-state.yaml

.PHONY: test
test: test-unit test-deploy e2e ## All tests: unit and in-process first, then deploy checks, then end-to-end

.PHONY: test-unit
test-unit: ## Unit and in-process tests (engine, router, TLS, Go scheduling and sysbox-mgr flag references, check)
	tests/check/validate-sarif.sh install
	$(CARGO) test --locked

.PHONY: test-deploy
test-deploy: ## Lint the Dockerfile, render and check every deploy overlay and the Helm chart (tests/deploy/check.sh)
	$(CARGO) build --locked --bin sysbox-ro-webhook
	tests/e2e/build-control-plane.sh >/dev/null
	SYSBOX_RO_BIN=target/debug/sysbox-ro-webhook tests/deploy/check.sh

.PHONY: lint-deploy
lint-deploy: test-deploy ## Same as test-deploy

.PHONY: e2e
e2e: ## End-to-end tests against a real etcd + kube-apiserver (built once into ~/.cache)
	tests/e2e/run.sh

.PHONY: lint
lint: ## rustfmt check and clippy with warnings denied
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

.PHONY: bench
bench: ## Benchmarks: load against the bare stack and a kube-typed peer, engine (criterion, callgrind), check throughput
	benches/run.sh
	$(CARGO) bench --locked --bench engine
	$(CARGO) bench --locked --bench check_throughput
	benches/callgrind.sh

FUZZ_SECONDS ?= 60

.PHONY: fuzz
fuzz: ## Fuzz the readers with cargo-afl (AFL++) for FUZZ_SECONDS per target; not in CI
	fuzz/run.sh $(FUZZ_SECONDS)

SOAK_SECONDS ?= 600

.PHONY: soak
soak: build ## Soak: SOAK_SECONDS (600) of reviews against a release serve, certificates rotated every 30 s, node labels churned every 1 s on a real kube-apiserver; not in CI
	tests/e2e/build-control-plane.sh >/dev/null
	SOAK_SECONDS=$(SOAK_SECONDS) nice -n 10 python3 benches/soak.py $(BIN)

.PHONY: bench-phases
bench-phases: ## Instructions per request, phase by phase, in each server of the load benchmark (callgrind)
	benches/phases.sh

.PHONY: bench-conftest
bench-conftest: ## check next to the same check as a conftest (Rego) policy: agreement, then manifests/s (benches/conftest.sh)
	benches/conftest.sh

.PHONY: bench-memory
bench-memory: ## RSS of serve around large reviews, per allocator (benches/memory.sh)
	benches/memory.sh

.PHONY: certs
certs: build ## Make a CA and serving certificate for the self-signed overlay
	$(BIN) certs --service sysbox-ro-webhook --namespace sysbox-ro-webhook --out $(OVERLAY)/certs

.PHONY: deploy
deploy: ## Apply the self-signed overlay to the current kubectl context (OVERLAY=... to choose)
	$(KUBECTL) apply -k $(OVERLAY)
	$(KUBECTL) -n sysbox-ro-webhook rollout status deployment/sysbox-ro-webhook --timeout=2m

.PHONY: image
image: ## Build the container image (needs a Docker engine): IMAGE=registry/name:tag
	docker build -t $(IMAGE) .
