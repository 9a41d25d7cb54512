"""No secret reaches a log line: the App's private key, the webhook secret, the Tembo key,
installation tokens and the credentials of a registration, after real deliveries through
the real app (DEBUG, every logger, the redaction list empty so nothing is hidden by it)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot import logs
from tests.support import payloads
from tests.support.app import WEBHOOK_SECRET, Harness, KeyPair, signed_headers
from tests.support.manifest import FakeManifestGitHub, Page, bare_settings, registration, running

pytestmark = pytest.mark.anyio
REPO = "Codertocat/Hello-World"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Every log line of every logger, formatted as in production, unredacted."""
    monkeypatch.setattr(logs, "_SCRUBBER", logs.Scrubber())
    monkeypatch.setattr(logs, "remember_secret", lambda secret: None)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JSONFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def key_fragments(pem: str) -> list[str]:
    """The key as a whole and each line of its body: a partial leak is a leak too."""
    body = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return [pem.strip(), pem.strip().replace("\n", "\\n"), *body]


def assert_absent(text: str, secrets: dict[str, list[str]]) -> None:
    for name, values in secrets.items():
        for value in values:
            assert value not in text, f"{name} appears in the logs"


async def test_a_full_delivery_logs_no_secret(
    harness: Harness, app_key: KeyPair, captured: io.StringIO
) -> None:
    harness.github.permissions[(REPO, "Codertocat")] = "write"
    # One transient Tembo failure, so the retry path logs too.
    failures = iter([httpx.Response(503, json={"error": "try later"})])
    harness.tembo.fault = lambda request: next(failures, None)
    assert (await harness.deliver("issues", payloads.labeled())).status_code == 202
    comment = payloads.comment("/tembo fix the flaky test", number=2)
    assert (await harness.deliver("issue_comment", comment)).status_code == 202
    body = json.dumps(payloads.labeled()).encode()
    forged = signed_headers(body, "issues", secret="a guess")
    assert (await harness.client.post("/webhook", content=body, headers=forged)).status_code == 401
    await harness.settle()
    assert len(harness.tembo.sessions) == 2

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    names = {line["event"] for line in lines}
    assert {"dispatch.created", "job.retry", "delivery.rejected"} <= names
    assert any(line.get("delivery_id") for line in lines)
    assert_absent(
        text,
        {
            "PRIVATE_KEY": key_fragments(app_key.private),
            "WEBHOOK_SECRET": [WEBHOOK_SECRET],
            "TEMBO_API_KEY": [harness.tembo.api_key],
            "installation token": list(harness.github.tokens),
        },
    )


async def test_registering_the_app_logs_no_credential(
    tmp_path: Path, app_key: KeyPair, captured: io.StringIO
) -> None:
    github = FakeManifestGitHub(pem=app_key.private)
    async with running(bare_settings(tmp_path), github) as setup:
        found = registration(Page((await setup.client.get("/")).text))
        code = github.register(found.manifest)
        assert (await setup.callback(code, found.state)).status_code == 200
    answer = github.answers[code]

    text = captured.getvalue()
    assert "setup.registered" in text
    assert_absent(
        text,
        {
            "PRIVATE_KEY": key_fragments(answer["pem"]),
            "WEBHOOK_SECRET": [answer["webhook_secret"]],
            "GITHUB_CLIENT_SECRET": [answer["client_secret"]],
            # (The manifest code may show in httpx's request line: it is spent by then.)
        },
    )


def test_the_formatter_redacts_known_secrets_whatever_a_call_site_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logs, "_SCRUBBER", logs.Scrubber(["tembo-live-key-0123"]))
    record = logging.LogRecord("bot.test", logging.INFO, __file__, 1, "job.done", None, None)
    record.fields = {"detail": "sent Bearer tembo-live-key-0123"}
    line = logs.JSONFormatter().format(record)
    assert "tembo-live-key-0123" not in line
    assert json.loads(line)["detail"] == "sent Bearer [redacted]"


def test_a_field_of_any_type_still_makes_one_redacted_json_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # orjson writes the line; what it refuses (an int past 64 bits) goes through json,
    # and what neither knows is written as its str(); the scrubber sees every path.
    monkeypatch.setattr(logs, "_SCRUBBER", logs.Scrubber(["tembo-live-key-0123"]))
    record = logging.LogRecord("bot.test", logging.INFO, __file__, 1, "job.done", None, None)
    for value, shown in [
        (2**70, 2**70),
        (Path("/tmp/tembo-live-key-0123"), "/tmp/[redacted]"),
        ("naïve tembo-live-key-0123", "naïve [redacted]"),
    ]:
        record.fields = {"detail": value, "event": "issues"}
        line = logs.JSONFormatter().format(record)
        assert "\n" not in line and "tembo-live-key-0123" not in line
        data = json.loads(line)
        assert data["detail"] == shown
        assert data["event"] == "job.done" and data["field_event"] == "issues"
        assert data["ts"].endswith("Z") and len(data["ts"]) == len("2026-01-01T00:00:00.000Z")


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----\n"
)
BODY_LINE = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"


@pytest.mark.parametrize(
    ("secret", "text"),
    [
        ("tembo-live-key-0123", "key tembo-live-key-0123 refused"),
        ('pa"ss\\word', 'body {"key": "pa\\"ss\\\\word"}'),  # JSON-escaped
        (PEM, json.dumps({"key": PEM})),  # a PEM printed with \n
        (PEM, PEM.replace("\n", "\r\n")),
        (PEM, f"line: {BODY_LINE}"),  # one line of the key alone
        ("s3cr3t/+=x", "url ?k=s3cr3t%2F%2B%3Dx"),  # URL-encoded
    ],
)
def test_the_scrubber_catches_every_form_a_secret_is_printed_in(secret: str, text: str) -> None:
    scrubbed = logs.Scrubber([secret])(text)
    assert "[redacted]" in scrubbed
    assert (BODY_LINE if secret == PEM else secret[:6]) not in scrubbed


def test_minted_tokens_are_scrubbed_and_only_the_newest_are_kept() -> None:
    scrubber = logs.Scrubber()
    scrubber.add("ghs_first_token_0001")
    assert scrubber("token ghs_first_token_0001") == "token [redacted]"
    for n in range(logs.MINTED_KEPT):
        scrubber.add(f"ghs_token_{n:08d}")
    assert scrubber("token ghs_first_token_0001") == "token ghs_first_token_0001"
