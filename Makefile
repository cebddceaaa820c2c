# The two commands of the README. Both set up what they need first (idempotent).
.PHONY: run test

run:
	scripts/setup.sh bot
	.venv/bin/framecast run

# pytest exits 5 when it collected no test: for us that is a failure, not a pass.
test:
	scripts/setup.sh test
	.venv/bin/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc
