"""gateway.formats.openai.frontend and models: the OpenAI client endpoints."""

from __future__ import annotations

import json

import pytest

from gateway.call import Call
from gateway.errors import BadRequest, ModelNotFound
from gateway.formats import FORMATS
from gateway.formats.openai.frontend import read_chat
from gateway.formats.openai.models import answer_model, answer_models
from gateway.routing import RegistryCatalog
from gateway.transformers.model import ModelEntry
from gateway.transformers.registry import make_registry
from tests.formats.helpers import FakeRequest, transformer


def _request(body: object) -> FakeRequest:
    return FakeRequest(body=json.dumps(body).encode())


def test_chat_reads_a_call() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    raw = json.dumps(body).encode()
    assert read_chat(FakeRequest(body=raw)) == Call(
        "openai", "chat", "gpt-4o", True, body, len(raw)
    )
    assert not read_chat(_request({"model": "m", "messages": []})).stream


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"messages": []}, "needs 'model'"),
        ({"model": "", "messages": []}, "'model' must be a model name string"),
        ({"model": 5, "messages": []}, "'model' must be a model name string"),
        ({"model": "m"}, "needs 'messages'"),
        ({"model": "m", "messages": {}}, "'messages' must be a list of messages"),
        ({"model": "m\n", "messages": []}, "control character"),
        ({"model": "m" * 300, "messages": []}, "300 characters long"),
    ],
)
def test_chat_refuses_what_it_needs_and_cannot_find(body: object, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        read_chat(_request(body))


def test_endpoints() -> None:
    endpoints = {(e.method, e.path): e for e in FORMATS["openai"].endpoints}
    assert endpoints["POST", "/v1/chat/completions"].read is read_chat
    assert endpoints["GET", "/v1/models"].answer is answer_models
    assert endpoints["GET", "/v1/models/{model:path}"].answer is answer_model


def test_model_answers() -> None:
    registry = make_registry(
        [transformer("openai", models={"alias": ModelEntry("up")})], loaded_at=7
    )
    assert answer_models(FakeRequest(), RegistryCatalog(registry)) == {
        "object": "list",
        "data": [{"id": "alias", "object": "model", "created": 7, "owned_by": "prov"}],
    }
    found = answer_model(FakeRequest(params={"model": "alias"}), RegistryCatalog(registry))
    assert found["id"] == "alias"
    with pytest.raises(ModelNotFound):
        answer_model(FakeRequest(params={"model": "other"}), RegistryCatalog(registry))
