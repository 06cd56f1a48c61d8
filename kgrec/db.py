"""The one narrow gateway to Neo4j.

Everything in kgrec reaches the database through :class:`Graph`: reads say they are reads (so a
``neo4j://`` routing URI sends them to a follower in a cluster or Aura), writes go to the leader, schema
statements run one per auto-commit transaction, and driver errors come back as kgrec errors that say what
to do. The driver and the database name are passed in, never created at import time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import neo4j
import pandas as pd
from neo4j import GraphDatabase, NotificationMinimumSeverity, RoutingControl
from neo4j.exceptions import AuthError, ClientError, ConfigurationError, ServiceUnavailable, SessionExpired

from kgrec.config import Settings
from kgrec.errors import ConfigError, KgrecError, Neo4jAuthError, Neo4jUnavailable

Record = dict[str, Any]


class Graph:
    """Reads, writes and schema statements against one database of one driver.

    Args:
        driver: an open :class:`neo4j.Driver`; closed by :meth:`close` only if ``owns_driver``.
        database: the database name, passed on every call (it saves a round trip).
        owns_driver: whether :meth:`close` closes the driver.
        uri, user: named in error messages.
    """

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str = "neo4j",
        *,
        owns_driver: bool = False,
        uri: str = "the configured NEO4J_URI",
        user: str = "neo4j",
    ) -> None:
        self.driver = driver
        self.database = database
        self._owns_driver = owns_driver
        self._uri = uri
        self._user = user

    @classmethod
    def connect(cls, settings: Settings, *, verify: bool = True, max_retry_seconds: float | None = None) -> Graph:
        """Open a driver from settings and, with ``verify``, check that Neo4j answers with these credentials.

        ``max_retry_seconds`` bounds how long a query retries while Neo4j is unreachable (the driver's
        default is 30 s; a server answering requests wants a quick failure instead)."""
        retry = {} if max_retry_seconds is None else {"max_transaction_retry_time": max_retry_seconds}
        try:
            driver = GraphDatabase.driver(
                settings.neo4j_uri,
                auth=(settings.neo4j_user, settings.neo4j_password),
                connection_timeout=10.0,
                notifications_min_severity=NotificationMinimumSeverity.OFF,  # "label does not exist yet" noise
                **retry,
            )
        except (ConfigurationError, ValueError) as e:
            raise ConfigError(f"NEO4J_URI {settings.neo4j_uri!r} is not usable: {e}") from e
        graph = cls(
            driver, settings.neo4j_database, owns_driver=True, uri=settings.neo4j_uri, user=settings.neo4j_user
        )
        if verify:
            try:
                graph.ping()
            except KgrecError:
                graph.close()
                raise
        return graph

    def close(self) -> None:
        if self._owns_driver:
            self.driver.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> None:
        """Check, without retrying, that Neo4j answers with these credentials and has the database."""
        with self._translate_errors():
            self.driver.verify_connectivity()
            with self.driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:
                session.run("RETURN 1").consume()

    def read(self, query: str, **params: Any) -> list[Record]:
        """Run a read query (routed to a reader) and return its records as dicts."""
        with self._translate_errors():
            records, _, _ = self.driver.execute_query(
                query, parameters_=params, database_=self.database, routing_=RoutingControl.READ
            )
        return [record.data() for record in records]

    def read_columns(self, query: str, **params: Any) -> dict[str, Any]:
        """Run a read query that returns ONE record (typically of ``collect()``-ed lists) and return it as
        ``{column: value}`` without copying the lists (``Record.data()`` would copy them, which dominates
        the cost of a large page)."""
        with self._translate_errors():
            records, _, _ = self.driver.execute_query(
                query, parameters_=params, database_=self.database, routing_=RoutingControl.READ
            )
        if len(records) != 1:
            raise ValueError(f"read_columns expects one record, got {len(records)}")
        return dict(zip(records[0].keys(), records[0].values()))

    def read_df(self, query: str, **params: Any) -> pd.DataFrame:
        """Run a read query and return a DataFrame (columns in the query's order, even with no rows)."""
        with self._translate_errors():
            return self.driver.execute_query(
                query,
                parameters_=params,
                database_=self.database,
                routing_=RoutingControl.READ,
                result_transformer_=neo4j.Result.to_df,
            )

    def write(self, query: str, **params: Any) -> dict[str, int]:
        """Run a write query in one managed transaction; return its counters (nodes_created, ...)."""
        return self.write_returning(query, **params)[1]

    def write_returning(self, query: str, **params: Any) -> tuple[list[Record], dict[str, int]]:
        """Run a write query in one managed transaction; return its records and its counters."""
        with self._translate_errors():
            records, summary, _ = self.driver.execute_query(
                query, parameters_=params, database_=self.database, routing_=RoutingControl.WRITE
            )
        return [record.data() for record in records], _counters(summary.counters)

    def write_rows(self, query: str, rows: Sequence[Mapping[str, Any]], *, batch_size: int = 5000) -> dict[str, int]:
        """Run ``query`` (which reads ``$rows``) once per batch; each batch is one transaction."""
        totals: dict[str, int] = {}
        for start in range(0, len(rows), batch_size):
            for key, value in self.write(query, rows=list(rows[start : start + batch_size])).items():
                totals[key] = totals.get(key, 0) + value
        return totals

    def run_autocommit(self, statement: str, **params: Any) -> None:
        """Run one statement in an auto-commit transaction: schema statements (constraints, indexes), which
        Neo4j does not mix with data writes, and ``CALL { ... } IN TRANSACTIONS`` batch deletes."""
        with self._translate_errors(), self.driver.session(database=self.database) as session:
            session.run(statement, params).consume()

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except AuthError as e:
            raise Neo4jAuthError(
                f"Neo4j at {self._uri} refused the credentials of user {self._user!r}: "
                "check NEO4J_USER and NEO4J_PASSWORD (a local store keeps the password it was first started with)"
            ) from e
        except (ServiceUnavailable, SessionExpired) as e:
            raise Neo4jUnavailable(
                f"cannot reach Neo4j at {self._uri}: is it running? "
                "Start the local one with `kgrec neo4j start`, or point NEO4J_URI at yours"
            ) from e
        except ClientError as e:
            if e.code and "Database.DatabaseNotFound" in e.code:
                raise ConfigError(f"Neo4j has no database {self.database!r}: check NEO4J_DATABASE") from e
            raise


def _counters(counters: neo4j.SummaryCounters) -> dict[str, int]:
    names = (
        "nodes_created",
        "nodes_deleted",
        "relationships_created",
        "relationships_deleted",
        "properties_set",
        "labels_added",
    )
    return {name: getattr(counters, name) for name in names}
