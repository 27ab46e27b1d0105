# s4listen — build, run and test. `make demo` and `make test` work on a fresh Debian machine
# (they install the system libraries first; apt needs root).

SWIFT        ?= swift
PREFIX       ?= /usr/local
APT_PACKAGES := libasound2-dev libsndfile1-dev libfftw3-dev libopenblas-dev pkg-config sox alsa-utils systemd
BIN          := .build/release/s4listen
SAMPLES      := $(wildcard samples/*.flac)
# The systemd units (the listener and the Wyoming server), each with its options file.
UNITS        := s4listen s4listen-wyoming
# What the Wyoming tests need on the Python side: the real client library and an audio reader.
PY_TEST_DEPS := wyoming soundfile numpy

SHARED_DATA  := ../shared/data/speech-commands
CLIPS        ?= $(SHARED_DATA)/test
SEED         ?= 1
NOISE        ?= $(dir $(abspath $(CLIPS)))_background_noise_

.PHONY: all deps build demo test lint unit-check install bench scene-eval model-eval threshold-sweep train-model val-clips synth-deps synth-data py-test fuzz fixtures clean

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

# Release build; the Swift runtime is linked statically so the installed binary needs no toolchain.
build: deps
	$(SWIFT) build -c release --static-swift-stdlib

# The main job: classify the bundled samples with the bundled default model.
demo: build
	$(BIN) info
	$(BIN) classify $(SAMPLES)

test: deps
	python3 -c "import wyoming, soundfile, numpy" 2>/dev/null || python3 -m pip install -q $(PY_TEST_DEPS)
	$(SWIFT) test
	$(MAKE) --no-print-directory unit-check

# Style and lint: the toolchain's swift format (.swift-format) over the Swift sources, warnings
# failing, and ruff (ruff.toml) over models/train and tools, installed with pip when missing.
# `swift format -i -r Sources Tests Fuzz/Sources Package.swift` applies the Swift formatting.
SWIFT_LINT_PATHS := Sources Tests Fuzz/Sources Package.swift
lint:
	$(SWIFT) format lint --strict --recursive $(SWIFT_LINT_PATHS)
	@python3 -m ruff --version >/dev/null 2>&1 || python3 -m pip install -q ruff
	python3 -m ruff check models/train tools
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

# Streaming benchmark: a ten-minute scene from CLIPS at 16 and 48 kHz through a file, a pipe and ALSA.
scene-eval: build
	python3 -c "import numpy" 2>/dev/null || python3 -m pip install -q numpy
	python3 tools/scene_eval.py --clips $(CLIPS) --noise $(NOISE) --seed $(SEED)

# Test-folder accuracy of MODEL at six input rates, measured by s4listen (clips resampled with sox).
MODEL        ?= models/default.safetensors
TEST_CLIPS   ?= $(SHARED_DATA)/test
model-eval: build
	python3 tools/model_eval.py --model $(MODEL) --clips $(TEST_CLIPS)

# Reproduces models/default.safetensors from the shared data on this project's machine (CPU; wall
# time in models/README.md), resumable: a rerun reuses every finished phase and resumes training.
#  1. the teacher (training only, never shipped): Google's speech_embedding from the openwakeword
#     0.5.1 wheel (fetched by pip, checked by sha256), a small head trained on the training
#     speakers on mixed pairs of embeddings (mixup), and its logits on 3 augmented copies of each
#     training clip (runs/oww-cache);
#  2. the student: the stages network (S4D filter bank at the input rate, 10 ms frames, six S4D
#     blocks of width 192 at the frame clock), distilled from the cached logits at drawn rates
#     8-48 kHz, in two phases (runs/stages-oww, then runs/stages-oww-2, which exports
#     default.safetensors).
# Measured as 9 + 45 + 16 minutes on two threads (models/README.md).
# TEACHER=logmel uses the log-mel CNN teacher of teacher.py instead (no pretrained weights).
TEACHER      ?= oww
# glibc hands PyTorch's large per-step buffers back to the kernel and faults them in again on the
# next step: 20-40% of the CPU time went to the kernel (models/train/README.md).
TRAIN_ENV    := MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
TRAIN_THREADS ?= 2
# What both student phases share: batch, rates, speed, validation, resume.
STUDENT_FLAGS := --arch stages --threads $(TRAIN_THREADS) --batch-size 32 --weight-decay 0.05 --warmup-steps 100 \
                 --multirate-prob 0.5 --min-rate 8000 --max-rate 48000 --speed-min 0.9 --speed-max 1.1 \
                 --eval-rates 16000,8000 --resume auto --d-model 192
# Phase 1 from scratch with the bank frozen throughout: the frame stages learn from its stored log
# frames of each teacher copy at 12 drawn (rate, speed) pairs (--frozen-frames; the log-mel teacher
# runs live, so with it phase 1 hears raw audio instead). Phase 2: a warm restart of 15 epochs from
# phase 1's best weights on raw audio at fresh draws, the bank training too, with more weight on
# the teacher's softer targets (models/README.md).
FROZEN_oww    := --frozen-frames 12
FROZEN_logmel :=
PHASE1_FLAGS  := --epochs 80 --lr 0.004 --ssm-lr 0.001 --freeze-front-end-epochs 80 $(FROZEN_$(TEACHER)) \
                 --kd-alpha 0.7 --kd-temperature 2
PHASE2_FLAGS  := --epochs 15 --lr 0.002 --ssm-lr 0.0005 --kd-alpha 0.9 --kd-temperature 3
TEACHER_oww    := --teacher-cache runs/oww-cache
TEACHER_logmel := --teacher runs/teacher/teacher.pt
train-model:
	python3 -m pip install -q -r models/train/requirements.txt
ifeq ($(TEACHER),logmel)
	cd models/train && python3 teacher.py --threads $(TRAIN_THREADS) --out-dir runs/teacher
else
	cd models/train && python3 oww_teacher.py --threads $(TRAIN_THREADS) --mixup 0.4
endif
	cd models/train && $(TRAIN_ENV) python3 train.py $(STUDENT_FLAGS) $(PHASE1_FLAGS) $(TEACHER_$(TEACHER)) \
		--out-dir runs/stages-$(TEACHER)
	cd models/train && $(TRAIN_ENV) python3 train.py $(STUDENT_FLAGS) $(PHASE2_FLAGS) $(TEACHER_$(TEACHER)) \
		--init-from runs/stages-$(TEACHER)/last.pt --out-dir runs/stages-$(TEACHER)-2 \
		--export ../default.safetensors
	$(MAKE) threshold-sweep MODEL=models/default.safetensors THRESHOLD_WRITE=--write

# The validation speakers' clips (held out of training) laid out like test/, for choosing the
# detection threshold without touching test/:
#   make val-clips && make scene-eval CLIPS=$(VAL_CLIPS) NOISE=$(SHARED_DATA)/_background_noise_
VAL_CLIPS    := models/train/runs/val-clips
val-clips:
	python3 -m pip install -q -r models/train/requirements.txt
	cd models/train && python3 val_clips.py $(abspath $(VAL_CLIPS))

# The detection threshold by the rule in models/README.md: scenes of the validation speakers
# (never test/), one `listen --all` run per seed, every threshold scored offline.
# THRESHOLD_WRITE=--write stores the choice in MODEL as its detection_threshold (train-model does).
threshold-sweep: build val-clips
	python3 tools/threshold_sweep.py --clips $(VAL_CLIPS) --noise $(SHARED_DATA)/_background_noise_ \
		--model $(MODEL) $(THRESHOLD_WRITE)

# Synthetic speakers (espeak-ng and flite voices saying the words) for `train.py --extra-train`.
SPEECH_SYNTH := espeak-ng flite
synth-deps:
	$(call apt_install,$(SPEECH_SYNTH))
synth-data: synth-deps
	python3 -m pip install -q -r models/train/requirements.txt
	cd models/train && python3 synth.py $(abspath models/train/runs/synth)

# Python training code tests (PyTorch on CPU; not part of `make test`).
py-test: synth-deps
	python3 -m pip install -q -r models/train/requirements.txt
	cd models/train && python3 -m pytest -q

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
fixtures:
	cd models/train && python3 make_fixtures.py

clean:
	rm -rf .build
