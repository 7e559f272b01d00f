# stage-node: the two commands a newcomer types are `make run` and `make test`.
# Each installs the Debian packages it needs (only those missing), then builds.
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEMO_SECONDS ?=
FUZZ_SECONDS ?= 60

.PHONY: all build run test bench fuzz deploy-check clean

all: build

build:
	@scripts/deps.sh build
	@cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSN_TESTS=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build build/release -j $(JOBS)
	@ln -sf release/stage-node build/stage-node

# The chat demo on a local 3-node cluster (scripts/run-demo.py): until Ctrl-C, or for
# DEMO_SECONDS, then a summary.
run: build
	@python3 scripts/run-demo.py --binary build/stage-node $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS))

test:
	@scripts/deps.sh test
	@scripts/test.sh

bench:
	@scripts/deps.sh bench
	@scripts/bench.sh

deploy-check:
	@scripts/deps.sh test
	@scripts/deploy-check.sh

fuzz:
	@scripts/deps.sh test
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
