"""Golden SSE transcripts: every upstream format x every client format, byte for byte.

Each ``golden/streams/<upstream>/<case>.sse`` is a provider's stream (written by
hand after the providers' documented examples); ``<case>.to_<client>.sse`` is
exactly what the gateway must send a client of that format. A new case is a
new input file: run ``GOLDEN_UPDATE=1 pytest tests/formats/test_golden.py`` to
write its expected outputs, read them, and commit them.

Besides the exact bytes, the official SDK of the client format reads every
expected output over an in-memory transport: a stream it cannot parse fails
here, not in a user's terminal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anthropic
import openai
import pytest
from google.genai import errors as gerrors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.formats import FORMAT_NAMES, FORMATS
from gateway.sse import SSEDecoder
from tests import sdk

GOLDEN = Path(__file__).parent / "golden" / "streams"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
CREATED = 1700000000

INPUTS = sorted(
    (fmt, path.name[: -len(".sse")])
    for fmt in FORMAT_NAMES
    for path in (GOLDEN / fmt).glob("*.sse")
    if ".to_" not in path.name
)
PAIRS = [(up, case, client) for up, case in INPUTS for client in FORMAT_NAMES]


def renderer(client: str):  # type: ignore[no-untyped-def]
    if client == "openai":
        return FORMATS[client].stream_renderer("client-model", include_usage=True, created=CREATED)
    return FORMATS[client].stream_renderer("client-model", include_usage=True)


def convert(upstream: str, pieces: list[bytes], client: str) -> bytes:
    decoder = SSEDecoder()
    parser = FORMATS[upstream].stream_parser()
    render = renderer(client)
    out: list[bytes] = []
    for piece in pieces:
        for event in decoder.feed(piece):
            out.extend(render.render(c) for c in parser.feed(event))
    for event in decoder.close():
        out.extend(render.render(c) for c in parser.feed(event))
    out.extend(render.render(c) for c in parser.finish())
    out.append(render.finish())
    return b"".join(out)


def test_every_format_pair_is_covered() -> None:
    cases = {case for _, case in INPUTS}
    assert {"text", "tools_parallel", "thinking", "error_mid"} <= cases
    for fmt in FORMAT_NAMES:
        have = {case for up, case in INPUTS if up == fmt}
        assert {"text", "tools_parallel", "thinking", "error_mid"} <= have, fmt


@pytest.mark.parametrize(("upstream", "case", "client"), PAIRS)
def test_golden(upstream: str, case: str, client: str) -> None:
    data = (GOLDEN / upstream / f"{case}.sse").read_bytes()
    got = convert(upstream, [data], client)
    expected_path = GOLDEN / upstream / f"{case}.to_{client}.sse"
    if UPDATE:
        expected_path.write_bytes(got)
    assert got == expected_path.read_bytes()


def _is_error_case(case: str) -> bool:
    return case.startswith("error")


@pytest.mark.parametrize(("upstream", "case", "client"), PAIRS)
def test_official_sdk_reads_it(upstream: str, case: str, client: str) -> None:
    data = (GOLDEN / upstream / f"{case}.to_{client}.sse").read_bytes()
    if client == "anthropic":
        if _is_error_case(case):
            with pytest.raises(anthropic.APIStatusError):
                sdk.anthropic_stream(data)
            return
        msg = sdk.anthropic_stream(data)
        assert msg.model == "client-model"
        assert msg.stop_reason is not None
        indices = [
            json.loads(line[6:]).get("index")
            for line in data.decode().splitlines()
            if line.startswith("data: ")
        ]
        opened = [i for i in indices if i is not None]
        assert sorted(set(opened)) == list(range(len(msg.content)))
    elif client == "openai":
        if _is_error_case(case):
            with pytest.raises(openai.APIError):
                sdk.openai_stream(data)
            return
        chunks = sdk.openai_stream(data)
        assert chunks[-1].usage is not None
        if chunks[-2].choices[0].finish_reason == "length":
            return  # the SDK's accumulating helper refuses length stops by design
        final = sdk.openai_final(data)
        assert final.choices[0].finish_reason in ("stop", "length", "tool_calls", "content_filter")
        assert final.usage is not None
        for call in final.choices[0].message.tool_calls or ():
            json.loads(call.function.arguments)
    else:
        if _is_error_case(case):
            with pytest.raises(gerrors.APIError):
                sdk.gemini_stream(data)
            return
        chunks = sdk.gemini_stream(data)
        assert chunks[-1].candidates[0].finish_reason is not None  # type: ignore[index]
        assert chunks[-1].usage_metadata is not None
        for chunk in chunks:
            assert chunk.candidates
            assert chunk.candidates[0].content
            assert chunk.candidates[0].content.parts


# -- any split of the upstream bytes gives the same output -----------------------------------


@pytest.mark.parametrize(("upstream", "case"), INPUTS)
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_any_split_gives_the_same_output(upstream: str, case: str, data: st.DataObject) -> None:
    raw = (GOLDEN / upstream / f"{case}.sse").read_bytes()
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(raw) - 1)), max_size=12)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    for client in FORMAT_NAMES:
        assert convert(upstream, pieces, client) == convert(upstream, [raw], client)


@pytest.mark.parametrize(("upstream", "case"), INPUTS)
def test_every_single_split_point(upstream: str, case: str) -> None:
    raw = (GOLDEN / upstream / f"{case}.sse").read_bytes()
    whole = convert(upstream, [raw], "anthropic")
    for i in range(1, len(raw)):
        assert convert(upstream, [raw[:i], raw[i:]], "anthropic") == whole, i
