"""Who may read or write what, from the registry's facts; Sign-In with Ethereum; the audit log.

Pure cores: `grant_view` (the local registry view), `decision` (Allow / Deny / Pause),
`stream_gate` (per-stream state), `identity` + `sessions` (proof checking), `audit_chain`.
I/O shells: `audit` (the log file), `signin` (client-side signing, key files).
`access_policy.AccessPolicy` ties them together for a gateway (gateway/registry_access.py).
"""
