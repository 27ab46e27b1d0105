# s4listen — build, run and test. `make demo` and `make test` work on a fresh Debian machine
# (they install the system libraries first; apt needs root).

SWIFT        ?= swift
APT_PACKAGES := libasound2-dev libsndfile1-dev libfftw3-dev libopenblas-dev pkg-config sox
BIN          := .build/release/s4listen
SAMPLES      := $(wildcard samples/*.flac)

.PHONY: all deps build demo test bench py-test fixtures clean

all: build

# Installs the system libraries that are missing (skipped when all are present).
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c release

# The main job: classify the bundled samples with the bundled default model.
demo: build
	$(BIN) info
	$(BIN) classify $(SAMPLES)

test: deps
	$(SWIFT) test

bench: build
	$(BIN) bench

# Python training code tests (PyTorch on CPU; not part of `make test`).
py-test:
	python3 -m pip install -q -r models/train/requirements.txt
	cd models/train && python3 -m pytest -q

# Regenerates the Swift test fixtures from the PyTorch code (a deliberate, reviewed change).
fixtures:
	cd models/train && python3 make_fixtures.py

clean:
	rm -rf .build
