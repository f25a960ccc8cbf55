"""Issue 8 item 11 (the conversion part): a lone surrogate survives conversion.

Node's ``JSON.stringify`` writes a lone surrogate (``"\\ud800"``) when it cuts a string
inside an emoji; Claude Code and the JS SDKs do this. Such a string decodes to a Python str
that UTF-8 cannot encode, and converting it used to fail with ``UnicodeEncodeError`` (a
500). For every client format x every provider format (same-format pairs included) and the
mock provider, whole and streamed, through the running gateway: a request with lone
surrogates in its messages, system prompt and tool definitions is answered 200, the
provider receives the same escapes, and a provider answer with a lone surrogate reaches
the client as the same escape.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from tests.proxy.fakes import (
    Step,
    anthropic_events,
    anthropic_reply,
    gemini_events,
    gemini_reply,
    openai_chunks,
    openai_reply,
    start_gateway,
    write_transformer,
)

FORMATS = ["openai", "anthropic", "gemini"]
HIGH = "cut \ud83d here"  # the first half of an emoji
LOW = "and \udc00 there"  # a second half alone
ANSWER = "answer \udfff end"
REPLIES = {
    "openai": (lambda: openai_reply(ANSWER), lambda: openai_chunks(["answer ", "\udfff end"])),
    "anthropic": (
        lambda: anthropic_reply(ANSWER),
        lambda: anthropic_events(["answer ", "\udfff end"]),
    ),
    "gemini": (lambda: gemini_reply(ANSWER), lambda: gemini_events(["answer ", "\udfff end"])),
}


def _request(fmt: str, model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    """``(path, body)`` asking with lone surrogates in every kind of string."""
    if fmt == "gemini":
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/{model}:{action}", {
            "systemInstruction": {"parts": [{"text": LOW}]},
            "contents": [
                {"role": "user", "parts": [{"text": HIGH}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"q": LOW}}}]},
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"name": "f", "response": {"r": HIGH}}}],
                },
            ],
            "tools": [{"functionDeclarations": [{"name": "f", "description": LOW}]}],
        }
    if fmt == "openai":
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "f", "arguments": json.dumps({"q": LOW})},
        }
        return "/v1/chat/completions", {
            "model": model,
            "stream": stream,
            "messages": [
                {"role": "system", "content": LOW},
                {"role": "user", "content": HIGH},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": HIGH},
            ],
            "tools": [{"type": "function", "function": {"name": "f", "description": LOW}}],
        }
    return "/v1/messages", {
        "model": model,
        "max_tokens": 64,
        "stream": stream,
        "system": LOW,
        "messages": [
            {"role": "user", "content": HIGH},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"q": LOW}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": HIGH}],
            },
        ],
        "tools": [{"name": "f", "description": LOW, "input_schema": {"type": "object"}}],
    }


async def _post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head + body)
        chunks = []
        while chunk := await stream.receive_some(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("target", [*FORMATS, "mock"])
@pytest.mark.parametrize("client", FORMATS)
async def test_lone_surrogates_survive_conversion(
    nursery, provider, tmp_path, client, target, stream
):
    tdir = tmp_path / "transformers"
    tdir.mkdir()
    if target == "mock":
        spec: dict[str, Any] = {"format": "mock", "models": {"the-model": "mock-1"}}
    else:
        spec = {
            "format": target,
            "base_url": provider.url + ("/v1beta" if target == "gemini" else "/v1"),
            "keys": ["${UP_KEY}"],
            "models": {"the-model": "up-model"},
        }
        whole, streamed = REPLIES[target]
        provider.then(Step("sse", events=streamed()) if stream else Step("json", body=whole()))
    write_transformer(tdir, "up", spec)
    gw = await start_gateway(nursery, tdir, {"UP_KEY": "pk-123"})
    path, body = _request(client, "the-model", stream)
    raw = json.dumps(body).encode()
    assert b"\\ud83d" in raw  # the escape, as Node writes it
    with trio.fail_after(30):
        status, answer = await _post(gw.port, path, raw)
    assert status == 200, answer[:500]
    if target != "mock":
        sent = _strings(provider.seen[-1].body)
        assert any("\ud83d" in s for s in sent), sent  # the same escape went upstream
        assert any("\udc00" in s for s in sent), sent
        assert b"\\udfff" in answer, answer[:1000]  # and the provider's came back
    if stream:
        assert b'"error"' not in answer, answer[-500:]
        assert (
            b"[DONE]" if client == "openai" else b"STOP" if client == "gemini" else b"message_stop"
        ) in answer
    else:
        json.loads(answer)  # valid JSON (a lone surrogate escape is valid JSON)
