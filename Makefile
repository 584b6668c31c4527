# The two commands in README: `make run` and `make test`. Both set everything up.
.PHONY: run test lint bootstrap

bootstrap:
	@scripts/bootstrap.sh

run: bootstrap
	@.venv/bin/mtrec run $(ARGS)

test: bootstrap
	.venv/bin/ruff check .
	.venv/bin/python scripts/lint_imports.py
	.venv/bin/python -m pytest -q -rs --durations=25 $(PYTEST_ARGS)

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/python scripts/lint_imports.py
