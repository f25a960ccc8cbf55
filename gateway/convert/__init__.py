"""The canonical model and the conversion machinery every wire format shares.

Theory of operation (design.md, Conversion): each wire format has a parser into
the canonical model (:mod:`gateway.convert.model`) and a renderer out of it, for
requests, responses, stream events and errors; those live in the format's own
folder (``gateway/formats/<name>/``) and are reached through
:data:`gateway.formats.FORMATS`. What is here belongs to no format:

- ``model``: the canonical classes; ``_util`` and ``_common``: typed field access,
  JSON, and conversion rules several formats share; ``names``: tool names and
  call ids as a format's rule allows them; ``schema``: JSON Schema for Gemini's
  dialect; ``tokens``: the rough token estimate; ``provider_errors``: reading a
  provider's error body;
- ``memo``: what a conversation's next request shares with its last one;
  ``encoded``: rendered history spliced into a body as JSON text;
- ``emulate``: a whole answer as a stream and back.

(The offline ``mock`` provider, which answers canonical requests, is a provider:
:mod:`gateway.proxy.mock`.)

Everything here is pure: no I/O, no logging, no clock except the OpenAI
``created`` stamp when none is given. What a converter drops comes back as
notes for the caller to log at debug level; what would change the meaning of
a request is a :class:`~gateway.errors.BadRequest`.

Nothing is imported here: the format folders import these modules, and this
package imports no format (no cycle).
"""
