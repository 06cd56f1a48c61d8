"""The ``kgrec`` command."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from neo4j.exceptions import Neo4jError
from rich.console import Console
from rich.table import Table

from kgrec.config import get_settings
from kgrec.errors import KgrecError
from kgrec.paths import nearest_existing

app = typer.Typer(
    help="kgrec: knowledge-enhanced recommendations whose system of record is a Neo4j graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
neo4j_app = typer.Typer(help="Run the local Neo4j (Community 5.26, no Docker needed).", no_args_is_help=True)
schema_app = typer.Typer(help="Apply, show and check the graph schema.", no_args_is_help=True)
load_app = typer.Typer(
    help="Load datasets into Neo4j: the generic format (docs/data-format.md) or a known dataset.",
    no_args_is_help=True,
)
app.add_typer(neo4j_app, name="neo4j")
app.add_typer(schema_app, name="schema")
app.add_typer(load_app, name="load")

console = Console()


def _local(port: Optional[int] = None, *, with_password: bool = False):
    from kgrec.neo4j_local import LocalNeo4j

    return LocalNeo4j.from_settings(get_settings(), port=port, with_password=with_password)


def _graph():
    from kgrec.db import Graph

    return Graph.connect(get_settings())


PortOption = Annotated[
    Optional[int],
    typer.Option("--port", "-p", min=1, max=65535, help="Bolt port (default: the port in NEO4J_URI, 7687)."),
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
    from kgrec.loaders.export import fingerprint

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
        counts = [(name, str(count)) for name, count in fingerprint(graph).items()]  # every label and type, one query
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


# -- kgrec load ---------------------------------------------------------------------------------------
UnknownRefs = Annotated[
    str,
    typer.Option(
        help="A row pointing at an item/user/entity that is neither in this load nor in the graph: "
        "'reject' it (reported) or 'create' a bare node."
    ),
]
UnknownRelations = Annotated[
    str,
    typer.Option(help="A relation name not declared (--relations) nor in the graph: 'register' it or 'reject' the row."),
]
BatchSize = Annotated[Optional[int], typer.Option(min=1, help="Rows per transaction (default KGREC_BATCH_SIZE).")]
RejectsFile = Annotated[
    Optional[Path], typer.Option(help="Where rejected rows go (CSV; default $KGREC_DATA_DIR/rejects/NAME-TIME.csv).")
]
FailOnReject = Annotated[
    bool, typer.Option(help="Write nothing if any row is rejected (the rejects file is still written).")
]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]


@load_app.command("generic")
def load_generic(
    interactions: Annotated[Path, typer.Option(help="user_id,item_id[,rating,weight,timestamp,kind]")],
    items: Annotated[Optional[Path], typer.Option(help="item_id,title[,text,attribute columns...]")] = None,
    entities: Annotated[Optional[Path], typer.Option(help="entity_id,name[,type,text]")] = None,
    item_entity: Annotated[Optional[Path], typer.Option(help="item_id,relation,entity_id")] = None,
    entity_entity: Annotated[Optional[Path], typer.Option(help="head_id,relation,tail_id")] = None,
    user_links: Annotated[Optional[Path], typer.Option(help="user_id,other_id (FOLLOWS)")] = None,
    relations: Annotated[Optional[Path], typer.Option(help="relation[,description]: the relation names allowed")] = None,
    map_: Annotated[
        Optional[list[str]],
        typer.Option("--map", help="Column mapping TABLE.GENERIC=YOURS, e.g. --map interactions.item_id=movieId (repeatable)."),
    ] = None,
    name: Annotated[str, typer.Option(help="Dataset name (in reports and file names).")] = "generic",
    unknown_refs: UnknownRefs = "reject",
    unknown_relations: UnknownRelations = "register",
    batch_size: BatchSize = None,
    rejects: RejectsFile = None,
    fail_on_reject: FailOnReject = False,
    progress: Progress = True,
) -> None:
    """Load files in kgrec's generic format (CSV, TSV or Parquet; see docs/data-format.md). Idempotent:
    loading the same files twice leaves the same graph."""
    from kgrec.loaders.dataset import Dataset
    from kgrec.loaders.ingest import read_table

    mapping = _parse_mapping(map_ or [])
    sources = {
        "interactions": interactions, "items": items, "entities": entities, "item_entity": item_entity,
        "entity_entity": entity_entity, "user_links": user_links, "relations": relations,
    }
    unknown = set(mapping) - set(sources)
    if unknown:
        raise KgrecError(f"--map names unknown table(s) {sorted(unknown)}: use {', '.join(sources)}")
    tables = {t: read_table(path, t, mapping.get(t)) for t, path in sources.items() if path is not None}
    options = dict(unknown_refs=unknown_refs, unknown_relations=unknown_relations)
    _load(Dataset(name=name, **tables), options, batch_size, rejects, fail_on_reject, progress)


DatasetDir = Annotated[Path, typer.Argument(help="The dataset's folder (as published; see docs/adapters.md).")]
MinTaggers = Annotated[
    int, typer.Option(min=2, help="Leakage guard: a user tag becomes item knowledge only if this many distinct users applied it.")
]


@load_app.command("hetrec-lastfm")
def load_hetrec_lastfm(
    directory: DatasetDir,
    min_taggers: MinTaggers = 2,
    unknown_refs: UnknownRefs = "reject",
    batch_size: BatchSize = None,
    rejects: RejectsFile = None,
    fail_on_reject: FailOnReject = False,
    progress: Progress = True,
) -> None:
    """HetRec 2011 Last.FM-2k: artists, listening counts (weights), friendships (FOLLOWS), tags as entities."""
    from kgrec.loaders.adapters import read_hetrec_lastfm

    dataset = read_hetrec_lastfm(directory, min_taggers=min_taggers)
    _load(dataset, dict(unknown_refs=unknown_refs), batch_size, rejects, fail_on_reject, progress)


@load_app.command("kgcn-lastfm")
def load_kgcn_lastfm(
    directory: DatasetDir,
    names_from: Annotated[
        Optional[Path], typer.Option(help="A HetRec Last.FM folder for artist names (default: a sibling hetrec-lastfm-2k).")
    ] = None,
    unknown_refs: UnknownRefs = "reject",
    batch_size: BatchSize = None,
    rejects: RejectsFile = None,
    fail_on_reject: FailOnReject = False,
    progress: Progress = True,
) -> None:
    """KGCN's Last.FM: the KG-linked artists with the Microsoft Satori knowledge graph."""
    from kgrec.loaders.adapters import read_kgcn_lastfm

    dataset = read_kgcn_lastfm(directory, names_from=names_from)
    _load(dataset, dict(unknown_refs=unknown_refs), batch_size, rejects, fail_on_reject, progress)


@load_app.command("movielens")
def load_movielens(
    directory: DatasetDir,
    min_taggers: MinTaggers = 2,
    unknown_refs: UnknownRefs = "reject",
    batch_size: BatchSize = None,
    rejects: RejectsFile = None,
    fail_on_reject: FailOnReject = False,
    progress: Progress = True,
) -> None:
    """MovieLens (ml-latest-small layout): ratings with timestamps, titles, genres and user tags as entities."""
    from kgrec.loaders.adapters import read_movielens

    dataset = read_movielens(directory, min_taggers=min_taggers)
    _load(dataset, dict(unknown_refs=unknown_refs), batch_size, rejects, fail_on_reject, progress)


@load_app.command("recbole")
def load_recbole(
    directory: DatasetDir,
    stem: Annotated[Optional[str], typer.Option(help="Atomic file name stem (default: the folder's one .inter file).")] = None,
    unknown_refs: UnknownRefs = "reject",
    batch_size: BatchSize = None,
    rejects: RejectsFile = None,
    fail_on_reject: FailOnReject = False,
    progress: Progress = True,
) -> None:
    """RecBole atomic files (.inter, .item, .kg, .link), e.g. ml-100k with its Freebase knowledge graph."""
    from kgrec.loaders.adapters import read_recbole

    dataset = read_recbole(directory, stem=stem)
    _load(dataset, dict(unknown_refs=unknown_refs), batch_size, rejects, fail_on_reject, progress)


def _parse_mapping(entries: list[str]) -> dict[str, dict[str, str]]:
    mapping: dict[str, dict[str, str]] = {}
    for entry in entries:
        left, sep, theirs = entry.partition("=")
        table, dot, generic = left.partition(".")
        if not (sep and dot and table and generic and theirs):
            raise KgrecError(f"--map {entry!r} must look like TABLE.GENERIC=YOURS, e.g. interactions.item_id=movieId")
        mapping.setdefault(table, {})[generic] = theirs
    return mapping


def _load(dataset, options: dict, batch_size, rejects, fail_on_reject: bool, progress: bool) -> None:
    import datetime as dt

    from kgrec.loaders.ingest import LoadOptions, LoadReport, check_rejects_path, load_dataset, validate

    settings = get_settings()
    try:
        load_options = LoadOptions(batch_size=batch_size or settings.batch_size, progress=progress, **options)
    except ValueError as e:
        raise KgrecError(str(e)) from e
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    rejects = rejects or settings.data_dir / "rejects" / f"{dataset.name}-{stamp}.csv"
    check_rejects_path(rejects)  # --fail-on-reject writes it here, before load_dataset checks it
    with _graph() as graph:
        if fail_on_reject:
            _, rejected = validate(dataset, graph, load_options)
            if len(rejected):
                rejects.parent.mkdir(parents=True, exist_ok=True)
                rejected.to_csv(rejects, index=False)
                raise KgrecError(f"{len(rejected)} row(s) rejected, nothing written (--fail-on-reject); see {rejects}")
        console.print(f"Loading {dataset.name}: " + ", ".join(f"{n} {k}" for k, n in dataset.summary().items()))
        report: LoadReport = load_dataset(graph, dataset, load_options, rejects_path=rejects)
    rejected = report.rejected_counts()
    rows = [
        (table, str(n), str(report.written.get(table, 0)), str(report.created.get(table, 0)), str(rejected.get(table, 0)))
        for table, n in report.rows_in.items()
    ]
    console.print(_table(f"Loaded {dataset.name} in {report.seconds:.1f}s", ["table", "rows", "written", "created", "rejected"], rows))
    if report.rejects_file:
        console.print(f"[yellow]{len(report.rejected)} row(s) rejected[/yellow]: see {report.rejects_file}")


@app.command("download")
def download(
    name: Annotated[str, typer.Argument(help="movielens, hetrec-lastfm, kgcn-lastfm or recbole.")],
    force: Annotated[bool, typer.Option(help="Download again even if the folder is complete.")] = False,
    print_path: Annotated[bool, typer.Option(help="Print only the dataset folder (for scripts).")] = False,
) -> None:
    """Download a public dataset (needs internet) into $KGREC_DATA_DIR/datasets; then `kgrec load NAME FOLDER`."""
    from kgrec.loaders.download import SOURCES, download as fetch

    folder = fetch(name, get_settings().data_dir, force=force)
    if print_path:
        typer.echo(str(folder))
        return
    console.print(f"{name} is in {folder} (terms: {SOURCES[name].terms}).\nLoad it with: kgrec load {name} {folder}")


# -- kgrec synth / export -----------------------------------------------------------------------------
@app.command("synth")
def synth(
    out: Annotated[Path, typer.Option(help="Folder for the generic-format files.")] = Path("data/synthetic"),
    users: Annotated[int, typer.Option(min=1)] = 1000,
    items: Annotated[int, typer.Option(min=2)] = 500,
    entities: Annotated[int, typer.Option(min=1, help="Knowledge entities (genres, tags, people).")] = 100,
    interactions: Annotated[int, typer.Option(min=2, help="Total interactions (exact).")] = 20000,
    topics: Annotated[int, typer.Option(min=1, help="Latent tastes planted in interactions, text and knowledge.")] = 8,
    seed: Annotated[int, typer.Option()] = 0,
    fmt: Annotated[str, typer.Option("--format", help="csv, tsv or parquet.")] = "csv",
    load: Annotated[bool, typer.Option(help="Also load the dataset into Neo4j.")] = False,
    progress: Progress = True,
) -> None:
    """Write a synthetic dataset with planted structure (tastes tied to entities and to item text)."""
    from kgrec.loaders.synth import FORMATS, SynthConfig, make_synthetic, write_dataset

    if fmt not in FORMATS:  # before the dataset is generated (write_dataset checks it too)
        raise KgrecError(f"--format (got {fmt!r}) must be one of {', '.join(map(repr, FORMATS))}")
    _out_folder(out)
    try:
        config = SynthConfig(
            users=users, items=items, entities=entities, interactions=interactions, topics=topics, seed=seed,
            entity_entity_links=min(SynthConfig.entity_entity_links, entities * (entities - 1)),
            follows_per_user=min(SynthConfig.follows_per_user, users - 1),
        )
    except ValueError as e:
        raise KgrecError(str(e)) from e
    dataset = make_synthetic(config)
    paths = write_dataset(dataset, out, fmt)
    console.print(f"Wrote {', '.join(f'{n} {t}' for t, n in dataset.summary().items())} to {out}: "
                  + ", ".join(p.name for p in paths.values()))
    if load:
        _load(dataset, {}, None, None, False, progress)


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Folder for graph.pt, ids/*.parquet and meta.json.")],
    entity: Annotated[Optional[str], typer.Option(help="Only items linked to this entity id (a genre, a tag).")] = None,
    active_since: Annotated[
        Optional[str], typer.Option(help="Only users with an interaction since this date (ISO-8601, UTC).")
    ] = None,
    sample_users: Annotated[Optional[int], typer.Option(min=1, help="A random sample of N users.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the user sample and of the random split.")] = 0,
    split: Annotated[str, typer.Option(help="random (per user), leave_last_out, temporal, or none.")] = "random",
    val: Annotated[float, typer.Option(help="Validation share.")] = 0.1,
    test: Annotated[float, typer.Option(help="Test share.")] = 0.2,
    page_size: Annotated[int, typer.Option(min=1, help="Rows (nodes or edges) per read page.")] = 50_000,
    progress: Progress = True,
) -> None:
    """Export a subgraph to PyTorch Geometric (HeteroData) with stable id maps and an evaluation split."""
    import datetime as dt

    from kgrec.loaders.export import SubgraphFilter, export_subgraph
    from kgrec.loaders.splits import SplitSpec

    try:
        since = dt.datetime.fromisoformat(active_since) if active_since else None
    except ValueError as e:
        raise KgrecError(f"--active-since {active_since!r} is not an ISO-8601 date") from e
    spec = None if split == "none" else SplitSpec(kind=split, val=val, test=test, seed=seed)  # type: ignore[arg-type]
    _out_folder(out)
    subgraph = SubgraphFilter(entity=entity, active_since=since, sample_users=sample_users, seed=seed)
    with _graph() as graph, console.status("Exporting ..."):
        result = export_subgraph(graph, subgraph, split=spec, page_size=page_size, progress=progress)
    result.save(out)
    counts = result.meta["counts"]
    console.print(_table(f"Exported to {out} in {result.meta['seconds']:.1f}s", ["part", "count"],
                         [(k, str(v)) for k, v in counts.items()]))
    if result.meta["outside_snapshot"]:
        filtered = entity is not None or active_since is not None or sample_users is not None
        why = ("the filter left out, or that were added while the export ran" if filtered
               else "added while the export ran")
        console.print(f"[yellow]edges not exported, to nodes {why}[/yellow]: {result.meta['outside_snapshot']}")


def _out_folder(path: Path, option: str = "--out") -> Path:
    """``path`` if it can be the output folder, checked before any work: refused when it, or the nearest of
    its parents that exists, is not a folder (the results would be lost after the work is done)."""
    existing = nearest_existing(path)
    if not existing.is_dir():
        where = "is a file" if existing == path else f"is under {existing}, which is a file"
        raise KgrecError(f"{option} {path} {where}, not a folder: choose a folder")
    return path


# -- kgrec train / evaluate ---------------------------------------------------------------------------
ExportDir = Annotated[Path, typer.Option("--export", help="An export folder (`kgrec export --out DIR`).")]
Dim = Annotated[int, typer.Option(min=1, help="Representation size.")]
Layers = Annotated[int, typer.Option(min=0, help="Propagation layers.")]
Epochs = Annotated[int, typer.Option(min=1, help="Most epochs (early stopping on validation nDCG@20).")]
LearningRate = Annotated[float, typer.Option(help="Adam learning rate.")]
Patience = Annotated[int, typer.Option(min=1, help="Validations without improvement before stopping.")]
Seed = Annotated[int, typer.Option(help="Seeds initialisation and negative and neighbour sampling, not the split "
                                "(kgrec export --seed sets that; kgrec run splits with seed 0).")]
Device = Annotated[str, typer.Option(help="Torch device to train on, e.g. cpu, cuda, cuda:1.")]
Negatives = Annotated[int, typer.Option(min=1, help="Uniform negative candidates per BPR triple; the one the model "
                                        "scores highest is used (dynamic negative sampling; 1: plain BPR).")]
KgGraph = Annotated[bool, typer.Option("--kg-graph/--no-kg-graph", help="Propagate over the item–entity links "
                                       "too (the knowledge graph as graph nodes), not only through each item's facts.")]
NumNeighbors = Annotated[int, typer.Option(min=0, help="0: full-batch training; k > 0: neighbour-sampled mini-batches "
                                           "(PyG LinkNeighborLoader), at most k neighbours per node, edge type and hop, "
                                           "for graphs whose full-batch training does not fit; needs torch-sparse.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Training pairs per step.")]
NeighbourhoodModel = Annotated[str, typer.Option(help="The score's neighbourhood channel: itemknn (cosine) or ease "
                                                 "(stronger; with the knowledge graph, entities as extra rows; one dense inversion of the smaller of "
                                                 "users and items).")]
ColdLift = Annotated[bool, typer.Option("--cold-lift/--no-cold-lift", help="Lift the cold items (content, no "
                                        "interactions) against the warm ones by a shift chosen on validation, so that "
                                        "new items reach the top of the lists.")]
UseTime = Annotated[bool, typer.Option("--time/--no-time", help="Let the EASE channel weigh co-occurrences by how "
                                       "close in time they were (a kernel of scale --time-scale, its weight chosen on "
                                       "validation, 0 among the candidates); used where the interactions have times.")]
TimeScale = Annotated[float, typer.Option(help="Seconds: the scale tau of the time kernel (about one sitting).")]
KgLoss = Annotated[float, typer.Option(min=0.0, help="Weight of the TransE loss on the knowledge triples beside "
                                      "BPR (what trains the knowledge part's embeddings on the facts themselves; 0: none).")]
RatingWeight = Annotated[float, typer.Option(min=0.0, help="Weight of a rating MSE loss beside BPR (0: no rating "
                                             "head); needs a rating column. Adds test RMSE and MAE.")]


def _models_setup(export_dir: Path, dim: int, layers: int, epochs: int, lr: float, patience: int, seed: int,
                  device: str, progress: bool, rating_weight: float = 0.0, negatives: int = 8,
                  kg_graph: bool = True, num_neighbors: int = 0, batch_size: int = 8192,
                  neighbourhood_model: str = "ease", cold_lift: bool = True, use_time: bool = True,
                  time_scale: float = 300.0, kg_loss: float = 0.1):
    from kgrec.model.harness import load_data, text_vectors
    from kgrec.model.kgrec_net import KGRecConfig
    from kgrec.model.sampled import require_sampling
    from kgrec.model.text import TextEncoder
    from kgrec.model.training import TrainConfig

    train = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, eval_every=2, patience=patience, seed=seed,
                        device=device)
    config = KGRecConfig(dim=dim, num_layers=layers, rating_weight=rating_weight, negatives=negatives,
                         kg_graph=kg_graph, num_neighbors=num_neighbors, neighbourhood_model=neighbourhood_model,
                         cold_lift=cold_lift, use_time=use_time, time_scale=time_scale, kg_loss=kg_loss)
    train.torch_device  # noqa: B018 -- an unavailable device fails here, before the data is read
    require_sampling(num_neighbors)
    settings = get_settings()
    data = load_data(export_dir)
    if rating_weight > 0 and not data.has_ratings:
        raise KgrecError(f"--rating-weight {rating_weight} needs explicit ratings, and the export {export_dir} has "
                         "none in its training split (load the interactions with a rating column)")
    encoder = TextEncoder(settings.text_model, settings.data_dir / "text_cache", progress=progress)
    with console.status(f"Encoding item and entity text with {settings.text_model} ..."):
        items, entities = text_vectors(data, encoder)
    stats = encoder.stats
    console.print(f"Text: {stats.encoded} encoded, {stats.hits} from the cache ({stats.texts_per_second:.0f} texts/s).")
    return data, items, entities, config, train


@app.command("train")
def train(
    export: ExportDir,
    out: Annotated[Path, typer.Option(help="Folder for the checkpoint, metrics and training curve.")] = Path("data/model"),
    dim: Dim = 64,
    layers: Layers = 3,
    epochs: Epochs = 200,
    lr: LearningRate = 5e-3,
    patience: Patience = 5,
    seed: Seed = 0,
    device: Device = "cpu",
    rating_weight: RatingWeight = 0.0,
    negatives: Negatives = 8,
    kg_graph: KgGraph = True,
    num_neighbors: NumNeighbors = 0,
    batch_size: BatchSize = 8192,
    neighbourhood_model: NeighbourhoodModel = "ease",
    cold_lift: ColdLift = True,
    use_time: UseTime = True,
    time_scale: TimeScale = 300.0,
    kg_loss: KgLoss = 0.1,
    progress: Progress = True,
) -> None:
    """Train KGRec (text + knowledge graph + collaborative signal, attention fusion) on an export."""
    from kgrec.model.harness import build, results_dict, run, save_checkpoint, write_results
    from kgrec.model.text import resolve_model

    _out_folder(out)
    data, items, entities, config, train_config = _models_setup(export, dim, layers, epochs, lr, patience, seed, device,
                                                                progress, rating_weight, negatives, kg_graph,
                                                                num_neighbors, batch_size, neighbourhood_model,
                                                                cold_lift, use_time, time_scale, kg_loss)
    model = build("kgrec", items, entities, config, train_config, progress)
    result = run("kgrec", model, data)
    path = save_checkpoint(model, out / "kgrec.pt", data, {"export": str(export), "metrics": result.metrics,
                                                           "text_model": resolve_model(get_settings().text_model)})
    write_results([result], out, f"KGRec on {export}")
    (out / "metrics.json").write_text(__import__("json").dumps(results_dict(result), indent=2))
    console.print(f"Trained in {result.train_seconds:.0f}s (best epoch {result.best_epoch}); test: "
                  + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if k != "users"))
    console.print(f"Checkpoint: {path}; curve: {out / 'curves.png'}")


@app.command("evaluate")
def evaluate_models(
    export: ExportDir,
    out: Annotated[Path, typer.Option(help="Folder for results.md, results.csv and curves.png.")] = Path("data/eval"),
    models: Annotated[str, typer.Option(help="Comma-separated: kgrec, popularity, itemknn, ease, mf-bpr, lightgcn, text, "
                                        "kgrec-no-text, kgrec-no-kg, kgrec-kg-shuffled, kgrec-no-neighbourhood, "
                                        "kgrec-uniform-negatives, kgrec-no-time, kgrec-entity-ids (every entity "
                                        "with an id embedding), kgrec-channel (the EASE channel alone); with "
                                        "ratings also kgrec-rating, bias, mean (RMSE, MAE).")] = "popularity,itemknn,text,kgrec",
    dim: Dim = 64,
    layers: Layers = 3,
    epochs: Epochs = 200,
    lr: LearningRate = 5e-3,
    patience: Patience = 5,
    seed: Seed = 0,
    device: Device = "cpu",
    rating_weight: RatingWeight = 0.0,
    negatives: Negatives = 8,
    kg_graph: KgGraph = True,
    num_neighbors: NumNeighbors = 0,
    batch_size: BatchSize = 8192,
    neighbourhood_model: NeighbourhoodModel = "ease",
    cold_lift: ColdLift = True,
    use_time: UseTime = True,
    time_scale: TimeScale = 300.0,
    kg_loss: KgLoss = 0.1,
    progress: Progress = True,
) -> None:
    """Train and compare models on the export's split (full ranking, training items excluded)."""
    from kgrec.model.harness import build, run, write_results

    names = _model_names(models)
    _out_folder(out)
    data, items, entities, config, train_config = _models_setup(export, dim, layers, epochs, lr, patience, seed, device,
                                                                progress, rating_weight, negatives, kg_graph,
                                                                num_neighbors, batch_size, neighbourhood_model,
                                                                cold_lift, use_time, time_scale, kg_loss)
    results = []
    for name in names:
        console.print(f"[bold]{name}[/bold] ...")
        results.append(run(name, build(name, items, entities, config, train_config, progress), data))
        r = results[-1]
        console.print(f"  recall@20 {r.metrics['recall@20']:.4f}  ndcg@20 {r.metrics['ndcg@20']:.4f}  "
                      + (f"rmse {r.metrics['rmse']:.4f}  mae {r.metrics['mae']:.4f}  " if "rmse" in r.metrics else "")
                      + f"({r.train_seconds:.0f}s)")
    paths = write_results(results, out, f"Comparison on {export}")
    console.print(paths["md"].read_text())
    console.print(f"Written: {paths['md']}, {paths['csv']}, {paths['png']}")


def _model_names(models: str) -> list[str]:
    """The names in ``--models``, all checked before any model trains."""
    from kgrec.model.harness import MODEL_NAMES, check_model

    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise KgrecError(f"--models (got {models!r}): no models given; choose from {', '.join(MODEL_NAMES)}")
    return [check_model(name) for name in names]


# -- kgrec run / recommend ----------------------------------------------------------------------------
@app.command("run")
def run_pipeline_cmd(
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=1000, help="Recommendations written per user.")] = 50,
    run_id: Annotated[Optional[str], typer.Option(help="The ModelRun id, also the name of its checkpoint folder: "
                                                  "letters, digits, '.', '_', '-' (default: run-<UTC timestamp>).")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Load this kgrec.pt (or run folder) instead of training.")] = None,
    dim: Dim = 64,
    layers: Layers = 3,
    epochs: Epochs = 200,
    lr: LearningRate = 5e-3,
    patience: Patience = 5,
    seed: Seed = 0,
    keep_runs: Annotated[int, typer.Option(min=0, help=(
        "Inactive finished runs kept; older ones, and runs that an interruption left unfinished, are pruned."
    ))] = 2,
    device: Device = "cpu",
    rating_weight: RatingWeight = 0.0,
    negatives: Negatives = 8,
    kg_graph: KgGraph = True,
    num_neighbors: NumNeighbors = 0,
    batch_size: BatchSize = 8192,
    neighbourhood_model: NeighbourhoodModel = "ease",
    cold_lift: ColdLift = True,
    use_time: UseTime = True,
    time_scale: TimeScale = 300.0,
    kg_loss: KgLoss = 0.1,
    progress: Progress = True,
) -> None:
    """Export, train (or load a checkpoint), score, write back and activate a run."""
    from kgrec.model.kgrec_net import KGRecConfig
    from kgrec.model.sampled import require_sampling
    from kgrec.model.training import TrainConfig
    from kgrec.pipeline import PipelineConfig, run_pipeline

    config = PipelineConfig(
        run_id=run_id, top_k=top_k, checkpoint=checkpoint, keep_runs=keep_runs,
        model=KGRecConfig(dim=dim, num_layers=layers, rating_weight=rating_weight, negatives=negatives,
                          kg_graph=kg_graph, num_neighbors=num_neighbors, neighbourhood_model=neighbourhood_model,
                          cold_lift=cold_lift, use_time=use_time, time_scale=time_scale, kg_loss=kg_loss),
        train=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, eval_every=2, patience=patience, seed=seed,
                          device=device),
    )
    if checkpoint is None:
        config.train.torch_device  # noqa: B018 -- an unavailable device fails here, before the export
        require_sampling(num_neighbors)
    settings = get_settings()
    with _graph() as graph:
        result = run_pipeline(graph, settings, config, progress=progress, say=console.print)
    console.print(_table(f"Run {result.run_id}", ["step", "seconds"], [(k, f"{v:.1f}") for k, v in result.seconds.items()]))
    if result.metrics:
        console.print("Test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if k != "users"))


@app.command("recommend")
def recommend_cmd(
    user: Annotated[Optional[str], typer.Argument(help="A user id (default: a sample user of the active run).")] = None,
    k: Annotated[int, typer.Option(min=1, max=100, help="How many.")] = 10,
) -> None:
    """Print a user's top-K from the active run, with explanations and the Cypher that returns them.

    The run's stored list, without the items the user has interacted with (as the API's default list).
    """
    from kgrec.api.serving import active_run, parse_explanation
    from kgrec.graph_schema import queries as q

    with _graph() as graph:
        if user is None:
            sample = graph.read(q.SAMPLE_USER_ACTIVE)
            if not sample:
                raise KgrecError("there is no active run with recommendations: run `kgrec run` first")
            user = sample[0]["id"]
        # the API's read of a stored list (TOP_K_ACTIVE, printed below, returns the same items)
        row = graph.read_columns(q.API_RECOMMENDATIONS_EXPLAINED, user=user, entity=None, exclude_seen=True, k=k)
    run = None if not row["user_found"] else active_run(row["runs"])
    served = f"`GET /users/{user}/recommendations` serves them scores computed now from their interactions"
    if not row["items"]:
        raise KgrecError(_no_list(user, None if run is None else run.id, row, served))
    table = _table(f"Top {k} for user {user} in run {run.id}", ["rank", "item", "score", "why"], [])
    for item in row["items"]:
        why = (parse_explanation(item["explanation"]) or {}).get("text", "")
        table.add_row(str(item["rank"]), f"{item['title']} ({item['item_id']})", f"{item['score']:.3f}", str(why))
    console.print(table)
    if row["recent"]:
        console.print(f"User {user!r} has interacted since run {run.id!r} was activated: the API no longer serves "
                      f"this stored list; {served}.", highlight=False, markup=False)
    console.print("The same from Cypher:\n  // params: " + json.dumps({"user": user, "k": k}) + "\n"
                  + "\n".join("  " + line for line in q.TOP_K_ACTIVE.splitlines()),
                  highlight=False, markup=False, soft_wrap=True)  # unwrapped, to copy as it is


def _no_list(user: str, run_id: str | None, row: dict, served: str) -> str:
    """Why the active run's read of ``user``'s list (API_RECOMMENDATIONS_EXPLAINED, ``row``) has no items."""
    if not row["user_found"]:
        return f"unknown user {user!r}"
    if run_id is None:
        return "there is no active run: run `kgrec run` first"
    if not row["has_list"]:
        return (f"run {run_id!r} holds no list for user {user!r} (a run lists the users who had interactions when it "
                f"was made); {served}, or the most popular items while they have none")
    since = f"; they have interacted since the run was activated, so {served}" if row["recent"] else ""
    return f"every item run {run_id!r} lists for user {user!r} is one they have interacted with{since}"


@app.command("refresh")
def refresh_cmd(
    run_id: Annotated[Optional[str], typer.Option(help="The new run's id, a plain name as for `kgrec run` (default: refresh-<UTC timestamp>).")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, max=1000, help="Default: the active run's.")] = None,
    progress: Progress = True,
) -> None:
    """Pick up graph edits without retraining: re-encode changed text, recompute embeddings and lists."""
    from kgrec.refresh import refresh

    with _graph() as graph:
        result = refresh(graph, get_settings(), run_id=run_id, top_k=top_k, progress=progress, say=console.print)
    console.print(_table(f"Run {result.run_id} (refresh of {result.refreshed_from}) is active", ["change", "count"],
                         [(k, str(v)) for k, v in result.changes.items()]))
    if result.changed_users:
        console.print(f"Users whose top-K changed (first 10): {', '.join(result.changed_users[:10])}")


# -- kgrec serve ---------------------------------------------------------------------------------------
APP_FACTORY = "kgrec.api.app:create_app"
# uvloop and httptools (dependencies): several times less event-loop and HTTP-parsing time per request than
# asyncio and h11; uvicorn's "auto" would fall back to those silently when they are missing.
LOOP, HTTP = ("asyncio" if sys.platform == "win32" else "uvloop"), "httptools"  # uvloop has no Windows build


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes (uvicorn workers) sharing the port; each has its own Neo4j driver and caches. "
            "More than one helps when the API, not Neo4j, is what is busy.",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) with uvicorn, on uvloop and httptools."""
    import uvicorn

    get_settings()  # a bad setting fails here, as one line, before any worker starts
    console.print(
        f"Serving the kgrec API at http://{host}:{port} (docs: http://{host}:{port}/docs)"
        + (f" with {workers} workers" if workers > 1 else "")
    )
    # an import string and a factory, so that every worker builds its app (from the same environment)
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, loop=LOOP, http=HTTP)


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
    warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated", category=FutureWarning)
    try:
        app()
    except KgrecError as e:
        Console(stderr=True).print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except Neo4jError as e:  # a refusal kgrec did not foresee, such as a hand-edited value of the wrong type
        hint = "; is a value edited by hand of the wrong type? `kgrec schema check` lists them" \
            if "TypeError" in (e.code or "") else ""
        Console(stderr=True).print(f"[red]error:[/red] Neo4j refused a query ({e.code}): {e.message}{hint}",
                                   highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
