# One command runs the demo, one runs the tests; both set up everything they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_JARS := kafka/lib/.fetched

.PHONY: setup demo test clean

$(BIN)/argus: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(KAFKA_JARS): kafka/pom.xml
	mvn -q -B -f kafka/pom.xml dependency:copy-dependencies
	touch $@

setup: $(BIN)/argus $(KAFKA_JARS)

demo: setup
	$(BIN)/argus demo

test: setup
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) kafka/lib .argus argus-demo
