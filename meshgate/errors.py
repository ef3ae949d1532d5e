"""Errors of the command line and the process assembly.

    MeshgateError           base: the CLI prints it as one line, exit status 1
    ├── CliError            a command's input is wrong (a file, a flag's value)
    ├── SettingsError       the gateway's settings (file, environment, flags) do not add up
    ├── DevChainError       the local development chain (Ganache) could not start or answer
    ├── KeyCustodyError     an owner's key flow of an encrypted topic cannot go on (issue 12)
    └── EncryptionUnavailable  a client cannot seal for an encrypted topic: nothing was sent

Errors of the layers below (`GatewayError`, `LedgerError`, `PolicyError`, `FederationError`)
are printed the same way; only bugs show a traceback.
"""

from __future__ import annotations


class MeshgateError(Exception):
    """Base of the errors raised by `meshgate/` itself."""


class CliError(MeshgateError):
    """A user-facing error of a command: printed as one line, exit code 1."""


class SettingsError(MeshgateError):
    """The gateway's settings are missing, contradictory or malformed."""


class DevChainError(MeshgateError):
    """The local development chain (Ganache) could not be started, or a dev-only call failed."""


class KeyCustodyError(MeshgateError):
    """An owner's key flow (rotate, re-issue, recover) of an encrypted topic cannot go on."""


class EncryptionUnavailable(MeshgateError):
    """A client cannot publish to an encrypted topic safely (no chain, no usable key set for
    the current epoch, the chain does not answer): it sends nothing
    (meshgate/client/encryption.py)."""
