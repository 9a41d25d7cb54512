"""The `/tembo` command grammar. Pure: a comment body in, a `Command` (or None) out.

    /tembo [help | status | stop | new] [key=value …] [free text]

Only the first non-blank line can hold the command, and only at its start: a command
quoted (`>`), fenced or indented as code, or mid-sentence is text, not a command.
The free text is the rest of that line plus every following line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KEYS = ("agent", "branch", "target", "platform", "new", "force")
SUBCOMMANDS = ("help", "status", "stop")

USAGE = """\
`{command} [key=value …] [what to do]` starts a session on this issue.

| key | meaning |
|---|---|
| `agent=…` | the agent to use, e.g. `claudeCode:claude-opus-4-5` |
| `branch=…` | the branch the agent works on (quote values with spaces: `branch="a b"`) |
| `target=…` | the branch the pull request goes to |
| `platform=…` | `tembo`, `recoup`, `agen`, `magnet` or `dry-run` |
| `new` | start a new session even if one is running for this issue |
| `force=true` | admins: start even when a budget (`limits:`) is used up; recorded |

`{command} help` shows this, `{command} status` lists this issue's sessions, `{command} stop`
stops the running one. While a session runs, `{command} <text>` sends it the text where its
platform takes messages."""

_TOKEN = re.compile(
    r"""\s*(?P<key>[A-Za-z_][\w-]*)=(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>\S*))"""
)
_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class CommandError(ValueError):
    """The command is malformed; the message is shown to the person with the usage."""


@dataclass(frozen=True)
class Command:
    name: str = "run"  # run | help | status | stop
    text: str = ""
    args: dict[str, str] = field(default_factory=dict)
    new: bool = False
    force: bool = False  # past a used-up budget; honoured for admins only (policy)

    @property
    def agent(self) -> str | None:
        return self.args.get("agent")

    @property
    def branch(self) -> str | None:
        return self.args.get("branch")

    @property
    def target(self) -> str | None:
        return self.args.get("target")

    @property
    def platform(self) -> str | None:
        return self.args.get("platform")


def first_line(body: str) -> tuple[str, str] | None:
    """The first non-blank line and everything after it."""
    lines = body.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        if line.strip():
            return line, "\n".join(lines[index + 1 :])
    return None


def mentions(body: str, command: str) -> bool:
    """Cheap check for ingest: could this comment be a command at all?"""
    found = first_line(body)
    return found is not None and found[0].lstrip()[:1] == command[:1]


def parse(body: str, command: str = "/tembo") -> Command | None:
    """The command in `body`, None when there is none, `CommandError` when it is malformed."""
    found = first_line(body)
    if found is None:
        return None
    line, rest = found
    # Four spaces or a tab make a Markdown code block; a quote or fence starts with > or `.
    if line.startswith(("    ", "\t")):
        return None
    line = line.strip()
    head, _, tail = line.partition(" ")
    if head.lower() != command.lower():
        return None
    tail = tail.strip()

    word, _, after = tail.partition(" ")
    if word.lower() in SUBCOMMANDS and not after.strip() and not rest.strip():
        return Command(name=word.lower())
    new = False
    if word.lower() == "new":
        new, tail = True, after

    args: dict[str, str] = {}
    force = False
    position = 0
    while match := _TOKEN.match(tail, position):
        key = match["key"].lower()
        if key not in KEYS:
            raise CommandError(f"unknown key `{key}`; known keys: {', '.join(KEYS)}")
        value = next(v for v in (match["dq"], match["sq"], match["bare"]) if v is not None)
        if key in ("new", "force"):
            if value.lower() not in _BOOL:
                raise CommandError(f"`{key}={value}` must be true or false")
            if key == "new":
                new = new or _BOOL[value.lower()]
            else:
                force = _BOOL[value.lower()]
        else:
            if not value:
                raise CommandError(f"`{key}=` needs a value")
            args[key] = value
        position = match.end()
    text = "\n".join(part for part in (tail[position:].strip(), rest.strip()) if part)
    return Command(name="run", text=text, args=args, new=new, force=force)
