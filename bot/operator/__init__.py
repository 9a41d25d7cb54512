"""The operator's side of the app: what a person running it opens or runs, not GitHub.

`setup` registers the GitHub App (manifest flow, behind the setup token printed at start),
`pages` serves the status page and decides what `/` is, `access` says who may see the
operator's pages and `/metrics`, `check` validates the settings one line each, `replay` asks
GitHub to redeliver what was lost. It reads settings and talks to GitHub through
`bot.adapters.github`; nothing here takes part in receiving or handling a delivery.
"""
