"""The tokens a request reserves against ``tpm`` and the budgets before it is sent.

About four characters a token over every string of the request body (the
same rule as :mod:`gateway.convert.tokens`, but over the client's JSON as it
came, in any format, so no conversion is needed to reserve). Media sent
inline (base64 ``data``, ``data:`` URLs) is not text: each such string counts
as :data:`MEDIA_TOKENS`, near what providers charge for an image. The output
is not reserved: what the provider reports settles the charge afterwards
(gateway.state.protocol), so the estimate only has to be in the right range.

Linear in the body and bounded in depth by the body's own depth check; it
walks with an explicit stack, never recursion.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MEDIA_TOKENS", "estimate_request_tokens"]

_CHARS_PER_TOKEN = 4
#: What one inline image or file counts for.
MEDIA_TOKENS = 1000
#: Keys whose string values are media, not text.
_MEDIA_KEYS = frozenset({"data", "url", "image_url", "file_data", "b64_json", "inline_data"})


def estimate_request_tokens(body: Any) -> int:
    """About how many tokens the request ``body`` (parsed JSON) is (at least 1)."""
    chars = 0
    media = 0
    stack: list[Any] = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str):
                    if key in _MEDIA_KEYS and (len(item) > 512 or item.startswith("data:")):
                        media += 1
                    else:
                        chars += len(item)
                elif isinstance(item, (dict, list)):
                    stack.append(item)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    chars += len(item)
                elif isinstance(item, (dict, list)):
                    stack.append(item)
    return max(1, chars // _CHARS_PER_TOKEN + media * MEDIA_TOKENS)
