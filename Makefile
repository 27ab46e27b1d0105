# s4listen — build, run and test. `make demo` and `make test` work on a fresh Debian machine
# (they install the system libraries first; apt needs root).

SWIFT        ?= swift
PREFIX       ?= /usr/local
APT_PACKAGES := libasound2-dev libsndfile1-dev libfftw3-dev libopenblas-dev pkg-config sox alsa-utils systemd
BIN          := .build/release/s4listen
SAMPLES      := $(wildcard samples/*.flac)
# The systemd units (the listener and the Wyoming server), each with its options file.
UNITS        := s4listen s4listen-wyoming
# The Python side (training, evaluation tools, the Wyoming tests' client) runs in a virtual
# environment of exactly the versions in PY_LOCK, made from Debian's /usr/bin/python3 and kept
# outside the clone, named by the lock file's hash: a fresh clone (CI) reuses it, a changed lock
# makes a new one and keeps the one before it (a training run started before the change may still
# be using it), no more. s4train is found in this tree (PYTHONPATH), not installed, so an
# environment shared by several clones never points into an old one.
SYSTEM_PYTHON ?= /usr/bin/python3
PY_LOCK      := models/train/requirements.lock
PY_ENV_ROOT  ?= $(HOME)/.cache/s4listen
PY_ENV       := $(PY_ENV_ROOT)/venv-$(shell sha256sum $(PY_LOCK) | cut -c1-16)
PYTHON       := PYTHONPATH=$(CURDIR)/models/train $(PY_ENV)/bin/python

SHARED_DATA  := ../shared/data/speech-commands
CLIPS        ?= $(SHARED_DATA)/test
SEED         ?= 1
NOISE        ?= $(dir $(abspath $(CLIPS)))_background_noise_

.PHONY: all deps py-env build demo test lint unit-check install bench stream-eval model-eval threshold-sweep train-model val-clips py-test fuzz fixtures clean

all: build

# Installs those of the Debian packages $(1) that are missing (nothing when all are present).
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

# The system libraries.
deps:
	$(call apt_install,$(APT_PACKAGES))

# The Python environment (see PY_ENV): built once per lock file, complete when its stamp exists.
# The lock is an order-only prerequisite: the environment's name already holds the lock's hash,
# and a fresh clone's lock is always newer than the stamp, which would rebuild it every time.
py-env: $(PY_ENV)/.complete
$(PY_ENV)/.complete: | $(PY_LOCK)
	$(call apt_install,python3-venv)
	rm -rf $(PY_ENV) && mkdir -p $(PY_ENV_ROOT)
	$(SYSTEM_PYTHON) -m venv $(PY_ENV)
	$(PY_ENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps -r $(PY_LOCK)
	ls -dt $(PY_ENV_ROOT)/venv-* | tail -n +3 | xargs -r rm -rf
	touch $@

# Release build; the Swift runtime is linked statically so the installed binary needs no toolchain.
build: deps
	$(SWIFT) build -c release --static-swift-stdlib

# The main job: classify the bundled samples with the bundled default model.
demo: build
	$(BIN) info
	$(BIN) classify $(SAMPLES)

# The Swift tests find the environment's python3 first on PATH (the Wyoming tests run
# tools/wyoming_client.py with it); then the units, then the Python tests.
test: deps py-env
	PATH="$(PY_ENV)/bin:$$PATH" $(SWIFT) test
	$(MAKE) --no-print-directory unit-check
	$(MAKE) --no-print-directory py-test

# Style and lint: the toolchain's swift format (.swift-format) over the Swift sources, warnings
# failing, and ruff (ruff.toml, the version in PY_LOCK) over models/train and tools.
# `swift format -i -r Sources Tests Fuzz/Sources Package.swift` applies the Swift formatting.
SWIFT_LINT_PATHS := Sources Tests Fuzz/Sources Package.swift
lint: py-env
	$(SWIFT) format lint --strict --recursive $(SWIFT_LINT_PATHS)
	$(PYTHON) -m ruff check models/train tools
	@echo "lint: swift format and ruff clean"

# Each systemd unit: `systemd-analyze verify` must be clean and the offline security exposure at
# most 2.0 (ExecStart pointed at a stand-in binary, as nothing is installed).
unit-check:
	@for unit in $(UNITS); do \
	tmp=$$(mktemp -d); sed "s|/usr/local/bin/s4listen|$$tmp/s4listen|" systemd/$$unit.service > $$tmp/$$unit.service; \
	cp /bin/true $$tmp/s4listen; \
	out=$$(systemd-analyze verify $$tmp/$$unit.service 2>&1); \
	if [ -n "$$out" ]; then echo "unit-check: $$unit: systemd-analyze verify: $$out"; rm -rf $$tmp; exit 1; fi; \
	score=$$(systemd-analyze security --offline=true $$tmp/$$unit.service 2>&1 | sed -n "s/.*exposure level for $$unit.service: \([0-9.]*\).*/\1/p"); \
	rm -rf $$tmp; \
	if [ -z "$$score" ] || ! awk "BEGIN { exit !($$score <= 2.0) }"; then echo "unit-check: $$unit: exposure '$$score' > 2.0"; exit 1; fi; \
	echo "unit-check: $$unit.service: systemd-analyze verify clean, exposure $$score (at most 2.0 required)"; \
	done

# Installs the binary, the bundled model, the unit and its options file (kept if present);
# the unit's paths follow PREFIX.
install: build
	install -Dm755 $(BIN) $(DESTDIR)$(PREFIX)/bin/s4listen
	install -Dm644 models/default.safetensors $(DESTDIR)$(PREFIX)/share/s4listen/default.safetensors
	install -d $(DESTDIR)/etc/systemd/system $(DESTDIR)/etc/default
	for unit in $(UNITS); do \
	sed 's|/usr/local/|$(PREFIX)/|g' systemd/$$unit.service > $(DESTDIR)/etc/systemd/system/$$unit.service; \
	[ -e $(DESTDIR)/etc/default/$$unit ] || sed 's|/usr/local/|$(PREFIX)/|g' systemd/$$unit.default > $(DESTDIR)/etc/default/$$unit; \
	chmod 644 $(DESTDIR)/etc/systemd/system/$$unit.service $(DESTDIR)/etc/default/$$unit; \
	done
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; start with: systemctl enable --now s4listen (microphone) or s4listen-wyoming (Wyoming server)"

bench: build
	$(BIN) bench

# Streaming benchmark (docs/benchmarks.md): a 30-minute command scene from CLIPS, negative speech
# and sounds (NEGATIVES' test folders), plain and noisy, at 16 and 48 kHz, the scene through a
# file, a pipe and ALSA; matched/wrong/missed, latency, false alarms per hour, the DET curve in
# models/train/runs/stream-eval/SPLIT/. SPLIT=validation (where thresholds are chosen): the
# validation speakers (val-clips) and the negatives' validation carve instead; test only reports.
SPLIT        ?= test
NEGATIVES    ?= ../shared/data/negatives
stream-eval: build py-env $(if $(filter validation,$(SPLIT)),val-clips)
	$(PYTHON) tools/stream_eval.py --split $(SPLIT) --clips $(if $(filter validation,$(SPLIT)),$(VAL_CLIPS),$(CLIPS)) \
		--noise $(NOISE) --negatives $(NEGATIVES) --seed $(SEED) --model $(MODEL) $(THRESHOLD_WRITE)

# Test-folder accuracy of MODEL at six input rates, measured by s4listen (clips resampled with sox).
MODEL        ?= models/default.safetensors
TEST_CLIPS   ?= $(SHARED_DATA)/test
model-eval: build py-env
	$(PYTHON) tools/model_eval.py --model $(MODEL) --clips $(TEST_CLIPS)

# Reproduces models/default.safetensors from the shared data on this project's machine (CPU, two
# threads, about 1 h 10 min: models/README.md) by its recipe, models/train/recipes/default.toml
# (the teacher, then two phases; what each setting is and why: the recipe), then chooses its
# detection threshold. Resumable: a rerun reuses every finished step and resumes training.
# TRAIN_ENV: glibc hands PyTorch's large per-step buffers back to the kernel and faults them in
# again on the next step (20-40% of the CPU time went to the kernel); these keep them.
RECIPE       ?= recipes/default.toml
TRAIN_ENV    := MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
train-model: py-env
	cd models/train && $(TRAIN_ENV) $(PYTHON) -m s4train train $(RECIPE)
	$(MAKE) threshold-sweep MODEL=models/default.safetensors

# The validation speakers' clips (held out of training) laid out like test/, for choosing the
# detection threshold without touching test/:
#   make stream-eval SPLIT=validation
VAL_CLIPS    := models/train/runs/val-clips
val-clips: py-env
	cd models/train && $(PYTHON) -m s4train val-clips recipes/default.toml $(abspath $(VAL_CLIPS))

# The detection threshold: the validation streams (never test/), every threshold scored offline,
# the rule's choice (s4train.stream_scoring.choose_threshold, models/README.md) stored in MODEL as
# its detection_threshold (train-model runs it). `make stream-eval SPLIT=validation` only prints it.
threshold-sweep:
	$(MAKE) stream-eval SPLIT=validation MODEL=$(MODEL) THRESHOLD_WRITE=--write

# The Python tests (s4train on CPU, one thread; under a minute): part of `make test`.
py-test: py-env
	cd models/train && OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q

# libFuzzer on the pipe decoder (WAV header parser), the model file reader and validation, and
# the detector: each target for FUZZ_SECONDS from the committed seed corpus (Fuzz/Corpus; what it
# finds goes to a scratch folder). A crash leaves its input in Fuzz/crashes/ and fails the run
# (Swift's own backtracer is off there: it caught the signal first and no input was written).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := FuzzPipeSource FuzzModelFile FuzzDetector FuzzWyomingSession
fuzz: deps
	cd Fuzz && $(SWIFT) build -c release -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -use-ld=lld
	@mkdir -p Fuzz/crashes; for t in $(FUZZ_TARGETS); do \
		work=$$(mktemp -d); log=$$(mktemp); \
		SWIFT_BACKTRACE=enable=no Fuzz/.build/release/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=Fuzz/crashes/$$t- $$work Fuzz/Corpus/$$t >$$log 2>&1; status=$$?; \
		echo "fuzz: $$t: $$(grep -E '^Done [0-9]+ runs' $$log), $$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' $$log | tail -n 1)"; \
		if [ $$status -ne 0 ]; then tail -n 40 $$log; rm -rf $$work $$log; exit $$status; fi; \
		rm -rf $$work $$log; \
	done

# Regenerates the Swift test fixtures from the PyTorch code (a deliberate, reviewed change).
fixtures: py-env
	cd models/train && $(PYTHON) -m s4train fixtures

clean:
	rm -rf .build
