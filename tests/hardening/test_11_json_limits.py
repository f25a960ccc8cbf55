"""Issue 8 item 11 (JSON part): hostile JSON values are 400s in the caller's format, not 500s.

JSON nested ~1,000 deep was a RecursionError (500); an integer of more than 4,300
digits a ValueError (500); ``NaN`` / ``Infinity`` / ``-Infinity`` were accepted and
forwarded upstream as invalid JSON. Every endpoint, converted (mock) and
same-format (a fake provider that must see nothing).
"""

from __future__ import annotations

import httpx
import pytest

from tests.proxy.fakes import Step, openai_reply, start_gateway, write_transformer

#: (path, body: %s is the model, X the hostile value)
ENDPOINTS = [
    ("/v1/chat/completions", b'{"model": "%s", "messages": [{"role": "user", "content": X}]}'),
    (
        "/v1/messages",
        b'{"model": "%s", "max_tokens": 5, "messages": [{"role": "user", "content": X}]}',
    ),
    ("/v1/messages/count_tokens", b'{"model": "%s", "messages": [{"role": "user", "content": X}]}'),
    ("/v1beta/models/%s:generateContent", b'{"contents": [{"parts": [{"text": "a", "n": X}]}]}'),
]

HOSTILE = {
    "nested_1000": b"[" * 1000 + b"1" + b"]" * 1000,
    "nested_100000": b"[" * 100_000 + b"]" * 100_000,
    "objects_5000": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "int_5000_digits": b"9" * 5000,
    "nan": b"NaN",
    "infinity": b"Infinity",
    "minus_infinity": b"-Infinity",
}


def _error_message(path: str, reply: httpx.Response) -> str:
    body = reply.json()
    if path.startswith("/v1beta/"):
        assert body["error"]["code"] == 400
        assert body["error"]["status"] == "INVALID_ARGUMENT"
        return body["error"]["message"]
    if path.startswith("/v1/messages"):
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        return body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"
    return body["error"]["message"]


@pytest.mark.parametrize("value", list(HOSTILE), ids=list(HOSTILE))
@pytest.mark.parametrize("model", ["mock-1", "p/up"], ids=["converted", "same-format"])
async def test_hostile_json_values_are_400_in_the_callers_format(
    nursery, tmp_path, provider, model, value
):
    write_transformer(tmp_path, "mock", {"format": "mock", "models": {"*": "*"}})
    for fmt in ("openai", "anthropic", "gemini"):
        base = provider.url + ("/v1beta" if fmt == "gemini" else "/v1")
        write_transformer(
            tmp_path, f"p-{fmt}", {"format": fmt, "base_url": base, "models": {"up": "up"}}
        )
    gw = await start_gateway(nursery, tmp_path)
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        for path, template in ENDPOINTS:
            fmt = "gemini" if "v1beta" in path else "anthropic" if "messages" in path else "openai"
            name = model if model == "mock-1" else f"p-{fmt}/up"
            body = template.replace(b"%s", name.encode()).replace(b"X", HOSTILE[value])
            url = path.replace("%s", name)
            reply = await client.post(
                url, content=body, headers={"content-type": "application/json"}
            )
            assert reply.status_code == 400, (path, reply.status_code, reply.text[:300])
            message = _error_message(path, reply)
            if value.startswith(("nested", "objects")):
                assert "64 levels" in message
            elif value.startswith("int"):
                assert "digits" in message
            else:
                assert "not a JSON number" in message
        # the server still serves
        assert (await client.get("/health/live")).status_code == 200
    assert provider.seen == []  # nothing invalid went upstream


async def test_values_at_the_limits_still_pass(nursery, tmp_path, provider):
    write_transformer(
        tmp_path,
        "p",
        {"format": "openai", "base_url": provider.url + "/v1", "models": {"up": "up"}},
    )
    provider.then(Step("json", body=openai_reply("ok")))
    gw = await start_gateway(nursery, tmp_path)
    content = b"[" * 60 + b"1" + b"]" * 60  # with messages[0] and the top object: 63 levels
    body = (
        b'{"model": "p/up", "messages": [{"role": "user", "content": "x", "extra": %s}],'
        b' "n": %s, "f": 1e308}' % (content, b"9" * 4300)
    )
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        reply = await client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
    assert reply.status_code == 200, reply.text
    assert provider.seen[0].body["n"] == int("9" * 4300)
