r"""KGRecNet: item text, knowledge graph and collaborative signal, fused by attention.

Each item has up to three representations of size :math:`d`:

- **id** — a learned embedding :math:`\mathbf{e}_i` (absent for items with no training interaction:
  cold items are scored without it, and during training it is dropped at random with probability
  ``id_dropout`` so that the model learns to rank from the other two);
- **text** — a two-layer MLP of the item's frozen sentence-transformers vector :math:`\mathbf{t}_i`;
- **knowledge** — relation-aware attention over the item's knowledge-graph neighbours, in the form of
  KGAT (Wang et al., `"KGAT: Knowledge Graph Attention Network for Recommendation"
  <https://arxiv.org/abs/1905.07854>`_), with entity representations :math:`\mathbf{z}_e` (an id embedding
  plus the MLP of the entity's text vector, where it has text) and relation embeddings
  :math:`\mathbf{r}`. With ``shared_entity_ids`` (the default) only an entity linked to two or more items has
  an id embedding; an entity of one item keeps its text part alone, since its id embedding would be a
  second, private id of that item — knowledge shared with no other item, which ``id_dropout`` does not
  hide (RecBole's Freebase graph: 24,840 of its 33,126 entities):

  .. math::
      \pi(i, r, e) = (\mathbf{W}\mathbf{z}_e)^\top \tanh(\mathbf{W}\mathbf{h}^0_i + \mathbf{r}), \qquad
      \mathbf{k}_i = \sum_{(r, e) \in \mathcal{N}(i)} \operatorname{softmax}_{\mathcal{N}(i)}(\pi)\,
      (\mathbf{W}_v \mathbf{z}_e + \mathbf{r}),

  where :math:`\mathbf{h}^0_i` is the mean of the item's available id and text parts.

The three are fused per item by attention whose weights sum to 1 over the parts the item has:

.. math::
    \alpha_{i,m} = \operatorname{softmax}_m\big(\mathbf{q}^\top \tanh(\mathbf{W}_f \mathbf{c}_{i,m} +
    \mathbf{b}_f)\big), \qquad \mathbf{h}_i = \sum_m \alpha_{i,m} \mathbf{c}_{i,m},
    \quad m \in \{\text{id}, \text{text}, \text{kg}\}.

Users are id embeddings. Collaborative propagation is LightGCN's (He et al., `"LightGCN"
<https://arxiv.org/abs/2002.02126>`_) over the user–item training graph (and user–user ``FOLLOWS`` links,
when ``use_social``), with the fused items as the items' layer 0:
:math:`\mathbf{X}^{(l+1)} = \hat{\mathbf{A}}\mathbf{X}^{(l)}`, final representations the mean over layers,
and the score :math:`\hat{y}_{ui} = \mathbf{x}_u^\top \mathbf{x}_i`. Training is BPR
(:func:`~kgrec.model.training.fit_bpr`) with dynamic negative sampling (Zhang et al., `"Optimizing Top-N
Collaborative Filtering via Dynamic Negative Item Sampling" <https://doi.org/10.1145/2484028.2484126>`_):
each positive pair draws ``negatives`` = :math:`M` uniform unseen items and the BPR triple takes the one
the current model scores highest, :math:`j = \arg\max_{j_1..j_M} \hat{y}_{uj_m}` — a uniform negative is
mostly an easy one that teaches little once training is under way. (:math:`M = 1` is plain BPR; the
ablation ``kgrec-uniform-negatives`` measures what the choice adds.)

Beside BPR, the knowledge triples train the knowledge part's embeddings directly, as KGAT's own
knowledge-graph loss does (there TransR; here TransE, Bordes et al., `"Translating Embeddings for Modeling
Multi-relational Data" <https://papers.nips.cc/paper/5071>`_): each step draws ``kg_batch`` triples
:math:`(i, r, e)` and for each a uniform entity :math:`e'` as the corrupted tail, and adds

.. math::
    \lambda_{KG} \Big( \operatorname{mean} \operatorname{softplus}\big(\|\mathbf{h}^0_i + \mathbf{r} - \mathbf{z}_e\|^2
    - \|\mathbf{h}^0_i + \mathbf{r} - \mathbf{z}_{e'}\|^2\big) + \lambda\, \text{L2} \Big),

so that an item's facts are where its relations point from it; :math:`\lambda_{KG}` = ``kg_loss`` (chosen on
validation of all three benchmark datasets, ``benchmarks/results/variants/``).

With ``num_neighbors`` the training steps run on neighbour-sampled subgraphs instead of the whole graph
(:mod:`kgrec.model.sampled`, :meth:`KGRecNet.forward_sampled`), for graphs whose full-batch step does not fit.

With ``kg_graph`` (the default) the propagation graph is KGAT's collaborative knowledge graph: the
entities are nodes too, linked to their items (layer 0 :math:`\mathbf{z}_e`), so that items sharing facts
smooth towards each other two hops apart, as items sharing users do — the knowledge part above only sums
an item's own facts into its layer 0.

**Cold items.** An item with no interaction has no id part and no interaction edges, so propagation
would leave it its fused layer 0 (and, with ``kg_graph``, what its facts pass on), on another scale than
the items whose layers carry collaborative signal. At inference it is placed among them instead: with
:math:`\mathbf{c}_i` the fusion of its text and knowledge parts only (its *content*) and :math:`A` the
anchor items (trained id part and interactions),

.. math::
    \mathbf{x}_i = \sum_{j \in N_k(i)} \operatorname{softmax}_{N_k(i)}\big(\cos(\mathbf{c}_i,
    \mathbf{c}_j) / \tau\big)\, \mathbf{x}_j,

over its :math:`k` = ``COLD_NEIGHBOURS`` nearest anchors by content (:math:`\tau` = ``COLD_TEMPERATURE``),
in the spirit of content-to-collaborative mappings for cold start (e.g. DropoutNet, Volkovs et al.,
NeurIPS 2017); new items added after training (:meth:`KGRecNet.new_item_embeddings`) are placed the same way.
With :attr:`KGRecNet.placement` ``"text"`` the neighbours of an item with text are found by the cosine of
the frozen text vectors instead (among the anchors with text): the learned content is trained alongside
the id part, which carries the warm items, and can be a poor guide (RecBole's ml-100k cold start:
nDCG@20 0.11 placed by learned content, ``benchmarks/results/cold-gamma/``; 0.45 by text,
``docs/results.md``). :class:`KGRec` chooses the placement on validation.

The served score adds an item-neighbourhood channel, weighted on validation (:class:`KGRec`).

**Ratings (optional).** With ``rating_weight`` :math:`\lambda_r > 0` and explicit ratings in the training
data, the same representations also predict the rating,
:math:`\hat{r}_{ui} = \mu + b_u + b_i + a\,\mathbf{x}_u^\top \mathbf{x}_i` (global mean :math:`\mu`,
learned biases and scale :math:`a`), and the loss is BPR plus :math:`\lambda_r` times the mean squared
error over the batch's rated positive pairs (multi-task, as in e.g. Ning & Karypis' joint rating/ranking
objectives); early stopping still follows validation nDCG.

Why this shape: KGAT-style attention lets each item weigh its facts (a genre matters more than a
producer); LightGCN's parameter-free propagation is the strongest simple collaborative model on these data
sizes; and fusing at the item, with readable weights, both explains a recommendation ("mostly its text")
and makes cold items first-class, since text and knowledge need no interaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.utils import scatter, softmax

from kgrec.errors import KgrecError
from kgrec.model.baselines import (
    EASE, EASE_LAMBDAS, KNOWLEDGE_WEIGHTS, TIME_SCALE, TIME_WEIGHTS, ItemKNN, TextSimilarity, ease_knowledge,
)
from kgrec.model.data import RecData
from kgrec.model.evaluate import evaluate, evaluate_cold_start
from kgrec.model.sampled import epoch_batches, link_loader, propagation_graph
from kgrec.model.training import EpochRecord, TrainConfig, bpr_loss, fit_bpr, seeded

PARTS = ("id", "text", "kg")
COLD_NEIGHBOURS = 20  # anchor items a cold item's embedding is drawn from
COLD_TEMPERATURE = 0.1  # softmax temperature over their content cosines
# shares of the neighbourhood channel in the score tried on validation: 0 (the embeddings alone), 1 (the channel
# alone) and between them the mixtures that rank as the weights 0.25 ... 4 of the channel beside the embeddings did
BETAS = (0.0, 0.2, 1 / 3, 0.5, 2 / 3, 0.8, 1.0)
GAMMAS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)  # weights of the cold items' text channel tried on validation
# shifts of the cold items' standardised scores tried on validation: up where new items should reach the lists,
# down where their placement rates them above the warm items they were placed among
LIFTS = (-4.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
MIN_COLD_VAL_PAIRS = 50  # validation pairs on cold items needed to choose gamma on them (else pseudo-cold)
PSEUDO_COLD_SHARE = 0.1  # of the items with content and validation interactions, hidden to choose gamma
NEIGHBOURHOOD_MODELS = ("itemknn", "ease")  # what the neighbourhood channel is (KGRecConfig.neighbourhood_model)
PLACEMENTS = ("content", "text")  # how cold items find their anchors (KGRec chooses on validation)


@dataclass(frozen=True)
class KGRecConfig:
    r"""Architecture of :class:`KGRecNet`.

    Args:
        dim (int): representation size :math:`d`. (default: ``64``)
        num_layers (int): LightGCN propagation layers. (default: ``3``)
        use_text (bool): use the text part. (default: ``True``)
        use_kg (bool): use the knowledge part. (default: ``True``)
        use_social (bool): propagate over ``FOLLOWS`` links too. (default: ``False``)
        id_dropout (float): probability of hiding an item's id part in a training step. (default: ``0.1``)
        neighbourhood (bool): add the item-neighbourhood channel to the score (see :class:`KGRec`).
            (default: ``True``)
        rating_weight (float): :math:`\lambda_r`, the weight of the rating MSE beside BPR; ``0`` trains no
            rating head. (default: ``0.0``)
        negatives (int): :math:`M`, the uniform candidates a BPR triple's negative is the hardest of
            (dynamic negative sampling; ``1``: plain uniform BPR). (default: ``8``)
        kg_graph (bool): propagate over the item–entity links too (module docstring). (default: ``True``)
        neighbourhood_model (str): the neighbourhood channel: ``"itemknn"`` (cosine
            :class:`~kgrec.model.baselines.ItemKNN`) or ``"ease"`` (:class:`~kgrec.model.baselines.EASE`, its
            L2 weight and, with ``use_kg``, the weight of its knowledge rows chosen on validation; stronger,
            one dense inversion of the smaller of rows and items).
            (default: ``"ease"``)
        num_neighbors (int): ``0`` trains full-batch; ``k > 0`` trains on neighbour-sampled mini-batches
            (PyG's ``LinkNeighborLoader``, :mod:`kgrec.model.sampled`) with at most ``k`` neighbours per node,
            edge type and hop, for graphs whose full-batch training does not fit. (default: ``0``)
        cold_lift (bool): choose on validation a shift :math:`\delta` of the cold items' scores against the warm
            ones (:class:`KGRec`); off: :math:`\delta = 0`. (default: ``True``)
        use_time (bool): let the EASE channel weigh co-occurrences by how close in time they were (its time
            kernel, :class:`~kgrec.model.baselines.EASE`; its weight chosen on validation, ``0`` among the
            candidates), where the training interactions have times. (default: ``True``)
        time_scale (float): :math:`\tau` of that kernel, seconds. (default: ``300``)
        shared_entity_ids (bool): give an entity an id embedding only where it is linked to two or more items
            of the graph (module docstring); off: every entity has one. (default: ``True``)
        kg_loss (float): :math:`\lambda_{KG}`, the weight of the knowledge triples' translation loss beside BPR
            (module docstring); ``0``: none. (default: ``0.1``)
        kg_batch (int): knowledge triples drawn for that loss per training step. (default: ``4096``)
    """

    dim: int = 64
    num_layers: int = 3
    use_text: bool = True
    use_kg: bool = True
    use_social: bool = False
    id_dropout: float = 0.1
    neighbourhood: bool = True
    rating_weight: float = 0.0
    negatives: int = 8
    kg_graph: bool = True
    num_neighbors: int = 0
    neighbourhood_model: str = "ease"
    cold_lift: bool = True
    use_time: bool = True
    time_scale: float = TIME_SCALE
    shared_entity_ids: bool = True
    kg_loss: float = 0.1
    kg_batch: int = 4096

    def __post_init__(self) -> None:
        if self.neighbourhood_model not in NEIGHBOURHOOD_MODELS:
            raise KgrecError(f"'neighbourhood_model' (got {self.neighbourhood_model!r}) must be one of "
                             f"{', '.join(NEIGHBOURHOOD_MODELS)}")
        if self.num_neighbors < 0:
            raise KgrecError(f"'num_neighbors' (got {self.num_neighbors}) must be 0 (full-batch) or more")
        if self.num_neighbors and self.rating_weight > 0:
            raise KgrecError("the rating head trains full-batch only: set 'num_neighbors' to 0 or 'rating_weight' to 0")
        if self.negatives < 1:
            raise KgrecError(f"'negatives' (got {self.negatives}) must be at least 1")
        if not self.rating_weight >= 0:
            raise KgrecError(f"'rating_weight' (got {self.rating_weight}) must be a number >= 0")
        if self.dim < 1 or self.num_layers < 0:
            raise KgrecError(f"'dim' (got {self.dim}) must be >= 1 and 'num_layers' (got {self.num_layers}) >= 0")
        if not 0 <= self.id_dropout < 1:
            raise KgrecError(f"'id_dropout' (got {self.id_dropout}) must be in [0, 1)")
        if not self.time_scale > 0:
            raise KgrecError(f"'time_scale' (got {self.time_scale}) must be a positive number of seconds")
        if not self.kg_loss >= 0:
            raise KgrecError(f"'kg_loss' (got {self.kg_loss}) must be a number >= 0")
        if self.kg_batch < 1:
            raise KgrecError(f"'kg_batch' (got {self.kg_batch}) must be at least 1")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_saved(cls, saved: dict[str, object]) -> KGRecConfig:
        """The config a checkpoint saved; one saved before ``kg_graph`` existed propagated without entities,
        one saved before ``cold_lift`` existed did not lift cold items, one saved before
        ``neighbourhood_model`` existed had an ItemKNN channel, one saved before ``use_time`` existed had no
        time kernel, one saved before ``shared_entity_ids`` existed gave every entity an id embedding, one saved
        before ``kg_loss`` existed trained without the translation loss."""
        return cls(**{"kg_graph": False, "cold_lift": False, "neighbourhood_model": "itemknn", "use_time": False,
                      "shared_entity_ids": False, "kg_loss": 0.0, **saved})


class KGRecNet(nn.Module):
    """The model; see the module docstring for the equations.

    Args:
        num_users (int), num_items (int), num_entities (int): node counts.
        num_relations (int): knowledge relation types.
        item_text (torch.Tensor, optional): ``[num_items, t]`` frozen text vectors (rows of zeros: no text).
        entity_text (torch.Tensor, optional): ``[num_entities, t]`` frozen text vectors.
        config (KGRecConfig): the architecture.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        num_entities: int,
        num_relations: int,
        item_text: Tensor | None = None,
        entity_text: Tensor | None = None,
        config: KGRecConfig = KGRecConfig(),
    ) -> None:
        super().__init__()
        self.num_users, self.num_items, self.num_entities = num_users, num_items, num_entities
        self.config = config
        d = config.dim
        self.user_emb = nn.Embedding(num_users, d)
        self.item_emb = nn.Embedding(num_items, d)
        self.use_text = config.use_text and item_text is not None
        self.use_kg = config.use_kg and num_entities > 0 and num_relations > 0
        if self.use_text:
            self.register_buffer("item_text", item_text.float())
            self.register_buffer("item_has_text", item_text.abs().sum(1) > 0)
            self.text_mlp = nn.Sequential(nn.Linear(item_text.shape[1], d), nn.Tanh(), nn.Linear(d, d))
        if self.use_kg:
            self.entity_emb = nn.Embedding(num_entities, d)
            self.relation_emb = nn.Embedding(num_relations, d)
            self.att_proj = nn.Linear(d, d, bias=False)
            self.value_proj = nn.Linear(d, d, bias=False)
            if entity_text is not None and self.use_text:
                self.register_buffer("entity_text", entity_text.float())
            else:
                self.entity_text = None
        self.fusion_proj = nn.Linear(d, d)
        self.fusion_query = nn.Parameter(torch.empty(d))
        if config.rating_weight > 0:  # the rating head: mu + b_u + b_i + a * <x_u, x_i>
            self.user_bias = nn.Embedding(num_users, 1)
            self.item_bias = nn.Embedding(num_items, 1)
            self.rating_scale = nn.Parameter(torch.ones(()))
            self.register_buffer("rating_mean", torch.zeros(()))
        # graph structure, set by attach()
        self.register_buffer("kg_item", torch.empty(0, dtype=torch.long))
        self.register_buffer("kg_relation", torch.empty(0, dtype=torch.long))
        self.register_buffer("kg_entity", torch.empty(0, dtype=torch.long))
        self.register_buffer("item_has_id", torch.ones(num_items, dtype=torch.bool))
        # which entities have an id part (shared_entity_ids): from the graph, like kg_*; not in checkpoints
        self.register_buffer("entity_has_id", torch.ones(num_entities, dtype=torch.bool), persistent=False)
        self.register_buffer("adjacency", None, persistent=False)  # moves with .to(); not in checkpoints
        self.register_buffer("item_connected", torch.zeros(num_items, dtype=torch.bool), persistent=False)
        self._cache: tuple[Tensor, Tensor] | None = None
        self._kg_ptr: Tensor | None = None  # the knowledge links grouped by item (_links_of), per graph
        self._kg_order: Tensor | None = None
        self.cold_map: tuple[Tensor, Tensor, Tensor] | None = None  # set with the cache (see embeddings())
        self.placement = "content"  # how cold items find their anchors: one of PLACEMENTS (set_placement)
        self.reset_parameters()

    def set_placement(self, placement: str) -> None:
        """Find cold items' anchors by ``"content"`` (learned) or ``"text"`` (frozen text vectors, for the
        items that have text; module docstring)."""
        if placement not in PLACEMENTS:
            raise KgrecError(f"'placement' (got {placement!r}) must be one of {PLACEMENTS}")
        self.placement = placement
        self._cache = None

    def place(self, cold: Tensor, anchors: Tensor, content: Tensor) -> tuple[Tensor, Tensor]:
        """``([C, k] positions in anchors, [C, k] softmax weights)``: each item of ``cold``'s nearest items
        of ``anchors`` (module docstring), by ``content`` or, with placement ``"text"``, by text where the cold
        item has text."""
        neighbours, weights = _nearest(content[cold], F.normalize(content[anchors], dim=1))
        if self.placement == "text" and self.use_text:
            by_text, keyed = self.item_has_text[cold], torch.nonzero(self.item_has_text[anchors]).flatten()
            _place_by_text(neighbours, weights, by_text, self.item_text[cold[by_text]],
                           F.normalize(self.item_text[anchors[keyed]], dim=1), keyed)
        return neighbours, weights

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        nn.init.normal_(self.fusion_query, std=0.1)
        self.fusion_proj.reset_parameters()
        if self.use_text:
            for layer in self.text_mlp:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        if self.use_kg:
            nn.init.normal_(self.entity_emb.weight, std=0.1)
            nn.init.normal_(self.relation_emb.weight, std=0.1)
            self.att_proj.reset_parameters()
            self.value_proj.reset_parameters()
        if self.config.rating_weight > 0:
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
            nn.init.ones_(self.rating_scale)

    def attach(self, data: RecData, relation_index: dict[str, int]) -> None:
        """Take the graph structure from ``data``: training interactions (and links), knowledge triples,
        which items have an id part (those with at least one training interaction) and which entities (with
        ``shared_entity_ids``, those linked to two or more items; else all)."""
        device = self.user_emb.weight.device
        pairs = [(edges, relation_index[name]) for name, edges in data.item_entity.items() if name in relation_index]
        if pairs:
            self.kg_item = torch.cat([e[0] for e, _ in pairs]).to(device)
            self.kg_entity = torch.cat([e[1] for e, _ in pairs]).to(device)
            self.kg_relation = torch.cat([torch.full((e.shape[1],), r, dtype=torch.long) for e, r in pairs]).to(device)
        shared = torch.ones(self.num_entities, dtype=torch.bool)
        if self.config.shared_entity_ids and self.kg_item.numel():
            links = torch.unique(torch.stack([self.kg_item, self.kg_entity]).cpu(), dim=1)  # one per item and entity
            shared = torch.bincount(links[1], minlength=self.num_entities) >= 2
        self.entity_has_id = shared.to(device)
        seen = torch.zeros(self.num_items, dtype=torch.bool)
        seen[data.train[1]] = True
        self.item_has_id = seen.to(device)
        self.item_connected = seen.to(device)  # has interaction edges in the propagation graph
        kg = (self.kg_item.cpu(), self.kg_entity.cpu(), self.num_entities) if self.config.kg_graph and self.use_kg else None
        self.adjacency = _normalized_adjacency(data, self.config.use_social, kg).to(device)
        self._cache = self._kg_ptr = self._kg_order = None

    # -- item parts and fusion -----------------------------------------------------------------------
    def item_parts(self, hide_ids: Tensor | None = None, entities: Tensor | None = None,
                   items: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``([n, 3, d] parts, [n, 3] mask)`` in the order id, text, kg, of every item or, with ``items``, of
        those (``[n]`` indices; each with all its knowledge links, as in the whole graph); ``hide_ids``:
        ``[n]``; ``entities``: the :meth:`_entities` of this step when the caller has them already (every
        item only)."""
        if items is None:
            n, links = self.num_items, (self.kg_item, self.kg_relation, self.kg_entity)
            id_part, id_mask = self.item_emb.weight, self.item_has_id
            text_rows = (self.item_text, self.item_has_text) if self.use_text else None
        else:
            n = items.numel()
            id_part, id_mask = self.item_emb(items), self.item_has_id[items]
            text_rows = (self.item_text[items], self.item_has_text[items]) if self.use_text else None
            links, entities = self._links_of(items) if self.use_kg and self.kg_item.numel() else (None, None)
        zeros = torch.zeros_like(id_part)
        no = torch.zeros(n, dtype=torch.bool, device=id_part.device)
        id_mask = id_mask if hide_ids is None else id_mask & ~hide_ids
        text_part, text_mask = (self.text_mlp(text_rows[0]), text_rows[1]) if text_rows is not None else (zeros, no)
        kg_part, kg_mask = zeros, no
        if self.use_kg and self.kg_item.numel() and links is not None:
            kg_part, kg_mask, _ = self._attend(_mean_of(id_part, id_mask, text_part, text_mask), *links, n, entities)
        # an item with nothing (no id, text or facts) keeps its (untrained) id part rather than zeros
        id_mask = id_mask | ~(id_mask | text_mask | kg_mask)
        return torch.stack([id_part, text_part, kg_part], 1), torch.stack([id_mask, text_mask, kg_mask], 1)

    def _links_of(self, items: Tensor) -> tuple[tuple[Tensor, Tensor, Tensor], Tensor]:
        """The knowledge links of ``items`` as ``(position in items, relation, position in the entities)``
        and those entities' :meth:`_entities` rows, each entity once."""
        if self._kg_ptr is None:  # the links grouped by item, once per attached graph
            self._kg_order = torch.argsort(self.kg_item, stable=True)
            counts = torch.bincount(self.kg_item, minlength=self.num_items)
            self._kg_ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        start, counts = self._kg_ptr[items], self._kg_ptr[items + 1] - self._kg_ptr[items]
        local = torch.repeat_interleave(torch.arange(items.numel(), device=items.device), counts)
        offsets = torch.arange(local.numel(), device=items.device) - (counts.cumsum(0) - counts)[local]
        at = self._kg_order[start[local] + offsets]
        entities, inverse = torch.unique(self.kg_entity[at], return_inverse=True)
        return (local, self.kg_relation[at], inverse), self._entities(entities)

    def _entities(self, index: Tensor | None = None) -> Tensor:
        """``[num_entities, d]`` entity representations (or those of the entities ``index``): id embedding
        (where the entity has one, :attr:`entity_has_id`) plus the text MLP where there is text."""
        z = self.entity_emb.weight if index is None else self.entity_emb(index)
        if self.config.shared_entity_ids:
            z = z * (self.entity_has_id if index is None else self.entity_has_id[index]).unsqueeze(-1)
        if self.entity_text is not None:
            z = z + self.text_mlp(self.entity_text if index is None else self.entity_text[index])
        return z

    def _attend(self, item_base: Tensor, kg_item: Tensor, kg_relation: Tensor, kg_entity: Tensor,
                num_items: int, entities: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """KGAT attention of items over their (relation, entity) links:
        ``([n, d] knowledge, [n] has links, [E] attention weights)``."""
        z_e = (self._entities() if entities is None else entities)[kg_entity]  # [E, d]
        r = self.relation_emb(kg_relation)  # [E, d]
        h = item_base[kg_item]  # [E, d]
        logits = (self.att_proj(z_e) * torch.tanh(self.att_proj(h) + r)).sum(-1)  # [E]
        weight = softmax(logits, kg_item, num_nodes=num_items)
        messages = weight.unsqueeze(-1) * (self.value_proj(z_e) + r)
        knowledge = scatter(messages, kg_item, dim=0, dim_size=num_items, reduce="sum")
        has_kg = torch.zeros(num_items, dtype=torch.bool, device=knowledge.device)
        has_kg[kg_item] = True
        return knowledge, has_kg, weight

    def new_item_embeddings(
        self, text: Tensor | None, kg_item: Tensor, kg_relation: Tensor, kg_entity: Tensor, num_new: int,
        anchors: tuple[Tensor, ...] | None = None,
    ) -> tuple[Tensor, Tensor]:
        r"""Final embeddings of ``num_new`` items that are not in the graph the model was trained on (cold
        start). ``text``: ``[num_new, t]`` vectors (rows of zeros: no text); ``kg_*``: their knowledge links
        (new-item index, relation index, entity index); ``anchors``: :meth:`cold_anchors` of the trained
        graph — each new item with text or links is then placed among the anchors as a cold item of the
        graph is (module docstring). Without anchors (or for an item with neither text nor links) it gets
        what propagation leaves an isolated item, its fused content over the layer count,
        :math:`\mathbf{c}_i / (L + 1)`. Returns ``([num_new, d] embeddings, [num_new, 3] fusion weights)``."""
        d = self.config.dim
        device = self.user_emb.weight.device
        zeros = torch.zeros(num_new, d, device=device)
        no = torch.zeros(num_new, dtype=torch.bool, device=device)
        text_part, text_mask = zeros, no
        if self.use_text and text is not None:
            text_part, text_mask = self.text_mlp(text.float()), text.abs().sum(1) > 0
        kg_part, kg_mask = zeros, no
        if self.use_kg and kg_item.numel():
            base = text_part * text_mask.unsqueeze(-1)
            kg_part, kg_mask, _ = self._attend(base, kg_item, kg_relation, kg_entity, num_new)
        nothing = ~(text_mask | kg_mask)  # an item with neither: its untrained mean id part would be noise
        parts = torch.stack([zeros, text_part, kg_part], 1)
        content, alpha = self.fuse(parts, torch.stack([nothing, text_mask, kg_mask], 1))
        items = content / (self.config.num_layers + 1)
        if anchors is not None and anchors[0].numel() and not nothing.all():
            placed = ~nothing
            neighbours, weights = _nearest(content[placed], anchors[0])
            if len(anchors) == 4 and text is not None:  # placement "text": by text where there is text
                by_text = text_mask[placed]
                _place_by_text(neighbours, weights, by_text, text.float()[placed][by_text], anchors[2], anchors[3])
            items[placed] = (weights.unsqueeze(-1) * anchors[1][neighbours]).sum(1)
        return items, alpha

    def content(self) -> tuple[Tensor, Tensor]:
        """``([num_items, d] content, [num_items] has content)``: each item's text and knowledge parts fused
        without its id part — what a cold item has to go on."""
        parts, mask = self.item_parts(torch.ones(self.num_items, dtype=torch.bool, device=self.item_has_id.device))
        return self.fuse(parts, mask)[0], mask[:, 1] | mask[:, 2]

    def cold_anchors(self) -> tuple[Tensor, ...]:
        """``([A, d] unit content vectors, [A, d] final embeddings)`` of the anchor items (trained id part
        and interactions in the attached graph): what :meth:`new_item_embeddings` places new items among;
        with placement ``"text"`` also ``[A', t]`` unit text vectors of the anchors with text and their
        ``[A']`` positions among the anchors."""
        _, items = self.embeddings()
        with torch.no_grad():
            content, _ = self.content()
        anchors = self.item_has_id & self.item_connected
        found = F.normalize(content[anchors], dim=1), items[anchors]
        if self.placement == "text" and self.use_text:
            has_text = self.item_has_text[anchors]
            return *found, F.normalize(self.item_text[anchors][has_text], dim=1), torch.nonzero(has_text).flatten()
        return found

    def knowledge_attention(self) -> Tensor:
        """``[E]`` the attention weight of each knowledge link (``kg_item``, ``kg_relation``, ``kg_entity``) at
        inference: for each item, its links' weights sum to 1."""
        if not (self.use_kg and self.kg_item.numel()):
            return torch.empty(0)
        with torch.no_grad():
            parts, mask = self.item_parts()
            id_mask, text_mask = mask[:, 0] & self.item_has_id, mask[:, 1]
            base = _mean_of(parts[:, 0], id_mask, parts[:, 1], text_mask)
            return self._attend(base, self.kg_item, self.kg_relation, self.kg_entity, self.num_items)[2]

    def translation_loss(self, items: Tensor, relations: Tensor, entities: Tensor, corrupted: Tensor,
                         weight_decay: float) -> Tensor:
        r"""TransE's loss of the knowledge triples ``(items, relations, entities)`` against ``corrupted`` tails
        (module docstring; each item as :math:`\mathbf{h}^0_i`, the mean of its id and text parts): the mean
        softplus of the distance differences plus ``weight_decay`` times the batch's L2 per triple."""
        id_part = self.item_emb(items)
        text_part, text_mask = ((self.text_mlp(self.item_text[items]), self.item_has_text[items]) if self.use_text
                                else (torch.zeros_like(id_part), torch.zeros_like(items, dtype=torch.bool)))
        h = _mean_of(id_part, self.item_has_id[items], text_part, text_mask)
        r = self.relation_emb(relations)
        z_pos, z_neg = self._entities(entities), self._entities(corrupted)
        pos = -(h + r - z_pos).pow(2).sum(-1)
        neg = -(h + r - z_neg).pow(2).sum(-1)
        l2 = h.pow(2).sum() + r.pow(2).sum() + z_pos.pow(2).sum() + z_neg.pow(2).sum()
        return F.softplus(neg - pos).mean() + weight_decay * l2 / items.numel()

    def fuse(self, parts: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attention over the available parts: ``([num_items, d] items, [num_items, 3] weights)``."""
        logits = torch.tanh(self.fusion_proj(parts)) @ self.fusion_query  # [n, 3]
        logits = logits.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(logits, dim=1)
        return (alpha.unsqueeze(-1) * parts).sum(1), alpha

    def fusion_weights(self) -> Tensor:
        """``[num_items, 3]`` fusion weights (id, text, kg) at inference; each row sums to 1."""
        with torch.no_grad():
            return self.fuse(*self.item_parts())[1]

    # -- propagation and scoring ---------------------------------------------------------------------
    def forward(self, hide_ids: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Final ``(users [U, d], items [I, d])`` after fusion and propagation."""
        if self.adjacency is None:
            raise KgrecError("KGRecNet has no graph: call attach(data, relation_index) first")
        in_graph = self.adjacency.shape[0] > self.num_users + self.num_items  # entities are nodes (kg_graph)
        entities = self._entities() if in_graph else None  # once per step: the attention reuses them
        items, _ = self.fuse(*self.item_parts(hide_ids, entities))
        x = torch.cat([self.user_emb.weight, items])
        if in_graph:
            x = torch.cat([x, entities])
        layers = [x]
        for _ in range(self.config.num_layers):
            x = propagate(self.adjacency, self.adjacency, x)  # symmetric: its own transpose
            layers.append(x)
        out = torch.stack(layers).mean(0)
        return out[: self.num_users], out[self.num_users : self.num_users + self.num_items]

    def forward_sampled(self, batch: HeteroData, hide_ids: Tensor | None = None) -> dict[str, Tensor]:
        """Final representations of the nodes of a neighbour-sampled subgraph (a batch of
        :func:`~kgrec.model.sampled.link_loader`), by node type. Layer 0 is exact (the items' parts use all
        their knowledge links); each layer sums over the sampled in-edges with the whole graph's
        :math:`D^{-1/2} A D^{-1/2}` weights, scaled by the node's degree over its sampled degree per edge
        type (an unbiased estimate of the whole sum; exact where every neighbour was sampled). Only the
        batch's seed nodes have all the hops they need. ``hide_ids``: ``[n]`` per item of the batch."""
        x = {"user": self.user_emb(batch["user"].n_id)}
        x["item"], _ = self.fuse(*self.item_parts(hide_ids, items=batch["item"].n_id))
        if "entity" in batch.node_types:
            x["entity"] = self._entities(batch["entity"].n_id)
        types = list(x)
        offsets = dict(zip(types, np.cumsum([0] + [x[t].shape[0] for t in types]).tolist()))
        rows, cols, values = [], [], []
        for src, rel, dst in batch.edge_types:
            store = batch[src, rel, dst]
            index = store.edge_index
            sampled = torch.bincount(index[1], minlength=x[dst].shape[0]).clamp(min=1)
            degree = batch[dst][f"degree_from_{src}"]
            rows.append(index[1] + offsets[dst])
            cols.append(index[0] + offsets[src])
            values.append(store.weight * degree[index[1]] / sampled[index[1]])
        n = offsets[types[-1]] + x[types[-1]].shape[0]
        rows, cols, values = torch.cat(rows), torch.cat(cols), torch.cat(values)
        # indices built here, within (n, n): torch's invariant check would only cost a pass per batch
        adjacency = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n, n),
                                            check_invariants=False).coalesce()
        transposed = torch.sparse_coo_tensor(torch.stack([cols, rows]), values, (n, n),
                                             check_invariants=False).coalesce()
        h = torch.cat([x[t] for t in types])
        layers = [h]
        for _ in range(self.config.num_layers):  # as forward(): sparse products
            h = propagate(adjacency, transposed, h)
            layers.append(h)
        out = torch.stack(layers).mean(0)
        return {t: out[offsets[t] : offsets[t] + x[t].shape[0]] for t in types}

    def _apply(self, fn, *args, **kwargs):  # .to() / .cuda(): the lazily grouped links follow on the next use
        self._kg_ptr = self._kg_order = None
        self._cache = None
        return super()._apply(fn, *args, **kwargs)

    def rating(self, users: Tensor, items: Tensor, u: Tensor, i: Tensor) -> Tensor:
        """Predicted ratings of the pairs ``(users, items)`` from final representations ``u``, ``i``."""
        if self.config.rating_weight <= 0:
            raise KgrecError("this KGRec has no rating head: train it with rating_weight > 0")
        dot = (u[users] * i[items]).sum(-1)
        return (self.rating_mean + self.user_bias.weight[users, 0] + self.item_bias.weight[items, 0]
                + self.rating_scale * dot)

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """Inference embeddings, with the cold items (no interaction, but text or knowledge links) placed
        among the anchors (module docstring); computed once per set of weights and graph (cleared by
        train() and attach()). Sets :attr:`cold_map` to ``(cold items [C], their anchor items [C, k],
        weights [C, k])``, or None when there is nothing to place."""
        if self._cache is None or self.training:
            with torch.no_grad():
                users, items = self.forward()
                self.cold_map = None
                content, has_content = self.content()
                cold = torch.nonzero(~self.item_connected & has_content).flatten()
                anchors = torch.nonzero(self.item_has_id & self.item_connected).flatten()
                if cold.numel() and anchors.numel():
                    neighbours, weights = self.place(cold, anchors, content)
                    self.cold_map = (cold, anchors[neighbours], weights)
                    items = items.clone()
                    items[cold] = (weights.unsqueeze(-1) * items[anchors[neighbours]]).sum(1)
                self._cache = (users, items)
        return self._cache

    def train(self, mode: bool = True) -> KGRecNet:
        self._cache = None
        return super().train(mode)

    def __repr__(self) -> str:
        parts = [p for p, on in zip(PARTS, (True, self.use_text, self.use_kg)) if on]
        return (
            f"{self.__class__.__name__}({self.num_users}, {self.num_items}, {self.num_entities}, "
            f"dim={self.config.dim}, num_layers={self.config.num_layers}, parts={parts})"
        )


class _Propagate(torch.autograd.Function):
    """``A @ x`` for a constant sparse ``A`` whose transpose is given: the backward pass is ``A^T @ grad``.
    torch.sparse.mm's own backward transposes and re-sorts ``A`` at every call, which cost 4x the whole
    product on a 100k-user graph (forward and backward of 3 layers: 2.7 s against 0.64 s on one core)."""

    @staticmethod
    def forward(ctx, adjacency: Tensor, transposed: Tensor, x: Tensor) -> Tensor:
        ctx.transposed = transposed
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, torch.sparse.mm(ctx.transposed, grad)


def propagate(adjacency: Tensor, transposed: Tensor, x: Tensor) -> Tensor:
    """``adjacency @ x`` (sparse times dense), differentiable in ``x`` through ``transposed``, the transpose of
    ``adjacency`` (the same tensor for a symmetric graph); no gradient reaches the adjacency."""
    return _Propagate.apply(adjacency, transposed, x)


def _nearest(queries: Tensor, unit_keys: Tensor, k: int = COLD_NEIGHBOURS, temperature: float = COLD_TEMPERATURE,
             chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """For each query, its ``k`` nearest rows of ``unit_keys`` (unit vectors) by cosine and their softmax
    weights at ``temperature``: ``([Q, k] indices, [Q, k] weights)``, in chunks of ``chunk`` queries."""
    k = min(k, unit_keys.shape[0])
    found = [(F.normalize(part, dim=1) @ unit_keys.T).topk(k, dim=1) for part in queries.split(chunk)]
    values = torch.cat([f.values for f in found])
    return torch.cat([f.indices for f in found]), torch.softmax(values / temperature, dim=1)


def _nearest_of(queries: Tensor, unit_keys: Tensor, positions: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """:func:`_nearest` among a subset of the anchors (``unit_keys``, at ``positions`` among them), as
    ``[Q, k]`` anchor positions and weights; fewer than ``k`` keys are padded with weight 0."""
    found, weights = _nearest(queries, unit_keys, k=min(k, positions.numel()))
    if found.shape[1] < k:
        pad = k - found.shape[1]
        found = torch.cat([found, found[:, :1].expand(-1, pad)], 1)
        weights = torch.cat([weights, weights.new_zeros(weights.shape[0], pad)], 1)
    return positions[found], weights


def _place_by_text(neighbours: Tensor, weights: Tensor, by_text: Tensor, queries: Tensor, unit_keys: Tensor,
                   positions: Tensor) -> None:
    """Placement ``"text"``: the rows ``by_text`` of a placement (``[Q, k]`` ``neighbours`` and ``weights``,
    changed in place) become their ``queries``' (text vectors) nearest anchors by text, among the anchors with
    text (``unit_keys``, at ``positions`` among the anchors)."""
    if by_text.any() and positions.numel():
        neighbours[by_text], weights[by_text] = _nearest_of(queries, unit_keys, positions, neighbours.shape[1])


def _normalized_adjacency(data: RecData, use_social: bool,
                          kg: tuple[Tensor, Tensor, int] | None = None) -> Tensor:
    """:math:`D^{-1/2} A D^{-1/2}` of the symmetric user–item (and user–user) training graph; with ``kg``
    ``(items [E], entities [E], num_entities)`` the entities are nodes after the items, linked to their items."""
    n_u, n = data.num_users, data.num_users + data.num_items
    rows = [data.train[0].numpy(), data.train[1].numpy() + n_u]
    cols = [data.train[1].numpy() + n_u, data.train[0].numpy()]
    if kg is not None and kg[0].numel():
        rows += [kg[0].numpy() + n_u, kg[1].numpy() + n]
        cols += [kg[1].numpy() + n, kg[0].numpy() + n_u]
        n += kg[2]
    if use_social and data.follows.numel():
        rows += [data.follows[0].numpy(), data.follows[1].numpy()]
        cols += [data.follows[1].numpy(), data.follows[0].numpy()]
    a = sp.coo_matrix((np.ones(sum(len(r) for r in rows), dtype=np.float32), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    a.data[:] = 1.0  # duplicates (a follow in both directions) count once
    degree = np.asarray(a.sum(1)).ravel()
    inv = np.zeros_like(degree)
    inv[degree > 0] = degree[degree > 0] ** -0.5
    a = sp.diags(inv) @ a @ sp.diags(inv)
    coo = a.tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    # from scipy's (n, n) matrix, so within bounds; saying so silences torch's warning about unchecked invariants
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data.astype(np.float32)), (n, n),
                                   check_invariants=False).coalesce()


class KGRec:
    r"""The trainable recommender around :class:`KGRecNet`: ``fit(data)``, ``score(users)``.

    With ``config.neighbourhood`` the score has a second, non-parametric collaborative channel fitted on
    the same interactions: by default (``config.neighbourhood_model = "ease"``)
    :class:`~kgrec.model.baselines.EASE`'s score :math:`c_{ui} = (\mathbf{x}_u B)_i`,

    .. math::
        s_{ui} = (1 - \beta)\, z_u(\mathbf{x}_u^\top \mathbf{x}_i) + \beta\, z_u(c_{ui}),

    where :math:`z_u` standardises a user's scores over the items and the channel's share
    :math:`\beta \in` ``BETAS`` is chosen on validation after training (:math:`\beta = 0`: the embeddings
    alone; :math:`\beta = 1`: the channel alone, where validation says the embeddings add nothing to it). Short co-occurrence paths
    are what the embeddings smooth away; on small, dense data they carry much of the signal. EASE's L2 weight
    (:attr:`channel_lambda`) is chosen on validation first and, with ``config.use_kg``, then the weight of
    its knowledge rows (:attr:`channel_knowledge`: the entities as pseudo-users of the reconstructed
    matrix, so items that share entities explain each other; ``0`` among the candidates) and, with
    ``config.use_time`` and training interactions with times, the weight of its time kernel
    (:attr:`channel_time`: co-occurrences weighted by how close in time they were, ``config.time_scale``;
    ``0`` among the candidates). With
    ``config.neighbourhood_model = "itemknn"`` the channel is cosine
    :class:`~kgrec.model.baselines.ItemKNN`'s :math:`c_{ui} = \sum_{j \in N(u)} s_{ji}` instead: sparse, for
    graphs too large for EASE's one dense inversion of the smaller of rows and items; it ranks below EASE's
    on all three datasets (``benchmarks/results/variants/``).

    The channel knows little of items without training interactions, the cold items :math:`C` (EASE scores
    them only through knowledge rows, ItemKNN not at all), so their channel score is their placement's,
    :math:`c_{ui} = \sum_j w_{ij} c_{uj}` over the anchors the embeddings place them among (:class:`KGRecNet`).

    The cold items :math:`C_u` (placed by content, :class:`KGRecNet`) are also ordered by the text channel
    :math:`t_{ui} = \cos(\mathbf{m}_u, \mathbf{v}_i)` of :class:`~kgrec.model.baselines.TextSimilarity`,
    without being lifted or lowered as a group: with :math:`z^C_u` standardising over the cold items,

    .. math::
        s_{ui} \leftarrow \mu^C_u(s) + \sigma^C_u(s)\; z^C_u\big(z^C_u(s) + \gamma\, z^C_u(t)\big),
        \qquad i \in C,

    so the cold scores keep their mean and spread (their place among the warm items) and only their
    order changes, from the embeddings' (:math:`\gamma = 0`) towards the text's (large :math:`\gamma`).
    An earlier form added :math:`\gamma\, z_u(t)` to every cold item; it lifted all of them at once,
    which the whole-catalogue ranking paid for (``benchmarks/gamma_warm.py`` measures both).
    :math:`\gamma \in` ``GAMMAS`` is chosen by nDCG@``val_k`` of the cold items ranked among themselves for
    their validation users: on the **real** cold items when validation holds at least
    ``MIN_COLD_VAL_PAIRS`` pairs on them (never trained on: no leak), else on *pseudo-cold* items — a seeded
    ``PSEUDO_COLD_SHARE`` of the items with content and validation interactions, placed as if cold (among
    the other anchors) without retraining; their training interactions still shaped the user embeddings,
    so this fallback favours the embeddings. The cold items' placement (:attr:`KGRecNet.placement`, by
    learned content or by text) is chosen the same way, jointly with :math:`\gamma`. :attr:`gamma_basis`
    says what they were chosen on.

    Placed among the anchors by averaging, cold items can score below the warm ones (an average of item
    vectors has a smaller norm), so that a whole-catalogue ranking hardly ever shows them, or above them (an
    average of the channel's scores of items the user's history points to: ml-latest-small's 1,206 items
    seen only in validation or test crowd its lists). With ``config.cold_lift`` they are shifted as a
    group, :math:`s_{ui} \leftarrow s_{ui} + \delta` for :math:`i \in C` (:math:`\delta` in units of the
    user's standardised score, up or down), when validation holds at least ``MIN_COLD_VAL_PAIRS`` pairs on
    cold items (else :math:`\delta = 0`): :math:`\delta \in` ``LIFTS`` is chosen by the validation
    nDCG@``val_k`` of the whole catalogue together with :math:`\beta` (each shifts the cold items against
    the warm ones, so one chosen alone would be chosen for the other's wrong value), and again after
    :math:`\gamma`; new items then reach the top of the list as often as validation says they should
    (``benchmarks/results/cold-lift/``). :attr:`lift_basis` says what it was chosen on. Embedding
    lookups (the vector index, on-the-fly scores) use the embedding term alone.

    Args:
        item_vectors (torch.Tensor, optional): ``[num_items, t]`` text vectors of the items (zeros: no text).
        entity_vectors (torch.Tensor, optional): ``[num_entities, t]`` text vectors of the entities.
        config (KGRecConfig): the architecture.
        train_config (TrainConfig): the schedule.
        name (str): how it is called in result tables. (default: ``"KGRec"``)
    """

    def __init__(
        self,
        item_vectors: Tensor | None = None,
        entity_vectors: Tensor | None = None,
        config: KGRecConfig = KGRecConfig(),
        train_config: TrainConfig = TrainConfig(lr=5e-3, batch_size=8192, eval_every=2, patience=5),
        name: str = "KGRec",
        progress: bool = False,
    ) -> None:
        self.item_vectors, self.entity_vectors = item_vectors, entity_vectors
        self.config, self.train_config, self.name, self.progress = config, train_config, name, progress
        self.net: KGRecNet | None = None
        self.history: list[EpochRecord] = []
        self.best_epoch: int | None = None
        self.relation_index: dict[str, int] = {}
        self.knn: ItemKNN | EASE | None = None  # the neighbourhood channel
        self.channel_lambda: float | None = None  # EASE's L2 weight, when the channel is EASE
        self.channel_knowledge: float | None = None  # the weight of EASE's knowledge rows (0: none)
        self.channel_time: float | None = None  # the weight of EASE's time kernel (0: none)
        self.beta: float = 0.0  # the channel's share of the score
        self.text: TextSimilarity | None = None  # the cold items' text channel
        self.gamma: float = 0.0
        self.gamma_basis: str = ""  # what gamma and the placement were chosen on (_choose_cold)
        self.lift: float = 0.0  # delta, the cold items' shift (class docstring)
        self.lift_basis: str = ""  # what the lift was chosen on (_choose_lift)

    def fit(self, data: RecData) -> KGRec:
        if self.config.neighbourhood and self.config.neighbourhood_model == "ease":  # before training, not after
            try:
                ease_knowledge(data, self._ease_grid()[1])
            except KgrecError as err:
                raise KgrecError(f"{err}: choose neighbourhood_model 'itemknn' (--neighbourhood-model itemknn) "
                                 "for a graph this size") from None
        self.relation_index = {name: k for k, name in enumerate(sorted(data.item_entity))}
        self.lift, self.lift_basis = 0.0, ""  # a refit chooses beta and gamma without the last fit's lift
        with seeded(self.train_config.seed):
            net = KGRecNet(
                data.num_users, data.num_items, data.num_entities, len(self.relation_index),
                self.item_vectors if self.config.use_text else None,
                self.entity_vectors if self.config.use_text else None,
                self.config,
            )
        net.attach(data, self.relation_index)
        if net.use_kg:  # an entity without an id part starts at zero and, masked, stays there: a later graph that
            with torch.no_grad():  # links it to a second item finds no untrained noise in its row
                net.entity_emb.weight[~net.entity_has_id] = 0.0
        self.net = net
        generator = torch.Generator().manual_seed(self.train_config.seed + 1)
        ratings = None
        if self.config.rating_weight > 0:  # moved to the training device once, not per batch
            ratings = tuple(t.to(self.train_config.torch_device) for t in self._rating_lookup(data))

        batches = None
        if self.config.num_neighbors:
            loader = link_loader(propagation_graph(net.adjacency, data.num_users, data.num_items), data,
                                 self.config.num_neighbors, self.config.num_layers, self.train_config.batch_size,
                                 self.config.negatives, self.train_config.seed)
            batch_loss = self._sampled_loss(generator)

            def batches() -> Iterator[tuple[int, tuple[HeteroData]]]:
                return epoch_batches(loader)
        else:
            batch_loss = self._full_loss(generator, data, ratings)

        # PyG draws the sampled negatives from torch's global generator
        with seeded(self.train_config.seed + 3) if batches is not None else nullcontext():
            self.history, self.best_epoch = fit_bpr(self, net, data, self.train_config, batch_loss,
                                                    progress=self.progress, negatives=self.config.negatives,
                                                    batches=batches)
        if self.config.neighbourhood:
            self.use_neighbourhood(data)
            self._choose_mix(data)
        if self.config.use_text and self.item_vectors is not None:
            self.text = TextSimilarity(self.item_vectors).fit(data)
            self.gamma = self._choose_cold(data)
        if self.config.cold_lift:
            self.lift = self._choose_lift(data)
        return self

    def use_neighbourhood(self, data: RecData, channel_lambda: float | None = None,
                          channel_knowledge: float | None = None, channel_time: float | None = None) -> None:
        """Fit the neighbourhood channel (``config.neighbourhood_model``) on ``data``. EASE chooses its L2
        weight, with ``config.use_kg`` the weight of its knowledge rows (``KNOWLEDGE_WEIGHTS``) and with
        ``config.use_time`` the weight of its time kernel (``TIME_WEIGHTS``; :class:`~kgrec.model.baselines.EASE`)
        on validation, or keeps ``channel_lambda``, ``channel_knowledge`` and ``channel_time`` (a loaded
        model's, from its checkpoint; no knowledge rows or time kernel where only the first is given);
        :attr:`channel_lambda`, :attr:`channel_knowledge` and :attr:`channel_time` record them. Without
        ``config.neighbourhood`` there is no channel."""
        self.knn = None
        if not self.config.neighbourhood:
            return
        self.knn = self.new_channel(channel_lambda, channel_knowledge, channel_time).fit(data)
        if isinstance(self.knn, EASE):
            self.channel_lambda, self.channel_knowledge = self.knn.lam, self.knn.knowledge_weight
            self.channel_time = self.knn.time_weight

    def new_channel(self, channel_lambda: float | None = None, channel_knowledge: float | None = None,
                    channel_time: float | None = None) -> EASE | ItemKNN:
        """The neighbourhood channel ``config.neighbourhood_model`` asks for, not yet fitted: EASE with the weights
        it chooses among (or a checkpoint's, :meth:`use_neighbourhood`), or ItemKNN."""
        if self.config.neighbourhood_model != "ease":
            return ItemKNN()
        lambdas, weights, times = self._ease_grid(channel_lambda, channel_knowledge, channel_time)
        return EASE(lambdas, val_k=self.train_config.val_k, knowledge_weights=weights, time_weights=times,
                    time_scale=self.config.time_scale)

    def _ease_grid(self, channel_lambda: float | None = None, channel_knowledge: float | None = None,
                   channel_time: float | None = None) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """The L2, knowledge and time weights the EASE channel tries: a checkpoint's (:meth:`use_neighbourhood`),
        or those it chooses among on validation."""
        if channel_lambda is not None:
            return (channel_lambda,), (channel_knowledge or 0.0,), (channel_time or 0.0,)
        return (EASE_LAMBDAS, KNOWLEDGE_WEIGHTS if self.config.use_kg else (0.0,),
                TIME_WEIGHTS if self.config.use_time else (0.0,))

    def _full_loss(self, generator: torch.Generator, data: RecData,
                   ratings: tuple[Tensor, Tensor] | None) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
        """The loss of one full-batch step: every node propagated, the batch's BPR triples (the hardest of the
        negative candidates), plus the rating MSE over the batch's rated pairs when ``ratings`` (sorted keys
        and values, :meth:`_rating_lookup`) are given."""
        net, dropout = self.net, self.config.id_dropout

        def batch_loss(users: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
            hide = (torch.rand(net.num_items, generator=generator) < dropout).to(users.device) if dropout else None
            u, i = net(hide)
            if neg.dim() == 2:  # dynamic negative sampling
                neg = hardest_negatives(u, i, users, neg)
            pos_s = (u[users] * i[pos]).sum(-1)
            neg_s = (u[users] * i[neg]).sum(-1)
            params = (net.user_emb.weight[users], net.item_emb.weight[pos], net.item_emb.weight[neg])
            loss = bpr_loss(pos_s, neg_s, params, self.train_config.weight_decay)
            if ratings is not None:
                keys, values = ratings
                key = users * data.num_items + pos
                at = torch.searchsorted(keys, key).clamp(max=keys.numel() - 1)
                rated = keys[at] == key
                if rated.any():
                    pred = net.rating(users[rated], pos[rated], u, i)
                    bias = (net.user_bias.weight[users[rated]], net.item_bias.weight[pos[rated]])
                    loss = loss + self.config.rating_weight * (
                        F.mse_loss(pred, values[at[rated]])
                        + self.train_config.weight_decay * sum(b.pow(2).sum() for b in bias) / pred.numel())
            return loss + self._kg_triple_loss(generator, users.device)

        return batch_loss

    def _kg_triple_loss(self, generator: torch.Generator, device: torch.device) -> Tensor | float:
        r""":math:`\lambda_{KG}` times the translation loss of ``config.kg_batch`` knowledge triples drawn uniformly,
        each against a uniform entity as its corrupted tail (module docstring); ``0`` without ``kg_loss`` or
        knowledge links."""
        net = self.net
        if not (self.config.kg_loss and net.use_kg and net.kg_item.numel()):
            return 0.0
        n = self.config.kg_batch
        t = torch.randint(net.kg_item.numel(), (n,), generator=generator).to(device)
        corrupted = torch.randint(net.num_entities, (n,), generator=generator).to(device)
        return self.config.kg_loss * net.translation_loss(net.kg_item[t], net.kg_relation[t], net.kg_entity[t], corrupted,
                                                          self.train_config.weight_decay)

    def _sampled_loss(self, generator: torch.Generator) -> Callable[[HeteroData], Tensor]:
        """The BPR loss of one neighbour-sampled batch (:mod:`kgrec.model.sampled`): the batch's training
        pairs against the hardest of their negative candidates, scored on the subgraph."""
        net, dropout = self.net, self.config.id_dropout

        def batch_loss(batch: HeteroData) -> Tensor:
            items = batch["item"].n_id
            hide = (torch.rand(items.numel(), generator=generator) < dropout).to(items.device) if dropout else None
            out = net.forward_sampled(batch, hide)
            users, pos = batch["user"].src_index, batch["item"].dst_pos_index
            neg = batch["item"].dst_neg_index
            if neg.dim() == 2:  # dynamic negative sampling among the candidates
                neg = hardest_negatives(out["user"], out["item"], users, neg)
            u = out["user"][users]
            pos_s, neg_s = (u * out["item"][pos]).sum(-1), (u * out["item"][neg]).sum(-1)
            params = (net.user_emb(batch["user"].n_id[users]), net.item_emb(items[pos]), net.item_emb(items[neg]))
            return bpr_loss(pos_s, neg_s, params, self.train_config.weight_decay) + self._kg_triple_loss(
                generator, pos_s.device)

        return batch_loss

    def _choose_cold(self, data: RecData) -> float:
        """The cold items' placement (``PLACEMENTS``, set on the net) and text-channel weight with the best
        validation nDCG of cold items (:meth:`_choose_gamma`; ties: content placement, smaller gamma)."""
        best: tuple[float, str, float, str] | None = None
        for placement in PLACEMENTS:
            self.net.set_placement(placement)
            gamma, score = self._choose_gamma(data)
            if best is None or score > best[0]:
                best = (score, placement, gamma, self.gamma_basis)
        _, placement, gamma, basis = best
        self.net.set_placement(placement)
        self.gamma_basis = f"{basis}, placed by {placement}"
        return gamma

    def _on_cold(self, data: RecData) -> Tensor:
        """``[V]`` bool: which validation pairs are on cold items (sets the net's cold map)."""
        self.net.embeddings()  # sets cold_map
        cold_map = self.net.cold_map
        if cold_map is None:
            return torch.zeros(data.val.shape[1], dtype=torch.bool)
        return torch.isin(data.val[1], cold_map[0].cpu())

    def _cold_pairs(self, data: RecData) -> int:
        """Validation pairs on cold items (sets the net's cold map)."""
        return int(self._on_cold(data).sum())

    def _choose_lift(self, data: RecData) -> float:
        r"""The cold items' shift :math:`\delta` of ``LIFTS`` with the best validation nDCG@``val_k`` of the
        whole catalogue (ties: the smallest shift); ``0.0`` when validation holds fewer than
        ``MIN_COLD_VAL_PAIRS`` pairs on cold items. Sets :attr:`lift_basis`."""
        self.lift = 0.0
        on_cold = self._cold_pairs(data)
        if on_cold < MIN_COLD_VAL_PAIRS:
            self.lift_basis = f"{on_cold} validation pairs on cold items: too few to choose on"
            return 0.0
        self.lift_basis = f"chosen on the whole catalogue's validation ({on_cold} pairs on cold items)"
        return self._best_on_validation(data, "lift", LIFTS)

    def _choose_gamma(self, data: RecData) -> tuple[float, float]:
        """``(gamma, its nDCG)``: the weight of the cold items' text channel with the best nDCG@``val_k`` of
        cold items ranked among themselves for their validation users: the real cold items, or pseudo-cold
        ones (class docstring); ``(0.0, -inf)`` when neither gives enough to choose on. Sets :attr:`gamma_basis`."""
        net = self.net
        with torch.no_grad():
            users_emb, items_emb = net.embeddings()
        on_cold = self._on_cold(data)
        if int(on_cold.sum()) >= MIN_COLD_VAL_PAIRS:
            self.gamma_basis = f"{int(on_cold.sum())} validation pairs on cold items"
            trial = _GammaTrial(self, users_emb, items_emb, net.cold_map)
            return self._best_gamma(trial, data, torch.unique(data.val[1][on_cold]))
        with torch.no_grad():
            content, has_content = net.content()
        anchors = net.item_has_id & net.item_connected
        val_items = torch.zeros(data.num_items, dtype=torch.bool)
        val_items[data.val[1]] = True
        pool = torch.nonzero(anchors.cpu() & has_content.cpu() & val_items).flatten()
        if pool.numel() < 10:
            self.gamma_basis = "too few validation items with content"
            return 0.0, float("-inf")
        g = torch.Generator().manual_seed(self.train_config.seed + 2)
        hidden = pool[torch.randperm(pool.numel(), generator=g)[: max(10, int(PSEUDO_COLD_SHARE * pool.numel()))]]
        others = anchors.clone()
        others[hidden] = False
        others = torch.nonzero(others).flatten()
        neighbours, weights = net.place(hidden.to(content.device), others.to(content.device), content)
        placed = items_emb.clone()
        placed[hidden] = (weights.unsqueeze(-1) * items_emb[others[neighbours]]).sum(1)
        trial = _GammaTrial(self, users_emb, placed, (hidden.to(placed.device), others[neighbours], weights))
        self.gamma_basis = f"{hidden.numel()} pseudo-cold items"
        return self._best_gamma(trial, data, hidden)

    def _best_gamma(self, trial: _GammaTrial, data: RecData, items: Tensor) -> tuple[float, float]:
        """``(gamma, nDCG)``: the gamma of ``GAMMAS`` with the best validation nDCG@``val_k`` of ``items``
        ranked among themselves (ties: the smallest)."""
        k = self.train_config.val_k
        as_test = RecData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "test": data.val,
                             "val": data.val[:, :0], "test_rating": None, "val_rating": None})
        scores = {}
        for gamma in GAMMAS:
            trial.gamma = gamma
            scores[gamma] = evaluate_cold_start(trial, as_test, items, ks=(k,), exclude=("train",))[f"ndcg@{k}"]
        best = max(GAMMAS, key=lambda x: (scores[x], -x))
        return best, scores[best]

    def _rating_lookup(self, data: RecData) -> tuple[Tensor, Tensor]:
        """Sorted ``user * num_items + item`` keys of the rated training pairs and their ratings (the last
        rating of a repeated pair); sets the rating head's global mean."""
        pairs, values = data.ratings("train")
        if values.numel() == 0:
            raise KgrecError("rating_weight > 0 needs explicit ratings, and the training split has none "
                             "(load a dataset with a rating column, or set rating_weight to 0)")
        keys = pairs[0] * data.num_items + pairs[1]
        keys, order = torch.sort(keys, stable=True)
        values = values[order].float()
        last = torch.ones_like(keys, dtype=torch.bool)
        last[:-1] = keys[1:] != keys[:-1]
        self.net.rating_mean.fill_(float(values.mean()))
        return keys[last], values[last]

    def predict(self, users: Tensor, items: Tensor) -> Tensor:
        """Predicted ratings of the pairs ``(users[k], items[k])`` (needs ``rating_weight > 0``)."""
        if self.net is None:
            raise KgrecError("KGRec is not fitted: call fit(data) first")
        u, i = self.net.embeddings()
        with torch.no_grad():
            return self.net.rating(users.long().to(u.device), items.long().to(u.device), u, i)

    def _choose_mix(self, data: RecData) -> None:
        """Set the neighbourhood channel's share :attr:`beta` and, with ``config.cold_lift`` and enough validation
        pairs on cold items, the cold items' shift :attr:`lift` to the pair with the best validation nDCG@``val_k``
        of the whole catalogue (ties: the smaller shift, then the smaller share); without validation
        interactions, an even share."""
        self.lift = 0.0
        if not data.val.numel():
            self.beta = 0.5
            return
        lifts = LIFTS if self.config.cold_lift and self._cold_pairs(data) >= MIN_COLD_VAL_PAIRS else (0.0,)
        trial = _MixTrial(self)
        scores = {}
        for beta in BETAS:
            for lift in lifts:
                trial.beta, trial.lift = beta, lift
                scores[beta, lift] = self._validation_ndcg(data, trial)
        self.beta, self.lift = max(scores, key=lambda key: (scores[key], -abs(key[1]), -key[0]))

    def _validation_ndcg(self, data: RecData, scorer: object | None = None) -> float:
        """The validation nDCG@``val_k`` of the whole catalogue of the served score, or of ``scorer``'s (a trial)."""
        k = self.train_config.val_k
        return evaluate(scorer or self, data, "val", ks=(k,))[f"ndcg@{k}"]

    def _best_on_validation(self, data: RecData, attribute: str, values: tuple[float, ...]) -> float:
        """The one of ``values`` that, set as ``attribute`` of the served score, gives the best validation
        nDCG@``val_k`` of the whole catalogue (ties: the smallest in size); the attribute is left at it."""
        scores = {}
        for value in values:
            setattr(self, attribute, value)
            scores[value] = self._validation_ndcg(data)
        best = max(values, key=lambda x: (scores[x], -abs(x)))
        setattr(self, attribute, best)
        return best

    def serve_on(self, data: RecData) -> None:
        """Point the trained model at ``data`` (for serving: every interaction as history): the propagation
        graph and the neighbourhood channel follow it; items keep an id part only where training gave one."""
        if self.net is None:
            raise KgrecError("KGRec is not fitted: call fit(data) first")
        trained = self.net.item_has_id.clone()
        self.net.attach(data, self.relation_index)
        self.net.item_has_id = self.net.item_has_id & trained
        if self.knn is not None:
            self.use_neighbourhood(data, self.channel_lambda, self.channel_knowledge, self.channel_time)
        if self.text is not None:
            self.text.fit(data)

    def score(self, users: Tensor) -> Tensor:
        if self.net is None:
            raise KgrecError("KGRec is not fitted: call fit(data) first")
        u, i = self.net.embeddings()
        return self._combine(users, u, i, self.net.cold_map, self.gamma)

    def _combine(self, users: Tensor, u: Tensor, i: Tensor, cold_map: tuple[Tensor, Tensor, Tensor] | None,
                 gamma: float) -> Tensor:
        """The served score (class docstring) from final embeddings ``u``, ``i`` and the cold items' map."""
        scores = u[users.long().to(u.device)] @ i.T
        use_knn = self.knn is not None and bool(self.beta)
        use_text = self.text is not None and cold_map is not None  # standardised whatever gamma: same order
        lift = self.lift if cold_map is not None else 0.0
        if not use_knn and not use_text and not lift:
            return scores
        scores = _standardise(scores)
        if use_knn:
            scores = (1.0 - self.beta) * scores + self.beta * self._channel(users, cold_map, scores.device)
        if use_text and gamma and cold_map[0].numel() > 1:
            cold = cold_map[0].to(scores.device)
            text = self.text.score(users.cpu()).to(scores.device)[:, cold]
            scores[:, cold] = reorder_by(scores[:, cold], text, gamma)
        if lift:
            scores[:, cold_map[0].to(scores.device)] += lift
        return scores

    def _channel(self, users: Tensor, cold_map: tuple[Tensor, Tensor, Tensor] | None, device: torch.device) -> Tensor:
        """The neighbourhood channel's standardised scores of ``users``, cold items placed as their embeddings are
        (class docstring)."""
        knn = self.knn.score(users.cpu()).float().to(device)
        if cold_map is not None:
            cold, neighbours, weights = cold_map
            placed = torch.zeros(knn.shape[0], cold.numel(), device=knn.device)
            for j in range(neighbours.shape[1]):
                placed += knn[:, neighbours[:, j]] * weights[:, j]
            knn[:, cold] = placed
        return _standardise(knn)

    def use_text_channel(self, item_vectors: Tensor | None, data: RecData, gamma: float) -> None:
        """Set the cold items' text channel of a loaded model (``gamma`` from its checkpoint)."""
        self.gamma = gamma
        self.text = TextSimilarity(item_vectors).fit(data) if gamma and item_vectors is not None else None

    def checkpoint(self) -> dict[str, object]:
        """What a checkpoint holds of the trained model: the network's weights, both configurations, the
        relation index, the best epoch and what was chosen on validation (β, γ, δ, the channel's λ, knowledge and
        time weights, how cold items are placed). :meth:`restore_choices` reads the choices back."""
        if self.net is None:
            raise KgrecError("the model is not trained")
        return {
            "state_dict": self.net.state_dict(), "config": self.config.as_dict(),
            "train_config": self.train_config.as_dict(), "relation_index": self.relation_index,
            "best_epoch": self.best_epoch, "channel_share": self.beta, "gamma": self.gamma, "lift": self.lift,
            "channel_lambda": self.channel_lambda, "channel_knowledge": self.channel_knowledge,
            "channel_time": self.channel_time,
            "placement": self.net.placement,
        }

    def restore_choices(self, checkpoint: dict[str, object], data: RecData, item_vectors: Tensor | None) -> None:
        """Set what :meth:`checkpoint` saved of the validation choices on a loaded model whose :attr:`net` is
        attached to ``data``: β, δ, the best epoch, the neighbourhood channel (refitted on ``data`` with the
        saved λ, knowledge and time weights) and the cold items' text channel (``item_vectors``, with the saved γ)."""
        self.best_epoch = checkpoint.get("best_epoch")
        self.beta, self.lift = channel_share(checkpoint), checkpoint.get("lift", 0.0)
        self.use_neighbourhood(data, checkpoint.get("channel_lambda"), checkpoint.get("channel_knowledge"),
                               checkpoint.get("channel_time"))
        self.use_text_channel(item_vectors, data, checkpoint.get("gamma", 0.0))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.net or self.config})"


class _MixTrial:
    r"""KGRec's score for trying channel shares :math:`\beta` and cold shifts :math:`\delta` together (γ = 0): the
    standardised embedding and channel parts are computed once per batch of users and mixed for each pair."""

    def __init__(self, model: KGRec) -> None:
        self.model = model
        self.users, self.items = model.net.embeddings()
        self.cold_map = model.net.cold_map
        self.beta = self.lift = 0.0
        self._parts: dict[bytes, tuple[Tensor, Tensor]] = {}

    def score(self, users: Tensor) -> Tensor:
        key = users.cpu().numpy().tobytes()
        if key not in self._parts:
            embedded = _standardise(self.users[users.long().to(self.users.device)] @ self.items.T)
            self._parts[key] = (embedded, self.model._channel(users, self.cold_map, embedded.device))
        embedded, channel = self._parts[key]
        scores = (1.0 - self.beta) * embedded + self.beta * channel  # a new tensor: evaluation masks it in place
        if self.lift and self.cold_map is not None:
            scores[:, self.cold_map[0].to(scores.device)] += self.lift
        return scores


class _GammaTrial:
    """KGRec's score for trying gammas: final embeddings ``users``, ``items`` and a cold map (the model's own,
    or warm items placed as if cold). The parts that do not depend on gamma are computed once per batch of
    users and reused for every gamma tried."""

    def __init__(self, model: KGRec, users: Tensor, items: Tensor, cold_map: tuple[Tensor, Tensor, Tensor]) -> None:
        self.model, self.users, self.items, self.cold_map = model, users, items, cold_map
        self.gamma = 0.0
        self._parts: dict[bytes, tuple[Tensor, Tensor, Tensor]] = {}

    def score(self, users: Tensor) -> Tensor:
        key = users.cpu().numpy().tobytes()
        if key not in self._parts:
            base = self.model._combine(users, self.users, self.items, self.cold_map, 0.0)
            cold = self.cold_map[0].to(base.device)
            text = self.model.text.score(users.cpu()).to(base.device)[:, cold]
            self._parts[key] = (base, cold, text)
        base, cold, text = self._parts[key]
        scores = base.clone()  # evaluation masks the scores it gets in place
        if self.gamma and cold.numel() > 1:
            scores[:, cold] = reorder_by(base[:, cold], text, self.gamma)
        return scores


def channel_share(checkpoint: dict[str, object]) -> float:
    r"""The channel's share :math:`\beta` a checkpoint saved; one saved before the share saved the channel's weight
    :math:`w` beside the embeddings (:math:`z_u(e) + w\, z_u(c)`), which ranks as the share :math:`w / (1 + w)`."""
    if "channel_share" in checkpoint:
        return float(checkpoint["channel_share"])
    weight = float(checkpoint.get("beta", 0.0))
    return weight / (1.0 + weight)


def hardest_negatives(users_emb: Tensor, items_emb: Tensor, users: Tensor, candidates: Tensor) -> Tensor:
    """``[B]``: for each ``users[b]``, the one of its ``candidates[b]`` (``[B, M]`` item indices) that the
    embeddings score highest — dynamic negative sampling (module docstring); no gradient flows through
    the choice."""
    with torch.no_grad():
        pick = (users_emb[users].unsqueeze(1) * items_emb[candidates]).sum(-1).argmax(1, keepdim=True)
    return candidates.gather(1, pick).squeeze(1)


def reorder_by(scores: Tensor, text: Tensor, gamma: float) -> Tensor:
    """``[B, C]`` scores of C cold items reordered towards ``text`` (``[B, C]``) with weight ``gamma``, each
    row keeping its mean and standard deviation (the class docstring of :class:`KGRec`)."""
    mean, spread = scores.mean(1, keepdim=True), scores.std(1, keepdim=True)
    return mean + spread * _standardise(_standardise(scores) + gamma * _standardise(text))


def _mean_of(id_part: Tensor, id_mask: Tensor, text_part: Tensor, text_mask: Tensor) -> Tensor:
    r"""Each item's :math:`\mathbf{h}^0`: the mean of the id and text parts it has (``[n, d]`` parts, ``[n]`` masks;
    zeros for an item with neither)."""
    count = (id_mask.float() + text_mask.float()).clamp(min=1).unsqueeze(-1)
    return (id_part * id_mask.unsqueeze(-1) + text_part * text_mask.unsqueeze(-1)) / count


def _standardise(scores: Tensor) -> Tensor:
    """Each user's scores to mean 0 and standard deviation 1 over the items."""
    return (scores - scores.mean(1, keepdim=True)) / (scores.std(1, keepdim=True) + 1e-9)
