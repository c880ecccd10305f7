"""Provider codecs: one normalized shape for OpenAI Chat Completions (``openai_chat``), OpenAI
Responses (``openai_responses``), Anthropic Messages (``anthropic_messages``) and Gemini
generateContent (``gemini_generate_content``); ``auto`` detects. Each function returns
``None`` when ``auto`` recognizes no codec. LLM calls take ``codec=`` / ``response_codec=`` to
annotate their events (docs/codecs.md)."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

from . import _native

__all__ = ["aggregate_stream", "decode_request", "decode_response", "encode_request"]


def decode_request(codec: str, request: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """A provider request (its JSON body) as the normalized request."""
    return _native.codec_decode_request(codec, dict(request))


def encode_request(
    codec: str, normalized: Mapping[str, Any], original: Mapping[str, Any]
) -> Optional[Dict[str, Any]]:
    """Writes edits of a normalized request back into the provider request, losslessly."""
    return _native.codec_encode_request(codec, dict(normalized), dict(original))


def decode_response(codec: str, response: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """A provider response as the normalized response."""
    return _native.codec_decode_response(codec, dict(response))


def aggregate_stream(codec: str, chunks: Sequence[Any]) -> Optional[Dict[str, Any]]:
    """The normalized response of a whole stream of provider chunks."""
    return _native.codec_aggregate_stream(codec, list(chunks))
