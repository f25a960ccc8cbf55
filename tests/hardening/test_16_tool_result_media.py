"""Issue 8 item 16: tool results with images (and documents) convert without loss.

An Anthropic ``tool_result`` whose content is ``[text, image, text]`` used to reach Gemini
as its text only, the two text blocks glued together (``"line oneline two"``). Gemini
carries media in ``functionResponse.parts`` (Gemini 3; wire-formats §4.10); for older
models, which do not take them there, the media follow in a user turn after the responses.
Text blocks are joined with a newline everywhere a format needs one string (Gemini's
``response.result``, OpenAI's ``tool`` message). The reverse directions keep the media
too: a Gemini ``functionResponse`` with ``parts`` and an OpenAI ``tool`` message with image
or file parts.
"""

from __future__ import annotations

from typing import Any

from gateway.formats import convert_request

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoK"

CALL = {"type": "tool_use", "id": "toolu_1", "name": "screenshot", "input": {}}
RESULT_CONTENT = [
    {"type": "text", "text": "line one"},
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    {"type": "text", "text": "line two"},
]


def _anthropic(content: Any = RESULT_CONTENT) -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "take a screenshot"},
            {"role": "assistant", "content": [CALL]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": content}],
            },
        ],
    }


def _function_responses(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        part["functionResponse"]
        for content in body["contents"]
        for part in content["parts"]
        if "functionResponse" in part
    ]


def test_anthropic_image_result_to_gemini_3_goes_in_function_response_parts() -> None:
    body, _ = convert_request(_anthropic(), "anthropic", "gemini", upstream_model="gemini-3-pro")
    (fr,) = _function_responses(body)
    assert fr["response"] == {"result": "line one\nline two"}
    assert fr["parts"] == [{"inlineData": {"mimeType": "image/png", "data": PNG}}]
    assert body["contents"][-1]["parts"] == [{"functionResponse": fr}]


def test_anthropic_image_result_to_an_older_gemini_follows_the_responses() -> None:
    body, notes = convert_request(
        _anthropic(), "anthropic", "gemini", upstream_model="gemini-2.5-flash"
    )
    (fr,) = _function_responses(body)
    assert fr["response"] == {"result": "line one\nline two"}
    assert "parts" not in fr
    assert body["contents"][-1] == {
        "role": "user",
        "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}],
    }
    assert body["contents"][-2]["parts"] == [{"functionResponse": fr}]
    assert any("media of tool results" in n for n in notes)


def test_anthropic_document_result_to_gemini() -> None:
    content = [
        {"type": "text", "text": "the report"},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
        },
    ]
    body, _ = convert_request(
        _anthropic(content), "anthropic", "gemini", upstream_model="gemini-3-flash"
    )
    (fr,) = _function_responses(body)
    assert fr["parts"] == [{"inlineData": {"mimeType": "application/pdf", "data": PDF}}]


def test_anthropic_image_result_to_openai_joins_text_with_newlines() -> None:
    body, _ = convert_request(_anthropic(), "anthropic", "openai", upstream_model="gpt")
    tool, user = body["messages"][-2:]
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "line one\nline two"}
    assert user["role"] == "user"
    assert user["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    ]


def _gemini_with_parts() -> dict[str, Any]:
    return {
        "contents": [
            {"role": "user", "parts": [{"text": "take a screenshot"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"id": "c1", "name": "shot", "args": {}}}],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "id": "c1",
                            "name": "shot",
                            "response": {"result": "done"},
                            "parts": [{"inlineData": {"mimeType": "image/png", "data": PNG}}],
                        }
                    }
                ],
            },
        ]
    }


def test_gemini_function_response_parts_to_anthropic() -> None:
    body, _ = convert_request(
        _gemini_with_parts(), "gemini", "anthropic", upstream_model="c", model="m"
    )
    result = body["messages"][-1]["content"][0]
    assert result["type"] == "tool_result"
    assert result["content"] == [
        {"type": "text", "text": "done"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]


def test_gemini_function_response_parts_to_openai() -> None:
    body, _ = convert_request(
        _gemini_with_parts(), "gemini", "openai", upstream_model="g", model="m"
    )
    tool, user = body["messages"][-2:]
    assert tool["role"] == "tool"
    assert tool["content"] == "done"
    assert user["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    ]


def test_gemini_function_response_parts_survive_gemini_to_gemini() -> None:
    body, _ = convert_request(
        _gemini_with_parts(), "gemini", "gemini", upstream_model="gemini-3-pro", model="m"
    )
    (fr,) = _function_responses(body)
    assert fr["parts"] == [{"inlineData": {"mimeType": "image/png", "data": PNG}}]


def _openai_tool(content: Any) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}
    return {
        "model": "m",
        "messages": [
            {"role": "user", "content": "take a screenshot"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": content},
        ],
    }


OPENAI_PARTS = [
    {"type": "text", "text": "line one"},
    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    {"type": "text", "text": "line two"},
]


def test_openai_tool_message_with_an_image_to_anthropic() -> None:
    body, _ = convert_request(_openai_tool(OPENAI_PARTS), "openai", "anthropic", upstream_model="c")
    result = body["messages"][-1]["content"][0]
    assert result["content"] == RESULT_CONTENT


def test_openai_tool_message_with_an_image_to_gemini() -> None:
    body, _ = convert_request(
        _openai_tool(OPENAI_PARTS), "openai", "gemini", upstream_model="gemini-3-pro"
    )
    (fr,) = _function_responses(body)
    assert fr["response"] == {"result": "line one\nline two"}
    assert fr["parts"] == [{"inlineData": {"mimeType": "image/png", "data": PNG}}]


def test_openai_tool_message_with_a_file_keeps_it() -> None:
    parts = [
        {"type": "text", "text": "the report"},
        {
            "type": "file",
            "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "r.pdf"},
        },
    ]
    body, _ = convert_request(_openai_tool(parts), "openai", "anthropic", upstream_model="c")
    result = body["messages"][-1]["content"][0]
    assert result["content"][1]["type"] == "document"
    assert result["content"][1]["source"]["data"] == PDF
