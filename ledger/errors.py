"""Errors raised by the ledger layer; web3/eth-account exceptions never leave `ledger/`.

LedgerError                      base: every user-facing chain problem
├── ChainUnavailable             node unreachable or timed out (retry may help)
├── WrongChainId                 node answers with another chain id than configured
├── BadAddress                   not a 20-byte hex address, or a bad EIP-55 checksum
├── BadTopicName                 topic name outside the gateway's naming rule
├── ArtifactError                compiled registry artifact missing or malformed
├── KeystoreError                keystore file missing, unreadable, or already exists
│   └── WrongKeyPassword         the password does not decrypt the keystore
├── TransactionFailed            the node refused or reverted a transaction
│   ├── InsufficientFunds        the signer cannot pay for gas
│   └── RegistryRejected         the contract reverted with one of its custom errors
│       ├── NotOwner             caller is not the topic's owner
│       ├── UnknownTopic         nobody registered the topic
│       ├── AlreadyRegistered    the topic already has an owner
│       ├── ExpiryInPast         grant expiry is not in the future
│       ├── NotGranted           revoking a grant that does not exist
│       ├── AlreadyPublisher     allowing a publisher twice
│       ├── NotPublisher         denying someone who is not a publisher
│       ├── ZeroAddress          the zero address as reader/publisher/new owner
│       └── EmptyName            an empty topic name
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger error; the CLI prints it as one line."""


class ChainUnavailable(LedgerError):
    """The chain node could not be reached (connection refused, timeout, dropped socket)."""


class WrongChainId(LedgerError):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"wrong chain id: node reports {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


class BadAddress(LedgerError):
    """Not an Ethereum address, or mixed-case with a wrong EIP-55 checksum."""


class BadTopicName(LedgerError):
    """A topic name the gateway would not accept."""


class ArtifactError(LedgerError):
    """The compiled contract artifact is missing or malformed (run `make contracts`)."""


class KeystoreError(LedgerError):
    """A keystore file problem other than a wrong password."""


class WrongKeyPassword(KeystoreError):
    """The password does not decrypt this keystore."""


class TransactionFailed(LedgerError):
    """The node refused the transaction or it reverted."""


class InsufficientFunds(TransactionFailed):
    """The sending account cannot pay for gas."""


class RegistryRejected(TransactionFailed):
    """The registry contract reverted with a custom error; `args_` holds its decoded arguments."""

    error_name = ""

    def __init__(self, message: str, args_: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.args_ = args_


class NotOwner(RegistryRejected):
    error_name = "NotOwner"


class UnknownTopic(RegistryRejected):
    error_name = "UnknownTopic"


class AlreadyRegistered(RegistryRejected):
    error_name = "AlreadyRegistered"


class ExpiryInPast(RegistryRejected):
    error_name = "ExpiryInPast"


class NotGranted(RegistryRejected):
    error_name = "NotGranted"


class AlreadyPublisher(RegistryRejected):
    error_name = "AlreadyPublisher"


class NotPublisher(RegistryRejected):
    error_name = "NotPublisher"


class ZeroAddress(RegistryRejected):
    error_name = "ZeroAddress"


class EmptyName(RegistryRejected):
    error_name = "EmptyName"


class ZeroKey(RegistryRejected):
    error_name = "ZeroKey"


class NotEncrypted(RegistryRejected):
    error_name = "NotEncrypted"


class BadEpoch(RegistryRejected):
    error_name = "BadEpoch"


class EmptyDocument(RegistryRejected):
    error_name = "EmptyDocument"


class UnknownFormat(RegistryRejected):
    error_name = "UnknownFormat"


class UnknownMode(RegistryRejected):
    error_name = "UnknownMode"


REJECTIONS: dict[str, type[RegistryRejected]] = {
    cls.error_name: cls
    for cls in (
        NotOwner,
        UnknownTopic,
        AlreadyRegistered,
        ExpiryInPast,
        NotGranted,
        AlreadyPublisher,
        NotPublisher,
        ZeroAddress,
        EmptyName,
        ZeroKey,
        NotEncrypted,
        BadEpoch,
        EmptyDocument,
        UnknownFormat,
        UnknownMode,
    )
}
