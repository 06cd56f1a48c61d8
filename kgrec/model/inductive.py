"""Embeddings of items the model has never seen, from a saved run: the cold-start path of the API.

A KGRec item embedding fuses an id part, a text part and a knowledge part (see
:mod:`kgrec.model.kgrec_net`). A new item — added by ``POST /items`` or by a knowledge engineer after the
run — has no id part, but its text and its knowledge links are enough: :class:`ItemEmbedder` loads the
run's checkpoint and computes :meth:`KGRecNet.new_item_embeddings` for it — placed among the run's trained
items by content, as the model places cold items — in the same space as the run's stored embeddings, so it
can be ranked against users and found by the vector index at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgrec.errors import KgrecError
from kgrec.model.kgrec_net import KGRecConfig, KGRecNet

CHECKPOINT = "kgrec.pt"
#: What every checkpoint that ``kgrec run``, ``kgrec refresh`` or ``kgrec train`` writes holds.
CHECKPOINT_KEYS = ("state_dict", "config", "train_config", "relation_index", "user_ids", "item_ids", "entity_ids")


def read_checkpoint(path: Path, keys: Sequence[str] = CHECKPOINT_KEYS) -> dict[str, Any]:
    """A saved checkpoint (``kgrec.pt``), refused with a :class:`KgrecError` naming ``path`` when it is missing,
    cannot be unpickled (damaged, or another kind of file) or lacks any of ``keys`` (what the caller needs)."""
    if not path.is_file():
        raise KgrecError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch.load raises what unpickling a foreign or cut-off file happens to raise
        raise KgrecError(f"checkpoint {path} cannot be read ({type(e).__name__}: {e}): it is damaged or not a "
                         "kgrec checkpoint") from e
    missing = [key for key in keys if key not in checkpoint] if isinstance(checkpoint, dict) else ["all"]
    if missing:
        raise KgrecError(f"checkpoint {path} is not a kgrec checkpoint: it lacks {', '.join(missing)} "
                         "(written by an older kgrec, or another program?)")
    return checkpoint


def build_net(checkpoint: dict[str, Any]) -> KGRecNet:
    """A :class:`KGRecNet` with a checkpoint's weights (sizes read from the weights themselves)."""
    state = checkpoint["state_dict"]
    config = KGRecConfig.from_saved(checkpoint["config"])
    item_text = state.get("item_text")
    entity_text = state.get("entity_text")
    net = KGRecNet(
        num_users=state["user_emb.weight"].shape[0],
        num_items=state["item_emb.weight"].shape[0],
        num_entities=state["entity_emb.weight"].shape[0] if "entity_emb.weight" in state else 0,
        num_relations=state["relation_emb.weight"].shape[0] if "relation_emb.weight" in state else 0,
        item_text=item_text,
        entity_text=entity_text,
        config=config,
    )
    for name in ("kg_item", "kg_relation", "kg_entity", "item_has_id"):  # graph buffers: sized by the data
        setattr(net, name, torch.empty_like(state[name]))
    net.load_state_dict(state)
    net.set_placement(checkpoint.get("placement", "content"))
    net.eval()
    return net


class ItemEmbedder:
    """Embeds new items with a trained run's model.

    Args:
        net (KGRecNet): the trained model.
        relation_index (dict): relation name → the model's relation index.
        entity_index (dict): entity id → the model's entity index.
        text_model (str): the sentence-transformers model the run's text vectors came from.
    """

    def __init__(self, net: KGRecNet, relation_index: dict[str, int], entity_index: dict[str, int], text_model: str,
                 anchors: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.net, self.relation_index, self.entity_index, self.text_model = net, relation_index, entity_index, text_model
        self.anchors = anchors  # KGRecNet.cold_anchors() of the trained graph (None: checkpoints without them)

    @classmethod
    def load(cls, checkpoint_dir: str | Path) -> ItemEmbedder:
        checkpoint = read_checkpoint(Path(checkpoint_dir) / CHECKPOINT, ("state_dict", "config", "relation_index", "entity_ids"))
        return cls(build_net(checkpoint), dict(checkpoint["relation_index"]),
                   {e: k for k, e in enumerate(checkpoint["entity_ids"])}, checkpoint.get("text_model", ""),
                   checkpoint.get("cold_anchors"))

    @property
    def dimension(self) -> int:
        return self.net.config.dim

    @property
    def text_dimension(self) -> int | None:
        return self.net.item_text.shape[1] if self.net.use_text else None

    def embed(self, text_vectors: np.ndarray | None, links: Sequence[Sequence[tuple[str, str]]]) -> np.ndarray:
        """``[n, d]`` embeddings of ``n`` new items from their text vectors (``[n, t]``, rows of zeros for
        no text; ``None``: no text at all) and their knowledge links, ``(relation, entity_id)`` per item.
        Links to relations or entities the model does not know are ignored (they carry no learned meaning)."""
        return self.embed_with_weights(text_vectors, links)[0]

    def embed_with_weights(self, text_vectors: np.ndarray | None, links: Sequence[Sequence[tuple[str, str]]]) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`embed`, plus the ``[n, 3]`` fusion weights (id, text, kg)."""
        n = len(links)
        text = None
        if text_vectors is not None:
            text = torch.as_tensor(np.asarray(text_vectors, dtype=np.float32))
            if text.ndim != 2 or text.shape[0] != n:
                raise KgrecError(f"text vectors of shape {tuple(text.shape)} do not match {n} items")
            if self.text_dimension is not None and text.shape[1] != self.text_dimension:
                raise KgrecError(f"text vectors have {text.shape[1]} dimensions; the run's text model "
                                 f"{self.text_model!r} has {self.text_dimension}")
        known = [(k, self.relation_index[r], self.entity_index[e]) for k, item in enumerate(links) for r, e in item
                 if r in self.relation_index and e in self.entity_index]
        kg = torch.tensor(known, dtype=torch.long).reshape(-1, 3).T
        with torch.no_grad():
            items, alpha = self.net.new_item_embeddings(text, kg[0], kg[1], kg[2], n, self.anchors)
        return items.numpy(), alpha.numpy()

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.net!r}, text_model={self.text_model!r})"
