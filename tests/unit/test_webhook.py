"""The signature check and header parsing (pure)."""

from __future__ import annotations

import pytest

from bot import webhook
from bot.settings import Secret

BODY = b"Hello, World!"
SECRET = "It's a Secret to Everybody"
# GitHub's own known answer, from "Validating webhook deliveries" in GitHub's docs.
EXPECTED = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_signature_matches_githubs_known_answer() -> None:
    assert webhook.signature(BODY, SECRET) == EXPECTED


def test_verify_accepts_any_of_several_secrets_for_rotation() -> None:
    webhook.verify(BODY, EXPECTED, [Secret("old"), Secret(SECRET)])


@pytest.mark.parametrize(
    "header",
    [None, "", "sha1=abc", EXPECTED[:-1] + "0", EXPECTED.upper(), "sha256=", EXPECTED + " "],
)
def test_verify_rejects_missing_or_wrong_signatures(header: str | None) -> None:
    with pytest.raises(webhook.BadSignature):
        webhook.verify(BODY, header, [Secret(SECRET)])


def test_verify_rejects_everything_without_secrets() -> None:
    with pytest.raises(webhook.BadSignature):
        webhook.verify(BODY, EXPECTED, [])


def headers(body: bytes, **extra: str) -> dict[str, str]:
    return {
        "x-hub-signature-256": webhook.signature(body, SECRET),
        "x-github-event": "issues",
        "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        **extra,
    }


def test_parse_returns_the_delivery() -> None:
    body = b'{"action": "labeled", "installation": {"id": 7}}'
    delivery = webhook.parse(headers(body), body, [Secret(SECRET)])
    assert (delivery.event, delivery.action, delivery.delivery_id) == (
        "issues",
        "labeled",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    )
    assert delivery.payload == {"action": "labeled", "installation": {"id": 7}}


@pytest.mark.parametrize(
    ("body", "extra", "error"),
    [
        (b"not json", {}, webhook.BadRequest),
        (b"[1, 2]", {}, webhook.BadRequest),
        (b"\xff\xfe", {}, webhook.BadRequest),
        (b"{}", {"x-github-event": ""}, webhook.BadRequest),
        (b"{}", {"x-github-delivery": ""}, webhook.BadRequest),
    ],
)
def test_parse_rejects_bad_requests(body: bytes, extra: dict[str, str], error: type) -> None:
    with pytest.raises(error):
        webhook.parse(headers(body, **extra), body, [Secret(SECRET)])


def test_signature_is_checked_before_the_body_is_read() -> None:
    # An unsigned non-JSON body is a 401, not a 400: nothing unsigned is decoded.
    with pytest.raises(webhook.BadSignature):
        webhook.parse({"x-hub-signature-256": "sha256=00"}, b"not json", [Secret(SECRET)])
