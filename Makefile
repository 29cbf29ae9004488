# One command runs the demo, one runs the tests; both set up everything they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_JARS := kafka/lib/.fetched
# the PATE reference package pins old numpy/scikit-learn, so it gets a venv of its own
PATE_REFERENCE := .venv-pate/bin/.pate-0.1.1

.PHONY: setup demo test clean

$(BIN)/argus: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(KAFKA_JARS): kafka/pom.xml
	mvn -q -B -f kafka/pom.xml dependency:copy-dependencies
	touch $@

$(PATE_REFERENCE):
	$(PYTHON) -m venv .venv-pate
	.venv-pate/bin/pip install --quiet pate==0.1.1
	touch $@

setup: $(BIN)/argus $(KAFKA_JARS) $(PATE_REFERENCE)

demo: setup
	$(BIN)/argus demo

test: setup
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .venv-pate kafka/lib .argus argus-demo
