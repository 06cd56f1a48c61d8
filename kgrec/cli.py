"""The ``kgrec`` command."""

from __future__ import annotations

import logging
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from kgrec.config import get_settings
from kgrec.errors import KgrecError

app = typer.Typer(
    help="kgrec: knowledge-enhanced recommendations whose system of record is a Neo4j graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
neo4j_app = typer.Typer(help="Run the local Neo4j (Community 5.26, no Docker needed).", no_args_is_help=True)
schema_app = typer.Typer(help="Apply, show and check the graph schema.", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
app.add_typer(schema_app, name="schema")

console = Console()


def _local(port: Optional[int] = None, *, with_password: bool = False):
    from kgrec.neo4j_local import LocalNeo4j

    return LocalNeo4j.from_settings(get_settings(), port=port, with_password=with_password)


def _graph():
    from kgrec.db import Graph

    return Graph.connect(get_settings())


PortOption = Annotated[
    Optional[int], typer.Option("--port", "-p", help="Bolt port (default: the port in NEO4J_URI, 7687).")
]


# -- kgrec neo4j ---------------------------------------------------------------------------------------
@neo4j_app.command("build")
def neo4j_build() -> None:
    """Build the Java launcher with Maven (downloads Neo4j's jars from Maven Central the first time)."""
    server = _local()
    if server.is_built():
        console.print(f"The launcher in {server.launcher_dir} is built and up to date.")
        return
    console.print("Building the Neo4j launcher with Maven (the first build downloads about 125 MB)...")
    server.build()
    console.print("Built.")


@neo4j_app.command("start")
def neo4j_start(
    port: PortOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Bolt to answer.")] = 180.0,
) -> None:
    """Start Neo4j in the background; return once a Bolt query answers with NEO4J_PASSWORD.

    The store lives under $KGREC_DATA_DIR/neo4j and persists across restarts. Memory: KGREC_NEO4J_HEAP
    and KGREC_NEO4J_PAGECACHE.
    """
    server = _local(port, with_password=True)
    with console.status(f"Starting Neo4j on {server.uri} ..."):
        result = server.start(timeout=timeout)
    if result.already_running:
        console.print(f"Neo4j is already running (pid {result.pid}) at {result.uri}.")
    else:
        console.print(f"Neo4j is running (pid {result.pid}) at {result.uri}; started in {result.seconds:.1f}s.")


@neo4j_app.command("stop")
def neo4j_stop(port: PortOption = None) -> None:
    """Stop the local Neo4j cleanly (it flushes its store first)."""
    server = _local(port)
    with console.status("Stopping Neo4j ..."):
        was_running = server.stop()
    console.print("Neo4j stopped." if was_running else "Neo4j is not running.")


@neo4j_app.command("status")
def neo4j_status(port: PortOption = None) -> None:
    """Say whether the local Neo4j runs, where, and whether its launcher is built. Exit 1 if not running."""
    status = _local(port).status()
    state = f"running (pid {status['pid']})" if status["running"] else "not running"
    console.print(f"Neo4j: {state}\nBolt:  {status['uri']}\nHome:  {status['home']}")
    console.print(f"Launcher built: {'yes' if status['built'] else 'no (run `kgrec neo4j build`)'}")
    if not status["running"]:
        raise typer.Exit(1)


@neo4j_app.command("logs")
def neo4j_logs(
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many lines from the end.")] = 50,
    log: Annotated[str, typer.Option(help="launcher (the JVM's output), debug, query or security.")] = "launcher",
) -> None:
    """Print the end of the local Neo4j's logs."""
    server = _local()
    path = server.log_file(log)
    tail = server.tail(log, lines)
    if not tail:
        console.print(f"No log yet at {path}.")
        return
    typer.echo("\n".join(tail))


# -- kgrec schema --------------------------------------------------------------------------------------
@schema_app.command("apply")
def schema_apply(
    recreate_vector_index: Annotated[
        bool, typer.Option(help="Drop and recreate the vector index if its dimension differs from the encoder's.")
    ] = False,
) -> None:
    """Apply the pending schema migrations (constraints, indexes, vector index); safe to run again."""
    from kgrec.graph_schema.migrations import apply_migrations
    from kgrec.model.text import embedding_dimension

    settings = get_settings()
    dimension = embedding_dimension(settings.text_model)
    with _graph() as graph:
        applied = apply_migrations(
            graph,
            dimension=dimension,
            recreate_vector_index=recreate_vector_index,
            on_migration=lambda m: console.print(f"  applying migration {m.version}: {m.name}"),
        )
    if applied:
        console.print(f"Applied {len(applied)} migration(s); vector index dimension {dimension}.")
    else:
        console.print("The schema is up to date.")


@schema_app.command("show")
def schema_show(
    mermaid_only: Annotated[bool, typer.Option("--mermaid", help="Print only the Mermaid diagram.")] = False,
    offline: Annotated[bool, typer.Option(help="Show the vocabulary only; do not ask the database.")] = False,
) -> None:
    """Show the schema: labels, relationship types and properties (a table and a Mermaid diagram), and
    what the database holds (migrations, constraints, indexes, counts)."""
    from kgrec.graph_schema import render

    if mermaid_only:
        typer.echo(render.mermaid())
        return
    nodes = _table("Node labels", ["label", "property", "type", "required", "meaning"], render.node_rows())
    rels = _table("Relationships", ["pattern", "property", "type", "meaning"], render.relationship_rows())
    console.print(nodes, rels)
    console.print("Mermaid:\n```mermaid")
    typer.echo(render.mermaid())
    console.print("```")
    if not offline:
        _show_database()


def _show_database() -> None:
    from kgrec.graph_schema import queries as q
    from kgrec.graph_schema.migrations import MIGRATIONS, applied_migrations
    from kgrec.graph_schema.vocabulary import REL_SPECS, Label

    with _graph() as graph:
        applied = applied_migrations(graph)
        migrations = [(str(m.version), m.name, "applied" if m.version in applied else "pending") for m in MIGRATIONS]
        indexes = [
            (r["name"], r["type"], ",".join(r["labelsOrTypes"] or []), ",".join(r["properties"] or []), r["state"])
            for r in graph.read(q.SHOW_INDEXES)
        ]
        constraints = [
            (r["name"], r["type"], ",".join(r["labelsOrTypes"]), ",".join(r["properties"]))
            for r in graph.read(q.SHOW_CONSTRAINTS)
        ]
        counts = [(label.value, str(graph.read(q.count_label(label))[0]["count"])) for label in Label]
        counts += [(rel.value, str(graph.read(q.count_rel_type(rel))[0]["count"])) for rel in REL_SPECS]
    console.print(
        _table(f"Migrations ({graph.database})", ["version", "name", "state"], migrations),
        _table("Constraints", ["name", "type", "label", "property"], constraints),
        _table("Indexes", ["name", "type", "label/type", "properties", "state"], indexes),
        _table("Counts", ["label or type", "count"], counts),
    )


@schema_app.command("check")
def schema_check(
    sample: Annotated[int, typer.Option(min=0, max=100, help="How many example ids to show per finding.")] = 5,
    strict: Annotated[bool, typer.Option(help="Exit 1 on warnings too, not only on errors.")] = False,
) -> None:
    """Audit the graph (read-only): missing required properties, unknown labels and relationship types,
    wrong endpoints, duplicate ids, items without text, entities linked to nothing, unregistered relations.
    Exits 1 when it finds errors (or warnings, with --strict)."""
    from kgrec.graph_schema.check import check_graph

    with _graph() as graph:
        findings = check_graph(graph, sample=sample)
    if not findings:
        console.print("No problems found.")
        return
    rows = [(f.severity, f.check, f.subject, str(f.count), ", ".join(f.sample)) for f in findings]
    console.print(_table("Schema check", ["severity", "check", "subject", "count", "examples"], rows))
    errors = sum(f.severity == "error" for f in findings)
    console.print(f"{errors} error(s), {len(findings) - errors} warning(s).")
    if errors or strict:
        raise typer.Exit(1)


# -- kgrec serve ---------------------------------------------------------------------------------------
@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from kgrec.api.app import create_app

    console.print(f"Serving the kgrec API at http://{host}:{port} (docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(), host=host, port=port)


def _table(title: str, columns: list[str], rows: list[tuple[str, ...]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def main() -> None:
    """Entry point: kgrec errors become one line on stderr and exit code 1, never a traceback."""
    logging.getLogger("neo4j").setLevel(logging.ERROR)  # the driver's retry notices would bury the error
    try:
        app()
    except KgrecError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
