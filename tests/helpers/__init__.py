"""Shared test helpers: CloudEvent requests as Knative sends them, functions loaded by path,
`Resources` wired to the simulated market, and small Kafka/PostgreSQL readers.

Fixtures built on them live in `tests.helpers.fixtures`, registered for the whole suite by
tests/conftest.py together with the simulated market's.
"""
