"""The one root exception of kgrec and its families.

Every error a user can cause (configuration, an unreachable or misconfigured Neo4j, bad input) is a
:class:`KgrecError` whose message says what is wrong and what to do; the CLI prints it on one line.
"""


class KgrecError(Exception):
    """Root of every error kgrec raises on purpose."""


class ConfigError(KgrecError):
    """A setting is missing or unusable."""


class Neo4jUnavailable(KgrecError):
    """Neo4j cannot be reached at the configured address."""


class Neo4jAuthError(KgrecError):
    """Neo4j refused the configured credentials."""


class LocalNeo4jError(KgrecError):
    """The local Neo4j (the Java launcher) could not be built, started or stopped."""


class SchemaError(KgrecError):
    """The graph's schema does not match what kgrec expects (for example a migration that changed)."""
