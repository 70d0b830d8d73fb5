"""Shared test helpers: CloudEvent requests as Knative sends them, functions loaded by path,
`Resources` wired to the simulated market, and small Kafka/PostgreSQL readers.

Fixtures built on them live in `tests.helpers.fixtures`; enable them in a test module with
`pytest_plugins = ["local.market.pytest_plugin", "tests.helpers.fixtures"]`.
"""
