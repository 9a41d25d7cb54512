"""The `/tembo` grammar (pure)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.commands import Command, CommandError, Problem, parse, valid_ref


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
            '/tembo agent=claudeCode:claude-opus-4-5 branch="feat/x-y" target=dev fix',
            Command(
                text="fix",
                args={"agent": "claudeCode:claude-opus-4-5", "branch": "feat/x-y", "target": "dev"},
            ),
        ),
        ("/tembo platform=dry-run", Command(args={"platform": "dry-run"})),
        ("/tembo platform=tembo,jules go", Command(text="go", args={"platform": "tembo,jules"})),
        ("/tembo pick devin", Command(name="pick", args={"platform": "devin"})),
        ("/tembo PICK Devin", Command(name="pick", args={"platform": "devin"})),
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


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("/tembo colour=blue", Problem("unknown_key", "colour")),
        ('/tembo new="![x](https://evil.test/p.png) @org/team"', None),
        ("/tembo branch='a b'", Problem("bad_ref", "branch", "a b")),
        ("/tembo branch=feat..x", Problem("bad_ref", "branch", "feat..x")),
        ("/tembo branch=-x", Problem("bad_ref", "branch", "-x")),
        ("/tembo branch=x.lock", Problem("bad_ref", "branch", "x.lock")),
        ("/tembo branch=a/.b", Problem("bad_ref", "branch", "a/.b")),
        ("/tembo target=a@{1}", Problem("bad_ref", "target", "a@{1}")),
        ("/tembo target=`x`", Problem("bad_ref", "target", "`x`")),
        ("/tembo target=x/", Problem("bad_ref", "target", "x/")),
        ("/tembo agent=a<b>", Problem("bad_agent", "agent", "a<b>")),
        ("/tembo agent=" + "a" * 101, Problem("bad_agent", "agent", "a" * 101)),
    ],
)
def test_malformed_commands_carry_what_was_wrong(body: str, problem: Problem | None) -> None:
    with pytest.raises(CommandError) as caught:
        parse(body)
    if problem is None:  # the value is the sender's, kept as typed for the renderer
        problem = Problem("bad_bool", "new", "![x](https://evil.test/p.png) @org/team")
    assert caught.value.problem == problem


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("main", True),
        ("feat/x-1.2", True),
        ("release/v1+build#3", True),
        ("user@host", True),
        ("@", False),
        ("a//b", False),
        ("a..b", False),
        ("a.", False),
        ("", False),
        ("a" * 201, False),
        ("ünï", False),
        ("a\nb", False),
    ],
)
def test_valid_ref_follows_git_and_refuses_what_markdown_acts_on(name: str, valid: bool) -> None:
    assert valid_ref(name) is valid


@given(st.text())
def test_parse_never_raises_anything_else(body: str) -> None:
    with contextlib.suppress(CommandError):
        parse(body)


@pytest.mark.parametrize(
    ("value", "platforms"),
    [
        ("tembo,jules", ("tembo", "jules")),
        ("Tembo,JULES", ("tembo", "jules")),
        ("devin,tembo,devin", ("devin", "tembo")),
        ("agen", ("agen",)),
    ],
)
def test_platform_takes_a_comma_list_each_once_in_order(
    value: str, platforms: tuple[str, ...]
) -> None:
    command = parse(f"/tembo platform={value} go")
    assert command is not None and command.platforms == platforms


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("/tembo platform=tembo,,jules go", Problem("empty_value", "platform")),
        ("/tembo platform=tembo, go", Problem("empty_value", "platform")),
        ("/tembo pick", Problem("bad_pick", "pick")),
        ("/tembo pick devin tembo", Problem("bad_pick", "pick", "devin tembo")),
        ("/tembo pick devin\nand more", Problem("bad_pick", "pick", "devin")),
    ],
)
def test_a_bad_platform_list_or_pick_says_what_was_wrong(body: str, problem: Problem) -> None:
    with pytest.raises(CommandError) as raised:
        parse(body.replace("\\n", "\n"))
    assert raised.value.problem == problem
