"""The issue-4 matrix through the running gateway: every client SDK x every provider format.

Each case gives the provider's answer in its own format and checks what the client's SDK
parsed, and what the provider received, in theirs."""

from __future__ import annotations

import base64
import json

import anthropic
import httpx
import openai
import pytest
import trio
from google import genai
from google.genai import types as gtypes

from tests.proxy.fakes import Step, start_gateway, write_transformer

FORMATS = ("openai", "anthropic", "gemini")
PAIRS = [(c, p) for c in FORMATS for p in FORMATS]
PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image bytes").decode()


def _transformer(tdir, provider, fmt):
    write_transformer(
        tdir,
        "up",
        {
            "format": fmt,
            "base_url": provider.url + ("/v1beta" if fmt == "gemini" else "/v1"),
            "models": {"m": "up-model"},
            "retry": {"retries": 0, "backoff_s": 0},
        },
    )


# -- provider answers, in each provider format --------------------------------------------


def _tool_answer(fmt):
    if fmt == "openai":
        return {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "up-model",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "lookup", "arguments": '{"q": "trio"}'},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
    if fmt == "anthropic":
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "up-model",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "trio"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 3},
        }
    return {
        "candidates": [
            {
                "index": 0,
                "finishReason": "STOP",
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "lookup", "args": {"q": "trio"}}}],
                },
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
    }


def _length_answer(fmt):
    if fmt == "openai":
        return {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "up-model",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "length",
                    "message": {"role": "assistant", "content": "cut sh"},
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    if fmt == "anthropic":
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "up-model",
            "content": [{"type": "text", "text": "cut sh"}],
            "stop_reason": "max_tokens",
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 2},
        }
    return {
        "candidates": [
            {
                "index": 0,
                "finishReason": "MAX_TOKENS",
                "content": {"role": "model", "parts": [{"text": "cut sh"}]},
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
    }


def _text_answer(fmt, text="done"):
    return json.loads(
        json.dumps(_length_answer(fmt))
        .replace("cut sh", text)
        .replace('"length"', '"stop"')
        .replace('"max_tokens"', '"end_turn"')
        .replace('"MAX_TOKENS"', '"STOP"')
    )


# -- client calls, through each SDK -------------------------------------------------------

TOOL_SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def _call_with_tool(client_fmt, url):
    """Ask with one tool defined; return (tool name, arguments dict, stop reason)."""
    if client_fmt == "openai":
        with openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0) as c:
            r = c.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "look it up"}],
                tools=[
                    {"type": "function", "function": {"name": "lookup", "parameters": TOOL_SCHEMA}}
                ],
            )
            call = r.choices[0].message.tool_calls[0]
            return (
                call.function.name,
                json.loads(call.function.arguments),
                r.choices[0].finish_reason,
            )
    if client_fmt == "anthropic":
        with anthropic.Anthropic(base_url=url, api_key="c", max_retries=0) as c:
            r = c.messages.create(
                model="m",
                max_tokens=50,
                messages=[{"role": "user", "content": "look it up"}],
                tools=[{"name": "lookup", "input_schema": TOOL_SCHEMA}],
            )
            use = next(b for b in r.content if b.type == "tool_use")
            return use.name, use.input, r.stop_reason
    c = genai.Client(
        api_key="c", http_options=gtypes.HttpOptions(base_url=url, api_version="v1beta")
    )
    try:
        r = c.models.generate_content(
            model="m",
            contents="look it up",
            config=gtypes.GenerateContentConfig(
                tools=[
                    gtypes.Tool(
                        function_declarations=[
                            gtypes.FunctionDeclaration(
                                name="lookup", parameters_json_schema=TOOL_SCHEMA
                            )
                        ]
                    )
                ],
                automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
            ),
        )
        fc = r.function_calls[0]
        return fc.name, dict(fc.args), r.candidates[0].finish_reason.value
    finally:
        c.close()


EXPECTED_TOOL_STOP = {"openai": "tool_calls", "anthropic": "tool_use", "gemini": "STOP"}
EXPECTED_LENGTH_STOP = {"openai": "length", "anthropic": "max_tokens", "gemini": "MAX_TOKENS"}


def _call_plain(client_fmt, url, **extra):
    """(text, stop reason) for a plain question."""
    if client_fmt == "openai":
        with openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0) as c:
            r = c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "go"}], max_tokens=2
            )
            return r.choices[0].message.content, r.choices[0].finish_reason
    if client_fmt == "anthropic":
        with anthropic.Anthropic(base_url=url, api_key="c", max_retries=0) as c:
            r = c.messages.create(
                model="m", max_tokens=2, messages=[{"role": "user", "content": "go"}]
            )
            return r.content[0].text, r.stop_reason
    c = genai.Client(
        api_key="c", http_options=gtypes.HttpOptions(base_url=url, api_version="v1beta")
    )
    try:
        r = c.models.generate_content(
            model="m", contents="go", config=gtypes.GenerateContentConfig(max_output_tokens=2)
        )
        return r.text, r.candidates[0].finish_reason.value
    finally:
        c.close()


def _history_body(client_fmt):
    """A raw request body: user (text + image), assistant tool call, tool result, user."""
    if client_fmt == "openai":
        return "/v1/chat/completions", {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is in it?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{PIXEL}"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": "png"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_9", "content": "RESULT-42"},
                {"role": "user", "content": "and now?"},
            ],
            "tools": [
                {"type": "function", "function": {"name": "lookup", "parameters": TOOL_SCHEMA}}
            ],
        }
    if client_fmt == "anthropic":
        return "/v1/messages", {
            "model": "m",
            "max_tokens": 50,
            "tools": [{"name": "lookup", "input_schema": TOOL_SCHEMA}],
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is in it?"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_use",
                            "id": "toolu_9",
                            "name": "lookup",
                            "input": {"q": "png"},
                        }
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_9", "content": "RESULT-42"},
                        {"type": "text", "text": "and now?"},
                    ],
                },
            ],
        }
    return "/v1beta/models/m:generateContent", {
        "tools": [{"functionDeclarations": [{"name": "lookup", "parameters": TOOL_SCHEMA}]}],
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "what is in it?"},
                    {"inlineData": {"mimeType": "image/png", "data": PIXEL}},
                ],
            },
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "lookup", "args": {"q": "png"}}}],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "lookup", "response": {"result": "RESULT-42"}}},
                    {"text": "and now?"},
                ],
            },
        ],
    }


# -- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize(("client_fmt", "provider_fmt"), PAIRS)
async def test_one_tool_call(nursery, provider, tdir, client_fmt, provider_fmt):
    _transformer(tdir, provider, provider_fmt)
    provider.then(Step("json", body=_tool_answer(provider_fmt)))
    gw = await start_gateway(nursery, tdir)
    name, args, stop = await trio.to_thread.run_sync(lambda: _call_with_tool(client_fmt, gw.url))
    assert (name, args) == ("lookup", {"q": "trio"})
    assert stop == EXPECTED_TOOL_STOP[client_fmt]
    sent = json.dumps(provider.seen[-1].body)
    assert '"lookup"' in sent
    assert '"q"' in sent


@pytest.mark.parametrize(("client_fmt", "provider_fmt"), PAIRS)
async def test_max_tokens_stop(nursery, provider, tdir, client_fmt, provider_fmt):
    _transformer(tdir, provider, provider_fmt)
    provider.then(Step("json", body=_length_answer(provider_fmt)))
    gw = await start_gateway(nursery, tdir)
    text, stop = await trio.to_thread.run_sync(lambda: _call_plain(client_fmt, gw.url))
    assert text == "cut sh"
    assert stop == EXPECTED_LENGTH_STOP[client_fmt]
    body = provider.seen[-1].body
    limit = {
        "openai": lambda b: b.get("max_completion_tokens", b.get("max_tokens")),
        "anthropic": lambda b: b["max_tokens"],
        "gemini": lambda b: b["generationConfig"]["maxOutputTokens"],
    }[provider_fmt](body)
    assert limit == 2


@pytest.mark.parametrize(("client_fmt", "provider_fmt"), PAIRS)
async def test_image_and_tool_result_turns_reach_the_provider(
    nursery, provider, tdir, client_fmt, provider_fmt
):
    _transformer(tdir, provider, provider_fmt)
    provider.then(Step("json", body=_text_answer(provider_fmt)))
    gw = await start_gateway(nursery, tdir)
    path, body = _history_body(client_fmt)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.post(path, json=body)
    assert reply.status_code == 200, reply.text
    sent = provider.seen[-1].body
    text = json.dumps(sent)
    assert PIXEL in text  # the image travelled as data, not fetched or dropped
    assert "RESULT-42" in text  # the tool result travelled
    if provider_fmt == "openai":
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["user", "assistant", "tool", "user"]
        call_id = sent["messages"][1]["tool_calls"][0]["id"]
        assert sent["messages"][2]["tool_call_id"] == call_id  # ids pair up
    elif provider_fmt == "anthropic":
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        use = sent["messages"][1]["content"][0]
        result = sent["messages"][2]["content"][0]
        assert use["type"] == "tool_use"
        assert result["type"] == "tool_result"
        assert result["tool_use_id"] == use["id"]
    else:
        # wire-formats §4.3: the functionCall turn is followed at once by a user turn of
        # functionResponses; converted follow-up text may come as a separate user turn.
        roles = [c["role"] for c in sent["contents"]]
        assert roles[:3] == ["user", "model", "user"]
        assert set(roles[3:]) <= {"user"}
        assert "functionCall" in sent["contents"][1]["parts"][0]
        assert sent["contents"][2]["parts"][0]["functionResponse"]["name"] == "lookup"
        assert "and now?" in json.dumps(sent["contents"][2:])


def _sse(data, event=None, crlf=False):
    line = (f"event: {event}\n" if event else "") + "data: " + json.dumps(data)
    return (line + ("\r\n\r\n" if crlf else "\n\n")).encode()


def _parallel_tool_stream(fmt):
    """Two tool calls, arguments in fragments, in the provider's own stream format."""
    if fmt == "openai":

        def chunk(delta, finish=None):
            return _sse(
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "up-model",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
            )

        return [
            chunk(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": '},
                        }
                    ],
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"q": "two"}'},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"one"}'}}]}),
            chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    if fmt == "anthropic":
        msg = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "up-model",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 0},
        }
        out = [_sse({"type": "message_start", "message": msg}, "message_start")]
        for i, (tid, q) in enumerate([("toolu_a", "one"), ("toolu_b", "two")]):
            out += [
                _sse(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {
                            "type": "tool_use",
                            "id": tid,
                            "name": "lookup",
                            "input": {},
                        },
                    },
                    "content_block_start",
                ),
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": '{"q": '},
                    },
                    "content_block_delta",
                ),
                _sse(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": f'"{q}"}}'},
                    },
                    "content_block_delta",
                ),
                _sse({"type": "content_block_stop", "index": i}, "content_block_stop"),
            ]
        out += [
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                    "usage": {"output_tokens": 9},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return out
    return [
        _sse(
            {
                "candidates": [
                    {
                        "index": 0,
                        "finishReason": "STOP",
                        "content": {
                            "role": "model",
                            "parts": [
                                {"functionCall": {"name": "lookup", "args": {"q": "one"}}},
                                {"functionCall": {"name": "lookup", "args": {"q": "two"}}},
                            ],
                        },
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 5,
                    "candidatesTokenCount": 9,
                    "totalTokenCount": 14,
                },
            },
            crlf=True,
        ),
    ]


def _stream_tool_calls(client_fmt, url):
    """[(name, args)] assembled by the client's SDK from a streamed answer."""
    tools_oai = [{"type": "function", "function": {"name": "lookup", "parameters": TOOL_SCHEMA}}]
    if client_fmt == "openai":
        with openai.OpenAI(base_url=url + "/v1", api_key="c", max_retries=0) as c:
            calls: dict[int, list[str]] = {}
            for chunk in c.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "both"}],
                tools=tools_oai,
                stream=True,
            ):
                for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                    entry = calls.setdefault(tc.index, ["", ""])
                    entry[0] += tc.function.name or ""
                    entry[1] += tc.function.arguments or ""
            return [(n, json.loads(a)) for n, a in (calls[i] for i in sorted(calls))]
    if client_fmt == "anthropic":
        with (
            anthropic.Anthropic(base_url=url, api_key="c", max_retries=0) as c,
            c.messages.stream(
                model="m",
                max_tokens=50,
                messages=[{"role": "user", "content": "both"}],
                tools=[{"name": "lookup", "input_schema": TOOL_SCHEMA}],
            ) as s,
        ):
            final = s.get_final_message()
        return [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    c = genai.Client(
        api_key="c", http_options=gtypes.HttpOptions(base_url=url, api_version="v1beta")
    )
    try:
        out = []
        for chunk in c.models.generate_content_stream(
            model="m",
            contents="both",
            config=gtypes.GenerateContentConfig(
                tools=[
                    gtypes.Tool(
                        function_declarations=[
                            gtypes.FunctionDeclaration(
                                name="lookup", parameters_json_schema=TOOL_SCHEMA
                            )
                        ]
                    )
                ],
                automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
            ),
        ):
            out += [(fc.name, dict(fc.args)) for fc in chunk.function_calls or []]
        return out
    finally:
        c.close()


@pytest.mark.parametrize(("client_fmt", "provider_fmt"), PAIRS)
async def test_two_parallel_tool_calls_in_one_stream(
    nursery, provider, tdir, client_fmt, provider_fmt
):
    _transformer(tdir, provider, provider_fmt)
    provider.then(Step("sse", events=_parallel_tool_stream(provider_fmt)))
    gw = await start_gateway(nursery, tdir)
    calls = await trio.to_thread.run_sync(lambda: _stream_tool_calls(client_fmt, gw.url))
    assert calls == [("lookup", {"q": "one"}), ("lookup", {"q": "two"})]


STREAM_REQUEST = {
    "openai": (
        "/v1/chat/completions",
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    ),
    "anthropic": (
        "/v1/messages",
        {
            "model": "m",
            "max_tokens": 9,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
    ),
    "gemini": (
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        {"contents": [{"parts": [{"text": "x"}]}]},
    ),
}


@pytest.mark.parametrize(("client_fmt", "provider_fmt"), PAIRS)
async def test_upstream_error_before_the_stream_keeps_its_status(
    nursery, provider, tdir, client_fmt, provider_fmt
):
    _transformer(tdir, provider, provider_fmt)
    provider.then(
        Step(
            "status",
            status=429,
            body={"error": {"message": "slow down", "type": "rate_limit_error"}},
            headers=[(b"retry-after", b"7")],
        )
    )
    gw = await start_gateway(nursery, tdir)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.post(STREAM_REQUEST[client_fmt][0], json=STREAM_REQUEST[client_fmt][1])
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "7"
    assert "slow down" in reply.text
    shape = reply.json()
    if client_fmt == "anthropic":
        assert shape["error"]["type"] == "rate_limit_error"
    elif client_fmt == "gemini":
        assert shape["error"]["status"] == "RESOURCE_EXHAUSTED"
    else:
        assert shape["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(("client_fmt", "provider_fmt"), PAIRS)
async def test_upstream_failure_during_the_stream_is_an_in_stream_error(
    nursery, provider, tdir, client_fmt, provider_fmt
):
    _transformer(tdir, provider, provider_fmt)
    first = {
        "openai": _parallel_tool_stream("openai")[0],
        "anthropic": _parallel_tool_stream("anthropic")[0],
        "gemini": _sse(
            {
                "candidates": [
                    {"index": 0, "content": {"role": "model", "parts": [{"text": "par"}]}}
                ]
            },
            crlf=True,
        ),
    }
    provider.then(Step("abort", events=[first[provider_fmt]]))
    gw = await start_gateway(nursery, tdir)
    async with httpx.AsyncClient(base_url=gw.url) as client:
        reply = await client.post(STREAM_REQUEST[client_fmt][0], json=STREAM_REQUEST[client_fmt][1])
    assert reply.status_code == 200
    lines = reply.text.splitlines()
    data = [
        json.loads(line[5:])
        for line in lines
        if line.startswith("data:") and line[5:].strip() != "[DONE]"
    ]
    error = data[-1]
    assert "broke" in json.dumps(error)
    if client_fmt == "anthropic":
        assert error["type"] == "error"
        assert "event: error" in reply.text
    else:
        assert "error" in error
    assert "[DONE]" not in reply.text
