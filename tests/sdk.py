"""The official SDKs reading our output over an in-memory transport (no network).

Each helper serves ``data`` (SSE bytes or a JSON body) from an httpx
MockTransport and lets the real client parse it the way it would in
production, so a passing test means that client accepts the stream.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
from google import genai
from google.genai import types as gtypes


def _client(data: bytes, content_type: str) -> httpx2.Client:
    # The SDKs are built on httpx2 (the installed versions refuse an httpx client).
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=data, headers={"content-type": content_type})

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def anthropic_stream(data: bytes) -> anthropic.types.Message:
    """The final Message the Anthropic SDK's stream helper builds from ``data``."""
    client = anthropic.Anthropic(
        api_key="k",
        base_url="http://gateway.test",
        http_client=_client(data, "text/event-stream"),
        max_retries=0,
    )
    with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for _ in stream:
            pass
        return stream.get_final_message()


def openai_stream(data: bytes) -> list[Any]:
    """Every chunk the OpenAI SDK yields for ``data``."""
    client = openai.OpenAI(
        api_key="k",
        base_url="http://gateway.test/v1",
        http_client=_client(data, "text/event-stream"),
        max_retries=0,
    )
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return list(stream)


def openai_final(data: bytes) -> Any:
    """The completion the OpenAI SDK's stream helper accumulates from ``data``."""
    client = openai.OpenAI(
        api_key="k",
        base_url="http://gateway.test/v1",
        http_client=_client(data, "text/event-stream"),
        max_retries=0,
    )
    with client.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for _ in stream:
            pass
        return stream.get_final_completion()


def gemini_stream(data: bytes) -> list[gtypes.GenerateContentResponse]:
    """Every chunk google-genai yields for ``data``."""
    client = genai.Client(
        api_key="k",
        http_options=gtypes.HttpOptions(
            base_url="http://gateway.test", httpx_client=_client(data, "text/event-stream")
        ),
    )
    return list(client.models.generate_content_stream(model="m", contents="hi"))


def gemini_chat_history(data: bytes) -> list[gtypes.Content]:
    """The curated history google-genai's chat keeps after streaming ``data``."""
    client = genai.Client(
        api_key="k",
        http_options=gtypes.HttpOptions(
            base_url="http://gateway.test", httpx_client=_client(data, "text/event-stream")
        ),
    )
    chat = client.chats.create(model="m")
    for _ in chat.send_message_stream("hi"):
        pass
    return chat.get_history(curated=True)
