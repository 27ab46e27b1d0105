# s4listen — build, run and test. `make demo` and `make test` work on a fresh Debian machine
# (they install the system libraries first; apt needs root).

SWIFT        ?= swift
# Where `make install` puts things, each under DESTDIR when set (a staging root: nothing outside it
# is touched then, and systemctl is not run). The units and options files go to SYSCONFDIR, as an
# administrator's own; a package puts the units in /lib/systemd/system instead (make deb).
PREFIX       ?= /usr/local
SYSCONFDIR   ?= /etc
UNITDIR      ?= $(SYSCONFDIR)/systemd/system
BINDIR       := $(PREFIX)/bin
DATADIR      := $(PREFIX)/share
MANDIR       := $(DATADIR)/man
# The version, defined once in the Swift sources (what `s4listen --version` prints).
VERSION      := $(shell sed -n 's/^public let programVersion = "\(.*\)"$$/\1/p' Sources/S4Service/ProgramVersion.swift)
# avahi-daemon, avahi-utils and dbus-daemon: the zeroconf test runs a private daemon (tools/zeroconf_check.sh).
APT_PACKAGES := libasound2-dev libsndfile1-dev libfftw3-dev libopenblas-dev libavahi-client-dev pkg-config sox alsa-utils \
                systemd man-db avahi-daemon avahi-utils dbus-daemon
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

.PHONY: all deps py-env build demo test lint unit-check install install-files uninstall deb deb-check bench peer-bench stream-eval model-eval listen-cost threshold-sweep train-model val-clips py-test fuzz fixtures clean

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
# most 2.0 (ExecStart pointed at a stand-in binary, as nothing is installed; the man page its
# Documentation= names found through MANPATH).
unit-check:
	@for unit in $(UNITS); do \
	tmp=$$(mktemp -d); sed "s|/usr/local/bin/s4listen|$$tmp/s4listen|" systemd/$$unit.service > $$tmp/$$unit.service; \
	cp /bin/true $$tmp/s4listen; install -Dm644 docs/s4listen.1 $$tmp/man/man1/s4listen.1; \
	out=$$(MANPATH="$$tmp/man:" systemd-analyze verify $$tmp/$$unit.service 2>&1); \
	if [ -n "$$out" ]; then echo "unit-check: $$unit: systemd-analyze verify: $$out"; rm -rf $$tmp; exit 1; fi; \
	score=$$(systemd-analyze security --offline=true $$tmp/$$unit.service 2>&1 | sed -n "s/.*exposure level for $$unit.service: \([0-9.]*\).*/\1/p"); \
	rm -rf $$tmp; \
	if [ -z "$$score" ] || ! awk "BEGIN { exit !($$score <= 2.0) }"; then echo "unit-check: $$unit: exposure '$$score' > 2.0"; exit 1; fi; \
	echo "unit-check: $$unit.service: systemd-analyze verify clean, exposure $$score (at most 2.0 required)"; \
	done

# Installs the binary, the bundled model, the man page, the shell completions, the units and
# their options files (an options file already there is kept); the units' paths follow PREFIX.
# Nothing is enabled or started. systemd is told of the units (daemon-reload) only when they went
# to the running system's /etc/systemd/system, never under DESTDIR.
install: build install-files
	@if [ -z "$(DESTDIR)" ] && [ "$(UNITDIR)" = /etc/systemd/system ] && [ -d /run/systemd/system ]; then \
		echo "systemctl daemon-reload"; systemctl daemon-reload; fi
	@echo "installed; start with: systemctl enable --now s4listen (microphone) or s4listen-wyoming (Wyoming server)"

# What `install` and `deb` copy, from a built binary.
install-files:
	install -Dm755 $(BIN) $(DESTDIR)$(BINDIR)/s4listen
	install -Dm644 models/default.safetensors $(DESTDIR)$(DATADIR)/s4listen/default.safetensors
	install -Dm644 docs/s4listen.1 $(DESTDIR)$(MANDIR)/man1/s4listen.1
	install -d $(DESTDIR)$(DATADIR)/bash-completion/completions $(DESTDIR)$(DATADIR)/zsh/vendor-completions \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	$(BIN) --generate-completion-script bash | sed '1{/^#!/d}' > $(DESTDIR)$(DATADIR)/bash-completion/completions/s4listen
	$(BIN) --generate-completion-script zsh > $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_s4listen
	$(BIN) --generate-completion-script fish > $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/s4listen.fish
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	for unit in $(UNITS); do \
	sed 's|/usr/local/|$(PREFIX)/|g; s|/etc/default/|$(SYSCONFDIR)/default/|g' systemd/$$unit.service > $(DESTDIR)$(UNITDIR)/$$unit.service; \
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/$$unit ] || sed 's|/usr/local/|$(PREFIX)/|g' systemd/$$unit.default > $(DESTDIR)$(SYSCONFDIR)/default/$$unit; \
	chmod 644 $(DESTDIR)$(UNITDIR)/$$unit.service $(DESTDIR)$(SYSCONFDIR)/default/$$unit; \
	done

# Removes what `install` put there with the same PREFIX, SYSCONFDIR and DESTDIR, but for the
# options files (they may hold the administrator's settings: removed by hand). A unit still
# enabled or running is named, not stopped.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then for unit in $(UNITS); do \
		if systemctl -q is-enabled $$unit 2>/dev/null || systemctl -q is-active $$unit 2>/dev/null; then \
		echo "uninstall: $$unit is enabled or running: systemctl disable --now $$unit first"; exit 1; fi; done; fi
	rm -f $(DESTDIR)$(BINDIR)/s4listen $(DESTDIR)$(MANDIR)/man1/s4listen.1 \
		$(DESTDIR)$(DATADIR)/bash-completion/completions/s4listen $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_s4listen \
		$(DESTDIR)$(DATADIR)/fish/vendor_completions.d/s4listen.fish $(foreach unit,$(UNITS),$(DESTDIR)$(UNITDIR)/$(unit).service)
	rm -rf $(DESTDIR)$(DATADIR)/s4listen
	@if [ -z "$(DESTDIR)" ] && [ "$(UNITDIR)" = /etc/systemd/system ] && [ -d /run/systemd/system ]; then \
		echo "systemctl daemon-reload"; systemctl daemon-reload; fi
	@echo "uninstalled; kept: $(foreach unit,$(UNITS),$(DESTDIR)$(SYSCONFDIR)/default/$(unit))"

# The Debian package s4listen_VERSION_ARCH.deb (dpkg-deb, no debhelper): `install-files` into a
# staging root with PREFIX=/usr, the binary stripped, the man page and changelog compressed, the
# options files as conffiles, the dependencies computed by dpkg-shlibdeps from the libraries the
# binary links, maintainer scripts (packaging/debian/) that enable and start nothing. Then lintian,
# whose errors fail the build.
DEB_ARCH     := $(shell dpkg --print-architecture 2>/dev/null)
DEB          := s4listen_$(VERSION)_$(DEB_ARCH).deb
DEB_ROOT     := .build/deb/root
deb: build
	$(call apt_install,dpkg-dev fakeroot lintian)
	rm -rf .build/deb && mkdir -p $(DEB_ROOT)/DEBIAN .build/deb/debian
	$(MAKE) --no-print-directory install-files DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr UNITDIR=/lib/systemd/system
	strip --remove-section=.comment --remove-section=.note --strip-unneeded $(DEB_ROOT)/usr/bin/s4listen
	gzip -9n $(DEB_ROOT)/usr/share/man/man1/s4listen.1
	install -Dm644 packaging/debian/copyright $(DEB_ROOT)/usr/share/doc/s4listen/copyright
	sed 's/@VERSION@/$(VERSION)/' packaging/debian/changelog | gzip -9n > $(DEB_ROOT)/usr/share/doc/s4listen/changelog.gz
	chmod 644 $(DEB_ROOT)/usr/share/doc/s4listen/changelog.gz
	install -m755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm $(DEB_ROOT)/DEBIAN/
	printf '%s\n' $(foreach unit,$(UNITS),/etc/default/$(unit)) > $(DEB_ROOT)/DEBIAN/conffiles
	cd .build/deb && printf 'Source: s4listen\n\nPackage: s4listen\nArchitecture: any\n' > debian/control && \
		dpkg-shlibdeps -O root/usr/bin/s4listen | sed 's/^shlibs:Depends=//' > depends
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' -e "s/@DEPENDS@/$$(cat .build/deb/depends)/" \
		-e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)/" packaging/debian/control > $(DEB_ROOT)/DEBIAN/control
	cd $(DEB_ROOT) && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums
	fakeroot dpkg-deb --build -Zxz $(DEB_ROOT) $(DEB)
	lintian --fail-on error --tag-display-limit 0 $(DEB)
	@echo "deb: $(DEB)"

# The package as a user gets it: unpacked into a temporary root (dpkg -x), its binary, found on
# PATH and run from /, classifies a sample with its own model (found beside the binary, as
# installed) and prints the version in the file name; its contents hold every part. Needs
# `make deb` first.
deb-check:
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; dpkg -x $(DEB) $$tmp; \
	for path in usr/bin/s4listen usr/share/s4listen/default.safetensors usr/share/man/man1/s4listen.1.gz \
		lib/systemd/system/s4listen.service lib/systemd/system/s4listen-wyoming.service etc/default/s4listen \
		etc/default/s4listen-wyoming usr/share/bash-completion/completions/s4listen usr/share/zsh/vendor-completions/_s4listen \
		usr/share/fish/vendor_completions.d/s4listen.fish usr/share/doc/s4listen/copyright; do \
		[ -s $$tmp/$$path ] || { echo "deb-check: $$path missing from $(DEB)"; exit 1; }; done; \
	[ "$$(S4LISTEN_MODEL= $$tmp/usr/bin/s4listen --version)" = "$(VERSION)" ] || { echo "deb-check: wrong version"; exit 1; }; \
	line=$$(cd / && PATH=$$tmp/usr/bin:$$PATH S4LISTEN_MODEL= s4listen classify $(CURDIR)/samples/yes.flac) || exit 1; \
	echo "$$line" | grep -q '"label":"yes"' || { echo "deb-check: classify gave $$line"; exit 1; }; \
	file=$$(cd / && PATH=$$tmp/usr/bin:$$PATH S4LISTEN_MODEL= s4listen info | sed -n 's/^{"file":"\([^"]*\)".*/\1/p'); \
	[ "$$file" = "$$tmp/usr/share/s4listen/default.safetensors" ] || { echo "deb-check: model $$file, not the packaged one"; exit 1; }; \
	echo "deb-check: $(DEB) unpacked: every part there, version $(VERSION), classify samples/yes.flac → yes with $$file"

bench: build
	$(BIN) bench

# Speed against openWakeWord's streaming front end (the teacher's ONNX files, onnxruntime, one
# thread) and `s4listen bench` on the same audio, 80 ms chunks, best of 3 each; prints the ratio.
peer-bench: build py-env
	$(PYTHON) tools/peer_bench.py

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

# What `listen` costs on an hour of continuous audio against bench's chunked figure for MODEL,
# and its resident memory over the run (tools/listen_cost.py).
listen-cost: build py-env
	$(PYTHON) tools/listen_cost.py --model $(MODEL)

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
