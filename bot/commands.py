"""The `/tembo` command grammar. Pure: a comment body in, a `Command` (or None) out.

    /tembo [help | status | stop | new] [key=value …] [free text]
    /tembo pick PLATFORM

Only the first non-blank line can hold the command, and only at its start: a command
quoted (`>`), fenced or indented as code, or mid-sentence is text, not a command.
The free text is the rest of that line plus every following line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from bot import platforms

KEYS = ("agent", "branch", "target", "platform", "new", "force")


def _platform_usage() -> tuple[str, str]:
    """The `platform=` choices, and one line per platform from its registry entry."""
    names = [f"`{p.name}`" for p in platforms.REGISTRY]
    choices = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
    lines = []
    for p in platforms.REGISTRY:
        can = [w for flag, w in ((p.can_message, "follow-ups"), (p.can_stop, "stop")) if flag]
        lines.append(f"- `{p.name}`: {p.usage}" + (f" ({', '.join(can)})" if can else ""))
    return choices, "\n".join(lines)


_CHOICES, _PLATFORM_LINES = _platform_usage()

USAGE = f"""\
`{{command}} [key=value …] [what to do]` starts a session on this issue.

| key | meaning |
|---|---|
| `agent=…` | the agent to use, e.g. `claudeCode:claude-opus-4-5` |
| `branch=…` | the branch the agent works on (a git branch name) |
| `target=…` | the branch the pull request goes to |
| `platform=…` | {_CHOICES}; a comma list (`platform=tembo,devin`) starts one session on each |
| `new` | start a new session even if one is running for this issue |
| `force=true` | admins: start even when a budget (`limits:`) is used up; recorded |

`{{command}} help` shows this, `{{command}} status` lists this issue's sessions,
`{{command}} stop` stops the running one, `{{command}} pick <platform>` keeps that platform's
session of a fan-out and stops the others. While a session runs, `{{command}} <text>` sends it
the text where its platform takes messages.

{_PLATFORM_LINES}"""

_TOKEN = re.compile(
    r"""\s*(?P<key>[A-Za-z_][\w-]*)=(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>\S*))"""
)
_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


ProblemKind = Literal["unknown_key", "bad_bool", "empty_value", "bad_ref", "bad_agent", "bad_pick"]
CommandName = Literal["run", "help", "status", "stop", "pick"]

# git check-ref-format's rules, plus an allowlist of characters: a branch name is shown
# in the status comment and the prompt, so it may hold nothing Markdown or a shell acts on.
_REF_CHARS = re.compile(r"^[A-Za-z0-9._/+#@=,-]{1,200}$")
_REF_FORBIDDEN = re.compile(r"\.\.|@\{|//|^/|/$|\.$|^-|(^|/)\.|\.lock(/|$)")
_SUBCOMMANDS: dict[str, CommandName] = {"help": "help", "status": "status", "stop": "stop"}
AGENT = re.compile(r"^[A-Za-z0-9:._/-]{1,100}$")


def valid_ref(name: str) -> bool:
    """Whether `name` is a branch name git accepts and the app will show."""
    return bool(_REF_CHARS.match(name)) and not _REF_FORBIDDEN.search(name) and name != "@"


@dataclass(frozen=True)
class Problem:
    """What is wrong with a command. `key` and `value` are the sender's words: whoever
    shows them must treat them as untrusted text."""

    kind: ProblemKind
    key: str
    value: str = ""


class CommandError(ValueError):
    """The command is malformed; `problem` says how, for the reply."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.kind}: {problem.key}")
        self.problem = problem


@dataclass(frozen=True)
class Command:
    name: CommandName = "run"
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

    @property
    def platforms(self) -> tuple[str, ...]:
        """`platform=a,b`: each platform once, in the order given (empty when not given)."""
        names = (self.platform or "").lower().split(",")
        return tuple(dict.fromkeys(name.strip() for name in names if name.strip()))


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
    subcommand = _SUBCOMMANDS.get(word.lower())
    if subcommand is not None and not after.strip() and not rest.strip():
        return Command(name=subcommand)
    if word.lower() == "pick":
        return _pick(after, rest)
    new = False
    if word.lower() == "new":
        new, tail = True, after

    args: dict[str, str] = {}
    force = False
    position = 0
    while match := _TOKEN.match(tail, position):
        key = match["key"].lower()
        value = next(v for v in (match["dq"], match["sq"], match["bare"]) if v is not None)
        if key not in KEYS:
            raise CommandError(Problem("unknown_key", key))
        if key in ("new", "force"):
            if value.lower() not in _BOOL:
                raise CommandError(Problem("bad_bool", key, value))
            if key == "new":
                new = new or _BOOL[value.lower()]
            else:
                force = _BOOL[value.lower()]
        else:
            if not value:
                raise CommandError(Problem("empty_value", key))
            if key in ("branch", "target") and not valid_ref(value):
                raise CommandError(Problem("bad_ref", key, value))
            if key == "platform" and not all(p.strip() for p in value.split(",")):
                raise CommandError(Problem("empty_value", key))
            if key == "agent" and not AGENT.match(value):
                raise CommandError(Problem("bad_agent", key, value))
            args[key] = value
        position = match.end()
    text = "\n".join(part for part in (tail[position:].strip(), rest.strip()) if part)
    return Command(name="run", text=text, args=args, new=new, force=force)


def _pick(after: str, rest: str) -> Command:
    """`/tembo pick PLATFORM`: one word, nothing after it."""
    words = after.split()
    if len(words) != 1 or rest.strip() or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", words[0]):
        raise CommandError(Problem("bad_pick", "pick", after.strip()[:40]))
    return Command(name="pick", args={"platform": words[0].lower()})
