.PHONY: run test lint docs bench soak

run:  ## install what is missing and run Fleet at http://127.0.0.1:8000
	bin/run

test:  ## install what is missing, lint, and run the whole test suite
	bin/test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

docs:  ## build the manual (docs/, mkdocs.yml) into site/
	bin/setup --dev
	.venv/bin/mkdocs build --strict

bench:  ## run the benchmarks in bench/ against a lab of their own (not part of make test)
	bin/setup --dev
	.venv/bin/python -m bench

soak:  ## 15 minutes of random node faults on a 5-node lab of its own, checked every second (not part of make test)
	bin/setup --dev
	.venv/bin/python -m bench.soak $(SOAK_ARGS)
