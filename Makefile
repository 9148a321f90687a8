# Everyday commands. The benchmark needs MariaDB and Redis on their default
# local ports (as the tests do) and installs wrk with apt-get when missing.

BENCH_FLAGS ?=

.PHONY: run test bench bench-smoke

run:
	go run .

test:
	go test -race -count=1 ./...

# Every version against the ceilings measured in the same run; writes
# docs/BENCHMARKS.md and docs/bench/. A few minutes; e.g. BENCH_FLAGS="-d 10s".
bench:
	go run ./bench $(BENCH_FLAGS)

# The same steps with 1 s loads into a temporary directory: checks the harness.
bench-smoke:
	go run ./bench -smoke $(BENCH_FLAGS)
