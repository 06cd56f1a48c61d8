"""The API's 422s without a database: request bodies are refused before any handler (or Neo4j) runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from kgrec.api.app import create_app
from kgrec.api.deps import get_optional_run
from kgrec.api.schemas import NewItem
from tests.conftest import free_port, make_settings

KEY = "test-api-key-0123456789"
HEADERS = {"X-API-Key": KEY, "Content-Type": "application/json"}
EVENT = '{"event_id": "e9", "user_id": "u1", "item_id": "i2"'
ITEM = '{"id": "n4", "title": "y", "attributes": '


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The app on a Neo4j that is not there (the driver connects on first use); no active run."""
    settings = make_settings(neo4j_uri=f"bolt://127.0.0.1:{free_port()}", neo4j_password_="whatever-123",
                             api_key_=KEY, data_dir=tmp_path)
    app = create_app(settings, neo4j_retry_seconds=0)
    app.dependency_overrides[get_optional_run] = lambda: None  # POST /items reads the run before the body
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    "path, body, loc, echoed",
    [
        ("/interactions", EVENT + ', "rating": 1e999}', ["body", "rating"], "inf"),
        ("/interactions", EVENT + ', "rating": -1e999}', ["body", "rating"], "-inf"),
        ("/interactions", EVENT + ', "weight": NaN}', ["body", "weight"], "nan"),
        ("/interactions", EVENT + ', "weight": Infinity}', ["body", "weight"], "inf"),
        ("/items", ITEM + '{"score": 1e999}}', ["body", "attributes", "score"], "inf"),
        ("/items", ITEM + '{"scores": [1.5, NaN]}}', ["body", "attributes", "scores"], "nan"),
    ],
)
def test_non_finite_numbers_are_422_not_500(client: TestClient, path: str, body: str, loc: list, echoed: str) -> None:
    """1e999 and NaN are valid JSON to Python (inf, nan) but not JSON in the answer: echoed as their repr."""
    response = client.post(path, content=body, headers=HEADERS)
    assert response.status_code == 422, response.text
    detail = json.loads(response.text, parse_constant=strict_json)["detail"]
    errors = [error for error in detail if error["loc"][: len(loc)] == loc]  # a union errs once per branch
    assert echoed in [error["input"] for error in errors], detail


def strict_json(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def test_ordinary_validation_errors_keep_fastapis_shape(client: TestClient) -> None:
    response = client.post("/interactions", content=EVENT + ', "weight": "heavy"}', headers=HEADERS)
    assert response.status_code == 422
    assert response.json() == {"detail": [{
        "type": "float_parsing", "loc": ["body", "weight"], "input": "heavy",
        "msg": "Input should be a valid number, unable to parse string as a number",
    }]}


@pytest.mark.parametrize("value", [99999999999999999999999, 2**63, -(2**63) - 1, [1, 2**64]])
def test_item_integers_beyond_64_bits_are_422_naming_the_attribute(client: TestClient, value: object) -> None:
    """Neo4j stores 64-bit integers; bigger ones made the driver fail (500), or would be taken as floats."""
    body = {"id": "n4", "title": "y", "attributes": {"ok": 1, "big": value}}
    response = client.post("/items", content=json.dumps(body), headers=HEADERS)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "attributes", "big"] and "64 bits" in error["msg"]


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), [0, 2**63 - 1], 1e300, [1.5, 2.5], "text", True])
def test_item_attributes_within_range_keep_their_type(value: object) -> None:
    item = NewItem.model_validate_json(json.dumps({"id": "n4", "title": "y", "attributes": {"a": value}}))
    assert item.attributes["a"] == value and type(item.attributes["a"]) is type(value)


@pytest.mark.parametrize("value", [["1", 2], [True, 1], [1, "x"], ["a", False], [1.5, True], [[1], [2]], {"a": 1}])
def test_item_attribute_lists_of_mixed_types_are_422_not_coerced(client: TestClient, value: object) -> None:
    """A lax union took ["1", 2] as [1, 2] and [true, 1] as [1, 1]: values changed without a word."""
    body = {"id": "n4", "title": "y", "attributes": {"mixed": value}}
    response = client.post("/items", content=json.dumps(body), headers=HEADERS)
    assert response.status_code == 422, response.text
    assert all(error["loc"][:3] == ["body", "attributes", "mixed"] for error in response.json()["detail"])


@pytest.mark.parametrize(("value", "stored"), [("1", "1"), (1, 1), (True, True), ([1, 2.5], [1.0, 2.5]), ([], [])])
def test_item_attribute_values_keep_their_json_type(value: object, stored: object) -> None:
    item = NewItem.model_validate_json(json.dumps({"id": "n4", "title": "y", "attributes": {"a": value}}))
    assert item.attributes["a"] == stored and type(item.attributes["a"]) is type(stored)
    if isinstance(stored, list) and stored:
        assert [type(v) for v in item.attributes["a"]] == [type(v) for v in stored]


def test_big_integer_is_not_taken_as_a_float() -> None:
    with pytest.raises(ValidationError, match="integers must fit in 64 bits"):
        NewItem.model_validate({"id": "n4", "title": "y", "attributes": {"big": 2**70}})
