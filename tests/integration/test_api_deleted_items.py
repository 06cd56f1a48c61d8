"""An item deleted while the API runs (``DETACH DELETE``) is recommended by no source: not on the fly (the
item matrix was cached before), not among popular items (cached too), not from a stored list, not as a
similar item. The graph and its hand-worked scores are those of ``test_api``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from kgrec.api.app import create_app
from kgrec.config import Settings
from kgrec.db import Graph
from tests.integration.test_api import AUTH, KEY, build_graph


@pytest.fixture
def served(graph: Graph) -> Graph:
    build_graph(graph)
    return graph


@pytest.fixture
def client(settings: Settings, served: Graph) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"api_key_": SecretStr(KEY)}))) as client:
        yield client


def recs(client: TestClient, user: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/users/{user}/recommendations", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def delete(graph: Graph, item: str) -> None:
    graph.write("MATCH (i:Item {id: $item}) DETACH DELETE i", item=item)


def listed(body: dict[str, Any]) -> list[tuple[str, str | None, int]]:
    return [(i["item_id"], i["title"], i["rank"]) for i in body["items"]]


def test_on_the_fly_lists_drop_a_deleted_item_and_still_fill_k(client: TestClient, served: Graph) -> None:
    # u4 (history i2, i3; no stored vector): i5 .25, i6 .125, i1 0, i4 0
    assert listed(recs(client, "u4", k=3)) == [("i5", "T5", 1), ("i6", "T6", 2), ("i1", "T1", 3)]
    delete(served, "i5")  # the item matrix of R1, cached by the request above, still holds i5
    body = recs(client, "u4", k=3)
    assert body["source"] == "on_the_fly"
    assert listed(body) == [("i6", "T6", 1), ("i1", "T1", 2), ("i4", "T4", 3)]
    assert client.get("/users/u4/recommendations/i5/explanation").status_code == 404  # agrees: unknown item


def test_a_user_recorded_through_the_api_is_not_served_a_deleted_item(client: TestClient, served: Graph) -> None:
    """The tester's case: an interaction after the run moves the user on the fly; then the top item goes."""
    event = {"event_id": "ev-del", "user_id": "u1", "item_id": "i3", "kind": "listen"}
    assert client.post("/interactions", json=event, headers=AUTH).status_code == 201
    top = recs(client, "u1", k=3)  # [1, .5, 1.25, 0]: i5 1.25, i6 .8125, i2 .5
    assert (top["source"], listed(top)[0]) == ("on_the_fly", ("i5", "T5", 1))
    delete(served, "i5")
    assert listed(recs(client, "u1", k=3)) == [("i6", "T6", 1), ("i2", "T2", 2), ("i4", "T4", 3)]


def test_popular_items_drop_a_deleted_item(client: TestClient, served: Graph) -> None:
    assert [i["item_id"] for i in recs(client, "u3", k=3)["items"]] == ["i1", "i3", "i2"]  # now cached for 5 minutes
    delete(served, "i1")
    body = recs(client, "u3", k=3)
    assert body["source"] == "popular" and listed(body) == [("i3", "T3", 1), ("i2", "T2", 2), ("i4", "T4", 3)]


def test_stored_lists_and_similar_items_lose_a_deleted_item_with_it(client: TestClient, served: Graph) -> None:
    assert [i["item_id"] for i in recs(client, "u1")["items"]] == ["i2", "i6", "i5", "i3"]
    assert [i["item_id"] for i in client.get("/items/i5/similar", params={"k": 3}).json()["items"]] == ["i1", "i6", "i2"]
    delete(served, "i6")
    body = recs(client, "u1")
    assert body["source"] == "precomputed" and listed(body) == [("i2", "T2", 1), ("i5", "T5", 2), ("i3", "T3", 3)]
    similar = client.get("/items/i5/similar", params={"k": 3}).json()
    assert similar["source"] == "model" and [i["item_id"] for i in similar["items"]] == ["i1", "i2", "i3"]
