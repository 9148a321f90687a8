# Everyday commands. The benchmark needs MariaDB and Redis on their default
# local ports (as the tests do) and installs wrk with apt-get when missing.

BENCH_FLAGS ?=

.PHONY: run test bench bench-smoke stack stack-down stack-status stack-dashboard stack-test

run:
	go run .

# Every package against the real servers; then the race detector over the
# units whose concurrency runs in-process (ordering's group commit, the
# caches, the handlers). The end-to-end packages run without it: under it
# they pass the CI's time on two cores.
RACE_PACKAGES = ./service/... ./handlers ./admission ./consumer ./config ./metrics ./internal/dashboard ./internal/harness ./migrations

test:
	go test -count=1 -timeout 20m ./...
	go test -race -count=1 -timeout 10m $(RACE_PACKAGES)

# Every version against the ceilings measured in the same run; writes
# docs/BENCHMARKS.md and docs/bench/. About 20 minutes; e.g. BENCH_FLAGS="-d 10s".
bench:
	go run ./bench $(BENCH_FLAGS)

# The same steps with 1 s loads into a temporary directory: checks the harness.
bench-smoke:
	go run ./bench -smoke $(BENCH_FLAGS)

# The whole deployment of docker-compose.yml as processes on loopback ports
# (nginx, two instances, nsqlookupd, two nsqd, nsqadmin, a three-master Redis
# Cluster, two MariaDB servers, Prometheus), its data and logs in STACK_DIR.
# Needs nginx, prometheus, mariadb-server and redis-server installed.
STACK_DIR ?= data/stack

stack:
	go run ./internal/stack/cmd -dir $(STACK_DIR) up

stack-down:
	go run ./internal/stack/cmd -dir $(STACK_DIR) down

# The Grafana dashboard's panels over the last 15 minutes, drawn from the
# running stack's Prometheus into dashboard.svg (no Grafana needed).
stack-dashboard:
	go run ./internal/stack/cmd -dir $(STACK_DIR) -out dashboard.svg dashboard

stack-status:
	go run ./internal/stack/cmd -dir $(STACK_DIR) status

# The mixed load through nginx with an instance killed, on a stack of its
# own in a temporary folder; prints the figures.
stack-test:
	go test -count=1 -v -run TestMixedLoadThroughNginx ./internal/stack/
