# The two commands in README: `make run` and `make test`. Both set everything up.
.PHONY: run test lint bootstrap

# pytest-xdist workers; a test file stays in one worker (--dist loadfile), so module
# fixtures (the e2e pipeline run, the export fixture) are built once. 2 = this
# project's CI cores; TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2

bootstrap:
	@scripts/bootstrap.sh

run: bootstrap
	@.venv/bin/mtrec run $(ARGS)

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/python scripts/lint_imports.py
	.venv/bin/python scripts/typecheck.py
	.venv/bin/python -m pytest -q -rs --durations=25 -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/python scripts/lint_imports.py
	.venv/bin/python scripts/typecheck.py
