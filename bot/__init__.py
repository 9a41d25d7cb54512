"""tembo-dispatch: a GitHub App that turns issues into coding-agent sessions."""

__version__ = "0.1.0"
