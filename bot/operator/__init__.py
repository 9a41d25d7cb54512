"""The operator's side of the app: what a person running it opens or runs, not GitHub.

`setup` registers the GitHub App (manifest flow, behind the setup token printed at start),
`pages` serves the status page and decides what `/` is, `access` says who may see the
operator's pages and `/metrics`, `replay` asks GitHub to redeliver what was lost. Nothing
here takes part in receiving or handling a delivery.
"""
