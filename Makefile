# The two commands of the README are `make run` and `make test`; each sets up the venv and the build.
VENV ?= .venv
PY := $(VENV)/bin/python
SETUP := bash scripts/setup_env.sh

.PHONY: run demo test bench wheel cpp-test sanitize clean

run:  ## the main job: train CartPole-v1 on the native engine to a solved policy and report
	@$(SETUP)
	@$(PY) -m pysf.train --env CartPole-v1 --experiment cartpole --train_for_env_steps 1000000 \
		--restart_behavior overwrite

demo:  ## build, compile and run the default model in C++ (the foundation demo)
	@$(SETUP)
	@$(PY) -m pysf.demo

test:  ## the whole test suite (C++ tests included)
	@$(SETUP)
	@bash scripts/run_tests.sh

bench:  ## pysf vs Sample Factory vs Stable-Baselines3 on this machine: CartPole, Pong and HalfCheetah, several policies (~60 min)
	@$(SETUP)
	@bash benchmarks/peers/setup_peers.sh || echo "[pysf bench] a peer failed to install; it is reported as not installed"
	@$(PY) -m benchmarks.compare $(BENCH_ARGS)
	@$(PY) -m benchmarks.suites $(SUITES_ARGS)
	@$(PY) -m benchmarks.multi_policy $(MULTI_POLICY_ARGS)

wheel:  ## build a wheel into dist/
	@$(SETUP)
	@$(PY) -m pip wheel --no-build-isolation --no-deps -w dist .

cpp-test:  ## the standalone C++ tests (tests/cpp)
	@$(SETUP)
	@bash scripts/cpp_tests.sh

sanitize:  ## the C++ tests under AddressSanitizer and ThreadSanitizer
	@$(SETUP)
	@bash scripts/cpp_tests.sh address
	@bash scripts/cpp_tests.sh thread

clean:
	rm -rf build dist
