"""The batch frames (gateway/jetstream_frames.py) are byte for byte what nats-py sends for the
same publish, so bypassing its per-call `publish` changes nothing on the wire."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from nats.protocol import command

from gateway.jetstream_frames import hpub, pub

tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-~", min_size=1, max_size=12)
subjects = st.lists(tokens, min_size=1, max_size=5).map(".".join)
names = st.sampled_from(
    ["Mg-Offset", "Mg-Origin", "Nats-Batch-Id", "Nats-Expected-Last-Subject-Sequence"]
)
values = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.+/=", min_size=1, max_size=40)


def nats_py_header_block(headers: dict[str, str]) -> bytes:
    """nats-py 2.16's header framing in `Client._send_publish`, for values without CR/LF."""
    block = bytearray(b"NATS/1.0\r\n")
    for key, value in headers.items():
        block.extend(key.strip().encode() + b": " + value.strip().encode() + b"\r\n")
    return bytes(block + b"\r\n")


@given(subjects, st.dictionaries(names, values, min_size=1), st.binary(max_size=300))
def test_an_hpub_frame_is_what_nats_py_sends(
    subject: str, headers: dict[str, str], payload: bytes
) -> None:
    expected = command.hpub_cmd(subject, "", nats_py_header_block(headers), payload)
    assert hpub(subject, headers, payload) == expected


@given(subjects, st.binary(max_size=50))
def test_a_pub_frame_is_what_nats_py_sends(subject: str, payload: bytes) -> None:
    assert pub(subject, payload) == command.pub_cmd(subject, "", payload)
