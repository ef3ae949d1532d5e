"""Chain access for meshgate: the registry contract client, its change follower, keys.

Knows nothing of events or gateways. Modules: `registry` (typed client), `follower`
(ordered registry changes + `Synced` checkpoints), `keys` (keystores), `devchain` (local
Ganache), `errors` (the `LedgerError` tree; web3 exceptions never leave this package).
"""
