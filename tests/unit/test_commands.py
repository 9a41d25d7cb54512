"""The `/tembo` grammar (pure)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import Command, CommandError, parse


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/tembo", Command()),
        ("/tembo fix the flaky test", Command(text="fix the flaky test")),
        ("\n\n  /tembo fix it\nmore detail\n", Command(text="fix it\nmore detail")),
        ("/TEMBO do it", Command(text="do it")),
        ("/tembo help", Command(name="help")),
        ("/tembo status", Command(name="status")),
        ("/tembo stop", Command(name="stop")),
        ("/tembo help me write docs", Command(text="help me write docs")),
        ("/tembo new try again", Command(text="try again", new=True)),
        ("/tembo new=true again", Command(text="again", new=True)),
        (
            '/tembo agent=claudeCode:claude-opus-4-5 branch="feat/x y" target=dev fix',
            Command(
                text="fix",
                args={"agent": "claudeCode:claude-opus-4-5", "branch": "feat/x y", "target": "dev"},
            ),
        ),
        ("/tembo platform=dry-run", Command(args={"platform": "dry-run"})),
        ("/tembo don't break x=1", Command(text="don't break x=1")),
    ],
)
def test_parse_reads_commands(body: str, expected: Command) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   \n  ",
        "please /tembo fix this",
        "> /tembo fix this",
        "```\n/tembo fix this\n```",
        "    /tembo indented code",
        "\t/tembo tab code",
        "`/tembo` inline",
        "/tembofix",
        "/tembo-extra",
        "first line\n/tembo second line",
    ],
)
def test_parse_ignores_anything_but_a_leading_command(body: str) -> None:
    assert parse(body) is None


def test_parse_uses_the_configured_command() -> None:
    assert parse("/agent go", command="/agent") == Command(text="go")
    assert parse("/tembo go", command="/agent") is None


@pytest.mark.parametrize(
    "body", ["/tembo colour=blue", "/tembo branch= x", "/tembo new=maybe", "/tembo agent=''"]
)
def test_parse_rejects_bad_arguments(body: str) -> None:
    with pytest.raises(CommandError):
        parse(body)


@given(st.text())
def test_parse_never_raises_anything_else(body: str) -> None:
    with contextlib.suppress(CommandError):
        parse(body)
