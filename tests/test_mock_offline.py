"""What a newcomer gets: ``python -m gateway --transformers transformers`` with no keys set
serves the built-in mock provider to every SDK, and names the missing keys elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from tests.process import run_gateway

SHIPPED = Path(__file__).parent.parent / "transformers"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    with run_gateway(tmp_path_factory.mktemp("gw"), transformers=SHIPPED) as gw:
        yield gw


def test_openai_sdk_against_mock(gateway):
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="any", max_retries=0) as client:
        reply = client.chat.completions.create(
            model="mock-1", messages=[{"role": "user", "content": "hello gateway"}]
        )
        assert reply.choices[0].message.content == "Echo: hello gateway"
        stream = client.chat.completions.create(
            model="mock-1",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Echo: one two three"
        assert chunks[-1].usage is not None
        tool_reply = client.chat.completions.create(
            model="mock-1",
            messages=[{"role": "user", "content": "please call get_weather"}],
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                }
            ],
        )
        call = tool_reply.choices[0].message.tool_calls[0]
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "example"}
        assert tool_reply.choices[0].finish_reason == "tool_calls"


def test_anthropic_sdk_against_mock(gateway):
    with anthropic.Anthropic(base_url=gateway.url, api_key="any", max_retries=0) as client:
        msg = client.messages.create(
            model="mock-1", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}]
        )
        assert msg.content[0].text == "Echo: a"
        assert msg.stop_reason == "max_tokens"
        with client.messages.stream(
            model="mock-1",
            max_tokens=100,
            messages=[{"role": "user", "content": "streaming works"}],
        ) as stream:
            final = stream.get_final_message()
        assert final.content[0].text == "Echo: streaming works"
        count = client.messages.count_tokens(
            model="mock-1", messages=[{"role": "user", "content": "count me please"}]
        )
        assert count.input_tokens > 0


def test_genai_sdk_against_mock(gateway):
    client = genai.Client(
        api_key="any", http_options=gtypes.HttpOptions(base_url=gateway.url, api_version="v1beta")
    )
    try:
        assert client.models.generate_content(model="mock-1", contents="hi").text == "Echo: hi"
        parts = [
            c.text for c in client.models.generate_content_stream(model="mock-1", contents="x y")
        ]
        assert "".join(p for p in parts if p) == "Echo: x y"
    finally:
        client.close()


def test_models_are_listed_and_keyless_providers_name_their_variables(gateway):
    models = httpx.get(gateway.url + "/v1/models").json()["data"]
    owners = {m["owned_by"] for m in models}
    assert {"mock", "openai", "anthropic", "gemini"} <= owners
    for path, body, variable in [
        ("/v1/chat/completions", {"model": "gpt-4o", "messages": []}, "OPENAI_API_KEY"),
        ("/v1/messages", {"model": "anthropic/claude-x", "messages": []}, "ANTHROPIC_API_KEY"),
        (
            "/v1beta/models/gemini/gemini-2.5-pro:generateContent",
            {"contents": []},
            "GEMINI_API_KEY",
        ),
    ]:
        reply = httpx.post(gateway.url + path, json=body)
        assert reply.status_code == 401, path
        assert variable in reply.text
    ready = httpx.get(gateway.url + "/health/ready").json()
    assert ready["status"] == "ready"
    assert "mock" in ready["transformers"]["loaded"]
    assert httpx.get(gateway.url + "/health/startup").status_code == 200
