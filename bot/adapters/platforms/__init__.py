"""Session platform adapters, one module each. Which adapter serves which name, with
which variables, is the registry's (`bot/platforms.py`)."""
