"""A coding agent's tool loop through the running gateway, with the conversion memo at work.

The Anthropic SDK drives a conversation that grows by a tool call and its result on every
turn (as Claude Code does) against an OpenAI-format provider. Every body the provider gets
must be exactly the memo-less conversion of what the client sent that turn, while the
gateway's memo reuses the history it converted on the turns before."""

from __future__ import annotations

import anthropic
import trio

from gateway.formats import convert_request
from tests.proxy.fakes import Step, start_gateway, write_transformer

TOOLS = [
    {
        "name": "Read",
        "description": "Read a file.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}},
            "required": ["path"],
        },
    },
    {
        "name": "Bash",
        "description": "Run a command.",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
    },
]
SYSTEM = [
    {"type": "text", "text": "You are a coding agent."},
    {"type": "text", "text": "Be careful. " * 50, "cache_control": {"type": "ephemeral"}},
]
TURNS = 6


def _tool_call_answer(k: int) -> dict:
    name, args = (
        ("Read", f'{{"path":"src/m{k}.py","limit":{k}}}')
        if k % 2
        else ("Bash", '{"command":"pytest"}')
    )
    return {
        "id": f"chatcmpl-{k}",
        "object": "chat.completion",
        "created": 1,
        "model": "up-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": f"Step {k}.",
                    "tool_calls": [
                        {"id": f"call_{k}", "type": "function", "function": {"name": name, "arguments": args}}
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 100 + k, "completion_tokens": 5, "total_tokens": 105 + k},
    }  # fmt: skip


def _agent_loop(url: str) -> list[dict]:
    """The bodies the client sent, one per turn."""
    sent: list[dict] = []
    messages: list[dict] = [{"role": "user", "content": "Fix the failing test, please."}]
    with anthropic.Anthropic(base_url=url, api_key="c", max_retries=0) as client:
        for k in range(TURNS):
            body = {
                "model": "m",
                "max_tokens": 1000,
                "system": SYSTEM,
                "tools": TOOLS,
                "messages": [dict(m) for m in messages],
            }
            reply = client.messages.create(**body)
            sent.append(body)
            text = next(b.text for b in reply.content if b.type == "text")
            use = next(b for b in reply.content if b.type == "tool_use")
            assert use.id == f"call_{k}"
            messages.append(
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": text},
                        {"type": "tool_use", "id": use.id, "name": use.name, "input": use.input},
                    ],
                }
            )
            messages.append(
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": use.id,
                            "content": f"output of turn {k}\n" * 20,
                            **({"is_error": True} if k == 2 else {}),
                        }
                    ],
                }
            )
    return sent


async def test_a_growing_conversation_converts_as_without_memory(nursery, provider, tdir):
    write_transformer(
        tdir,
        "up",
        {
            "format": "openai",
            "base_url": provider.url + "/v1",
            "models": {"m": "up-model"},
            "retry": {"retries": 0, "backoff_s": 0},
        },
    )
    provider.then(*(Step("json", body=_tool_call_answer(k)) for k in range(TURNS)))
    gw = await start_gateway(nursery, tdir)
    sent = await trio.to_thread.run_sync(lambda: _agent_loop(gw.url))

    assert len(provider.seen) == TURNS
    for body, seen in zip(sent, provider.seen, strict=True):
        want, _ = convert_request(body, "anthropic", "openai", upstream_model="up-model")
        assert seen.body == want
    # the history really was reused: the later turns parsed only their new messages
    # (turns of 1, 3 and 5 messages are under min_messages and skip the memo; the turn of 7
    # is parsed whole and kept, the turns of 9 and 11 reuse 7 and 9 and parse 2 each)
    memo = gw.app.proxy.memo
    assert [len(b["messages"]) for b in sent] == [1, 3, 5, 7, 9, 11]
    assert (memo.reused, memo.parsed) == (7 + 9, 7 + 2 + 2)
    # and the last request's history reached the provider whole, tool results paired
    last = provider.seen[-1].body["messages"]
    assert [m["role"] for m in last[:4]] == ["system", "user", "assistant", "tool"]
    assert last[3] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": "output of turn 0\n" * 20,
    }
    assert sum(m["role"] == "tool" for m in last) == TURNS - 1
