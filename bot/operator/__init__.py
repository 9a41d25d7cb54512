"""What an operator runs beside the app: setup, check and their kind. Reads settings,
talks to GitHub through `bot.adapters.github`, never decides about issues."""
