"""Errors of the federation layer.

FederationError                 base: the CLI prints it as one line
├── CertificateError            a certificate or key is missing, malformed or not from our CA
├── SignatureError              an event's origin signature or inclusion proof does not verify
├── OriginNotYetKnown           a batch carries an origin we have not learnt (refused, resent)
├── AdmissionPaused             the host cannot judge a batch's publishers now (refused, resent)
├── LocalProtocolError          we broke the link protocol (LinkProtocol; a bug on our side)
├── PeerProtocolError           the peer broke the link protocol or sent bytes that do not decode
│                               (LinkProtocol turns it into CloseLink(PROTOCOL_VIOLATION))
├── PeerUnavailable             the stream broke (link.py's transports, from AioRpcError)
└── ReadRewind                  not a failure: a peer must be re-sent from its persisted
                                cursor (federation/catch_up.py); the link drains, reconnects

None of them reaches a client of the gateway: they close one link, which is redialed.
"""

from __future__ import annotations


class FederationError(Exception):
    """Base of every federation error."""


class CertificateError(FederationError):
    """A certificate or key is missing, malformed, or not issued by the federation's CA."""


class SignatureError(FederationError):
    """An event's origin signature or Merkle inclusion proof does not verify."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class OriginNotYetKnown(FederationError):
    """A batch carries events of a region whose certificate we have not learnt yet.

    Not the peer's fault (membership gossip may simply lag the events): the batch is refused
    whole, unacknowledged, so the peer resends it after the link is re-established, by which
    time the Hello's member list names the origin. Dropping it would lose events.
    """


class AdmissionPaused(FederationError):
    """The host cannot decide now whether a batch's publishers may publish (its view of the
    registry is stale): the batch is refused whole, unacknowledged, and resent later, like
    OriginNotYetKnown. Raised by the host's EventAdmission (gateway/publishers.py)."""


class LocalProtocolError(FederationError):
    """We were asked to do something the link protocol does not allow in this state."""


class PeerProtocolError(FederationError):
    """The peer sent something the link protocol does not allow."""


class PeerUnavailable(FederationError):
    """The peer could not be reached, or its stream broke."""


class ReadRewind(FederationError):
    """A topic routed to a peer again has a gap this link already read past (see
    federation/catch_up.py): nothing of the read is sent; the link drains and reconnects, and
    the new link reads from the persisted cursor, which is held at the gap."""
