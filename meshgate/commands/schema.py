"""`meshgate schema ...`: a topic owner's schema registry on chain (issue 16).

    schema add TOPIC TYPE FILE [--format json|avro|protobuf] [--message NAME]
    schema list TOPIC [TYPE]            every version, accepted or ignored (with the reason)
    schema show TOPIC TYPE [--version N] the document (default: the newest accepted)
    schema check TOPIC TYPE FILE        validate a data file against the newest accepted version
    schema mode TOPIC MODE              NONE, BACKWARD (default), FORWARD, FULL, *_TRANSITIVE

Chain options as `meshgate owner` (--rpc/--registry/--key-file or MESHGATE_*); only add and
mode sign. The versions are read from the chain's log of the topic (ledger topic_changes) and
judged exactly as every gateway judges them (policy/schemas/compatibility.py, through the
grant view, so each version is judged under the mode it was added in): `add` refuses a
document that does not parse or breaks the topic's mode before anything is sent, naming why.
FILE for protobuf is a serialized FileDescriptorSet (`protoc --include_imports
--descriptor_set_out=F`) and --message names the message events carry. The format defaults
from the file name: .avsc avro, .desc/.pb/.binpb protobuf, anything else json.
A data file for `check`: JSON when its name ends in .json, else the format's binary encoding.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshgate.commands.chain import add_registry_args
from meshgate.errors import CliError
from policy import grant_view as view
from policy.schemas.model import Format, Mode, schema_uri

if TYPE_CHECKING:
    from ledger.registry import RegistryClient
    from policy.schemas.compatibility import Verdict

# web3 (ledger.registry), jsonschema-rs and fastavro load only when a schema command runs.

EXTENSIONS = {".avsc": Format.AVRO, ".desc": Format.PROTOBUF, ".pb": Format.PROTOBUF}
EXTENSIONS[".binpb"] = Format.PROTOBUF


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("schema", help="schemas per topic and event type (on chain)")
    sub = parser.add_subparsers(dest="schema_command", metavar="ACTION")
    sub.required = True

    def action(name: str, help_text: str, *positionals: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        add_registry_args(p)
        for positional in positionals:
            p.add_argument(positional)
        return p

    add = action("add", "add the next version of TYPE's schema on TOPIC", "topic", "type")
    add.add_argument("file", type=Path)
    add.add_argument("--format", choices=[f.label for f in Format])
    add.add_argument("--message", help="protobuf: the message events carry (pkg.Name)")
    add.set_defaults(func=_add)
    listing = action("list", "every version and whether gateways accept it", "topic")
    listing.add_argument("type", nargs="?")
    listing.set_defaults(func=_list)
    show = action("show", "print a version's document", "topic", "type")
    show.add_argument("--version", type=int, help="default: the newest accepted")
    show.set_defaults(func=_show)
    check = action("check", "validate a data file against the newest version", "topic", "type")
    check.add_argument("file", type=Path)
    check.set_defaults(func=_check)
    mode = action("mode", "set the topic's compatibility mode", "topic", "mode")
    mode.set_defaults(func=_mode)


def _client(args: argparse.Namespace, *, signing: bool = False) -> RegistryClient:
    from ledger.registry import RegistryClient
    from meshgate.commands.chain import ledger_config, signer_from

    if not args.registry:
        raise CliError("no registry: pass --registry ADDRESS or set MESHGATE_REGISTRY")
    config = ledger_config(args, registry=args.registry)
    return RegistryClient(config, signer_from(args.key_file) if signing else None)


def chain_view(client: RegistryClient, topic: str) -> view.GrantView:
    """A grant view of `topic`'s schema history, as a gateway following the chain holds it."""
    from ledger import changes as ledger

    owner = client.owner_of(topic)
    if owner is None:
        raise CliError(f"unknown topic {topic!r}")
    grants = view.GrantView()
    grants.apply(view.TopicRegistered(topic=topic, owner=owner, block=0))
    for change in client.topic_changes(topic):
        block = change.position.block
        if isinstance(change, ledger.SchemaAdded):
            grants.apply(
                view.SchemaVersionAdded(
                    topic=topic,
                    event_type=change.event_type,
                    version=change.schema_version,
                    format=change.format,
                    document=change.document,
                    block=block,
                )
            )
        elif isinstance(change, ledger.SchemaCompatibilitySet):
            grants.apply(view.CompatibilitySet(topic=topic, mode=change.mode, block=block))
    return grants


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def document_for(path: Path, fmt: Format, message: str | None) -> bytes:
    raw = _read(path)
    if fmt != Format.PROTOBUF:
        return raw
    if not message:
        raise CliError("a protobuf schema needs --message NAME (the message events carry)")
    from policy.schemas import protobuf

    return protobuf.document(raw, message)


def _add(args: argparse.Namespace) -> int:
    fmt = (
        Format.from_label(args.format)
        if args.format
        else EXTENSIONS.get(args.file.suffix.lower(), Format.JSON)
    )
    from policy.schemas.compatibility import judge

    document = document_for(args.file, fmt, args.message)
    client = _client(args, signing=True)
    grants = chain_view(client, args.topic)
    record = grants.topic(args.topic)
    assert record is not None
    existing = grants.schemas(args.topic, args.type)
    candidate = view.SchemaVersion(len(existing) + 1, int(fmt), document, record.compatibility)
    verdict = judge([*existing, candidate])[-1]
    if not verdict.accepted:
        raise CliError(f"not added: {verdict.reason}")
    tx = client.add_schema(args.topic, args.type, int(fmt), document)
    uri = schema_uri(args.topic, args.type, candidate.version)
    print(f"added {uri} ({fmt.label}): tx {tx.tx_hash} block {tx.block_number}")
    return 0


def _line(topic: str, event_type: str, v: Verdict) -> str:
    fmt = v.format.label if v.format is not None else "?"
    state = "accepted" if v.accepted else f"ignored: {v.reason}"
    return f"{schema_uri(topic, event_type, v.version)}  {fmt}  {state}"


def _list(args: argparse.Namespace) -> int:
    from policy.schemas.compatibility import judge

    grants = chain_view(_client(args), args.topic)
    record = grants.topic(args.topic)
    assert record is not None
    print(f"{args.topic}: compatibility {Mode.of(record.compatibility).name}")
    for event_type in [args.type] if args.type else grants.schema_types(args.topic):
        for verdict in judge(grants.schemas(args.topic, event_type)):
            print(_line(args.topic, event_type, verdict))
    return 0


def _verdicts(args: argparse.Namespace) -> tuple[Verdict, ...]:
    from policy.schemas.compatibility import judge

    verdicts = judge(chain_view(_client(args), args.topic).schemas(args.topic, args.type))
    if not verdicts:
        raise CliError(f"no schema for {args.type!r} on {args.topic!r}")
    return verdicts


def _show(args: argparse.Namespace) -> int:
    from policy.schemas.selection import newest_accepted

    verdicts = _verdicts(args)
    if args.version is None:
        chosen = newest_accepted(verdicts)
        if chosen is None:
            raise CliError(f"no accepted version of {args.type!r} on {args.topic!r}")
    else:
        chosen = next((v for v in verdicts if v.version == args.version), None)
        if chosen is None:
            raise CliError(f"no version {args.version} of {args.type!r} on {args.topic!r}")
    if not chosen.accepted:
        print(f"# ignored by gateways: {chosen.reason}", file=sys.stderr)
    sys.stdout.buffer.write(chosen.document)
    if not chosen.document.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    return 0


def _check(args: argparse.Namespace) -> int:
    from policy.schemas.errors import SchemaError
    from policy.schemas.payload import Payload
    from policy.schemas.selection import newest_accepted

    chosen = newest_accepted(_verdicts(args))
    if chosen is None or chosen.schema is None:
        raise CliError(f"no accepted version of {args.type!r} on {args.topic!r}")
    raw = _read(args.file)
    content_type = "application/json" if args.file.suffix.lower() == ".json" else ""
    payload = Payload(binary=raw, content_type=content_type)
    if chosen.format == Format.JSON:
        payload = Payload(binary=raw, content_type="application/json")
    try:
        chosen.schema.validate(payload)
    except SchemaError as exc:
        raise CliError(
            f"{args.file} does not match {schema_uri(args.topic, args.type, chosen.version)} {exc}"
        ) from None
    print(f"{args.file} matches {schema_uri(args.topic, args.type, chosen.version)}")
    return 0


def _mode(args: argparse.Namespace) -> int:
    mode = Mode.from_label(args.mode)
    tx = _client(args, signing=True).set_schema_compatibility(args.topic, int(mode))
    print(f"{args.topic!r} compatibility {mode.name}: tx {tx.tx_hash} block {tx.block_number}")
    return 0
