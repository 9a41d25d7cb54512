"""`.github/tembo.yml`: the schema, strict validation with line numbers, and merging.

Pure: text in, `RepoConfig` or `ConfigError` out. Reading the file from GitHub and
caching it belong to the worker and the GitHub adapter.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from bot.fleet import LIMIT_NAMES, Limits
from bot.platforms import NAMES as PLATFORMS
from bot.settings import Settings

PATH = ".github/tembo.yml"
ORG_REPO = ".github"  # Probot's convention: org-wide defaults live in the org's .github repo
# all: every comment; collaborators: comments by people with triage access or more;
# none: no comments. Old files said true (all) or false (none).
IncludeComments = Literal["all", "collaborators", "none"]
INCLUDE_COMMENTS: tuple[IncludeComments, ...] = ("all", "collaborators", "none")
PERMISSIONS = ("read", "triage", "write", "maintain", "admin")
TEMPLATE_FIELDS = ("number", "slug", "login")
_COMMAND = re.compile(r"^/[A-Za-z0-9][A-Za-z0-9_-]*$")
_BRANCH_FORBIDDEN = re.compile(r"(\.\.|[~^:?*\[\\\s]|@\{|//|^/|/$|\.lock$|^-)")


@dataclass(frozen=True)
class RepoConfig:
    # One platform, or several: a list runs one session on each for the same trigger.
    platform: str | tuple[str, ...] = "tembo"
    label: str = "tembo"
    command: str = "/tembo"
    agent: str | None = None
    target_branch: str | None = None
    branch_name: str = "tembo/{number}-{slug}"
    min_permission: str = "write"
    allow_bots: tuple[str, ...] = ()
    include_comments: IncludeComments = "collaborators"
    max_prompt_chars: int = 60000
    one_session_per_issue: bool = True
    pull_requests: bool = False  # `/tembo` in pull-request conversations
    fallback: tuple[str, ...] = ()  # tried in order when the platform refuses for good
    # Merged key by key: repo over org over operator defaults.
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def defaults(cls, settings: Settings) -> RepoConfig:
        return cls(platform=settings.default_platform, limits=settings.limits)

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms a trigger starts sessions on, in order (one, or a fan-out)."""
        return (self.platform,) if isinstance(self.platform, str) else self.platform

    def as_yaml(self) -> str:
        data = dataclasses.asdict(self)
        data["platform"] = self.platform if isinstance(self.platform, str) else list(self.platform)
        data["allow_bots"] = list(self.allow_bots)
        data["fallback"] = list(self.fallback)
        return yaml.safe_dump(data, sort_keys=False).strip()


@dataclass(frozen=True)
class Problem:
    key: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "the file"
        return f"`{self.key}` ({where}): {self.message}"


class ConfigError(ValueError):
    """A file with problems. `partial` holds its keys that were valid, so the app can
    still tell whether the delivery was meant for it (e.g. a custom label) and report."""

    def __init__(
        self, source: str, problems: list[Problem], partial: dict[str, Any] | None = None
    ) -> None:
        self.source = source
        self.problems = problems
        self.partial = partial or {}
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))


def _check(key: str, value: Any) -> str | None:
    """What is wrong with `value` for `key`, or None."""

    def is_str(v: Any) -> bool:
        return isinstance(v, str) and bool(v.strip())

    if key == "platform":
        if value in PLATFORMS:
            return None
        if (
            isinstance(value, list)
            and value
            and all(v in PLATFORMS for v in value)
            and len(set(value)) == len(value)
        ):
            return None
        return f"must be one of {', '.join(PLATFORMS)}, or a list of them without repeats"
    if key == "label":
        return None if is_str(value) and len(value) <= 50 else "must be a label name (text)"
    if key == "command":
        if isinstance(value, str) and _COMMAND.match(value):
            return None
        return "must be a slash command such as /tembo (a slash, then letters, digits, - or _)"
    if key in ("agent", "target_branch"):
        if value is None or is_str(value):
            return None
        return "must be text, or null for the default"
    if key == "branch_name":
        if not is_str(value):
            return "must be a branch name template such as tembo/{number}-{slug}"
        try:
            rendered = value.format(number=1, slug="x", login="y")
        except (KeyError, IndexError, ValueError):
            return f"may only use the fields {{{'}, {'.join(TEMPLATE_FIELDS)}}}"
        if _BRANCH_FORBIDDEN.search(rendered):
            return "does not make a valid git branch name"
        return None
    if key == "min_permission":
        return None if value in PERMISSIONS else f"must be one of {', '.join(PERMISSIONS)}"
    if key == "allow_bots":
        if isinstance(value, list) and all(is_str(v) for v in value):
            return None
        return 'must be a list of bot logins, e.g. ["dependabot[bot]"]'
    if key == "include_comments":
        if isinstance(value, bool) or value in INCLUDE_COMMENTS:
            return None
        return f"must be one of {', '.join(INCLUDE_COMMENTS)}"
    if key in ("one_session_per_issue", "pull_requests"):
        return None if isinstance(value, bool) else "must be true or false"
    if key == "limits":
        return _check_limits(value)
    if key == "fallback":
        if isinstance(value, list) and all(v in PLATFORMS for v in value):
            return None
        return "must be a list of platforms from " + ", ".join(PLATFORMS)
    if key == "max_prompt_chars":
        if isinstance(value, int) and not isinstance(value, bool) and 1000 <= value <= 1_000_000:
            return None
        return "must be a whole number from 1000 to 1000000"
    raise AssertionError(key)  # pragma: no cover - keys are checked before


def _check_limits(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"must be a mapping of {', '.join(LIMIT_NAMES)}"
    for name, limit in value.items():
        if name not in LIMIT_NAMES:
            return f"unknown limit {name!r}; known limits: {', '.join(LIMIT_NAMES)}"
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 0
        ):
            return f"`{name}` must be a whole number (0 or more), or null for no limit"
    return None


KEYS = tuple(f.name for f in dataclasses.fields(RepoConfig))


def parse_layer(text: str, source: str) -> dict[str, Any]:
    """The validated keys of one file. Raises `ConfigError` listing every problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [Problem("(yaml)", line, f"not valid YAML: {problem}")]) from None
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        return {}
    if not isinstance(node, yaml.MappingNode):
        line = node.start_mark.line + 1
        raise ConfigError(source, [Problem("(file)", line, "must be a mapping of key: value")])
    problems: list[Problem] = []
    layer: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        line = key_node.start_mark.line + 1
        if key not in KEYS:
            problems.append(Problem(str(key), line, f"unknown key; known keys: {', '.join(KEYS)}"))
            continue
        try:
            value = yaml.safe_load(yaml.serialize(value_node))
        except yaml.YAMLError as exc:  # pragma: no cover - compose already parsed it
            problems.append(Problem(key, line, str(exc)))
            continue
        error = _check(key, value)
        if error:
            problems.append(Problem(key, line, f"{error} (got {value!r})"))
            continue
        if key in ("allow_bots", "fallback"):
            value = tuple(value)
        elif key == "platform" and isinstance(value, list):
            value = value[0] if len(value) == 1 else tuple(value)
        elif key == "include_comments" and isinstance(value, bool):
            value = "all" if value else "none"
        layer[key] = value
    if problems:
        raise ConfigError(source, problems, layer)
    return layer


# Limits counted across the whole organisation (a person's day counts every repository):
# a repository's own file may lower them but never raise them.
ORG_WIDE_LIMITS = ("per_org_per_day", "per_user_per_day")


def merge(
    base: RepoConfig, *layers: dict[str, Any], own: dict[str, Any] | None = None
) -> RepoConfig:
    """`base` with each layer's keys applied in order (later wins), then `own`, the
    repository's own file: it may lower the organisation-wide limits (`ORG_WIDE_LIMITS`)
    but never raise one above what the layers under it set (a budget counted across the
    organisation is not one repository's to grow; null there would lift it altogether)."""
    merged: dict[str, Any] = {}
    limits = base.limits
    for layer in layers:
        merged.update(layer)
        # A layer names only the limits it sets; the others come from the layers below.
        limits = dataclasses.replace(limits, **layer.get("limits", {}))
    if own is not None:
        ceilings = {name: getattr(limits, name) for name in ORG_WIDE_LIMITS}
        merged.update(own)
        limits = dataclasses.replace(limits, **own.get("limits", {}))
        capped = {
            name: ceiling if getattr(limits, name) is None else min(getattr(limits, name), ceiling)
            for name, ceiling in ceilings.items()
            if ceiling is not None
        }
        limits = dataclasses.replace(limits, **capped)
    return dataclasses.replace(base, **{**merged, "limits": limits})
