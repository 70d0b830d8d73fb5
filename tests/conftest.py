"""Fixtures shared by the whole suite: the real Kafka broker and PostgreSQL it runs against.

The suite starts what it needs itself (`local.services`): when nothing answers at
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL (defaults in `shared.config`), the project's embedded
broker / cluster is started for the session and stopped at its end; a server that already
runs (a developer's `make up`, another test session) is used and left running. When a
service cannot be started, every test that needs it fails with the reason: never a silent
skip.

    kafka_bootstrap   str   "127.0.0.1:9092"-style bootstrap servers           (session)
    postgres_url      str   the server's own database URL (`price_crawler`)    (session)
    database_url      str   a database of this session, migrated, dropped at the end (session)
    clean_db          str   database_url with every table emptied before the test (function)
    unique_topic      (prefix="t", partitions=3, config=None) -> new topic name; deleted at
                            session end                                         (session)
    free_port         int   a free TCP port on 127.0.0.1                        (function)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import urlparse

import pytest

from local import services
from shared.config import Settings

# The simulated market (`simulated_market`, `simulated_market_env`) and the shared stack fixtures.
pytest_plugins = ["local.market.pytest_plugin", "tests.helpers.fixtures"]


def _fail(what: str, exc: Exception) -> None:
    message = f"{what} is unavailable, so this test cannot run: {exc}"
    raise pytest.fail.Exception(message, pytrace=False) from None


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a running Kafka broker (started for the session if none runs)."""
    bootstrap = Settings().kafka_bootstrap_servers
    try:
        broker = services.ensure_kafka(bootstrap)
    except Exception as exc:  # any reason the broker is missing fails the tests that need it
        _fail(f"Kafka at {bootstrap}", exc)
    address = broker.address if broker else bootstrap
    # The system's own topics exist wherever it runs (`make up` creates them too); tests that
    # exercise the real topic names rely on them.
    services.create_project_topics(address)
    yield address
    if broker:
        broker.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """DATABASE_URL of a running PostgreSQL server (started for the session if none runs)."""
    url = Settings().database_url
    try:
        server = services.ensure_postgres(url)
    except Exception as exc:
        _fail("PostgreSQL", exc)
    yield url
    if server:
        server.stop()


@pytest.fixture(scope="session")
def database_url(postgres_url: str) -> Iterator[str]:
    """A database of this test session (`<db>_test_<pid>`), migrated; dropped at session end."""
    from shared.db.migrations import apply_migrations

    prefix = f"{urlparse(postgres_url).path.lstrip('/')}_test_"
    services.drop_orphaned_databases(postgres_url, prefix)  # left by killed sessions
    url = services.create_database(postgres_url, f"{prefix}{os.getpid()}", replace=True)
    apply_migrations(url)
    yield url
    services.drop_database(url)


@pytest.fixture
def clean_db(database_url: str) -> str:
    """`database_url` with every table except schema_migrations emptied (identities restarted)."""
    services.empty_database(database_url)
    return database_url


@pytest.fixture(scope="session")
def unique_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory: `unique_topic("price", partitions=6)` creates a fresh topic and returns its name."""
    created: list[str] = []

    def make(prefix: str = "t", partitions: int = 3, config: Mapping[str, str] | None = None) -> str:
        name = f"test.{prefix}.{uuid.uuid4().hex[:10]}"
        services.create_topics(kafka_bootstrap, {name: partitions}, config)
        created.append(name)
        return name

    yield make
    services.delete_topics(kafka_bootstrap, created)


@pytest.fixture
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    return services.free_port()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server over real HTTP on a free port (the bronze archive's S3 in tests)."""
    from moto.server import ThreadedMotoServer

    port = services.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy AWS credentials, so boto3 signs requests to the moto server and never looks further."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
