// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title MeshgateRegistry: who owns a topic, who may read it, who may publish to it.
/// @notice Anyone registers a topic name and becomes its owner. Only the current owner changes
/// a topic: transfers it, grants/revokes read access (optionally expiring), allows/denies
/// publishers. Nobody else can, the deployer included: this contract has no admin. The owner
/// always reads and publishes its own topic with no grant (`canRead`, `canPublish`; gateways agree).
/// Every change bumps the topic's version and emits one event carrying the topic key
/// (keccak256 of the name, indexed), the name, the affected address (indexed) and the new version.
/// Grants and publishers are kept enumerable on chain so a client can list them without logs.
/// The topic-name syntax is checked off chain (Python); on chain a name only has to be non-empty.
///
/// Encrypted topics (issue 12): the owner registers a topic as encrypted; its data keys live in
/// owner-signed key sets that travel through the mesh, and the chain records each key set's
/// epoch and hash, so no gateway can forge or swap one. Accounts announce the X25519 public key
/// that key sets are sealed to, from the account itself (the transaction is the binding).
///
/// Schemas (issue 16): the owner adds schema versions per (topic, CloudEvents type); the
/// documents live on chain (they are small), so every region reads the same versions. The
/// compatibility mode is per topic; the chain cannot judge compatibility, so every gateway and
/// the CLI apply the same deterministic check and ignore a version that breaks the mode.
contract MeshgateRegistry {
    struct Topic {
        address owner;
        uint64 version;
        uint64 keyEpoch; // encrypted topics: the newest key-set epoch; 0 before the first
        bool encrypted;
        uint8 compatibility; // schema compatibility mode (see SCHEMA_MODES below)
        string name;
    }

    struct Schema {
        uint8 format; // 1 JSON Schema, 2 Avro, 3 Protobuf descriptor set
        bytes document;
    }

    struct Grant {
        uint64 expiresAt; // unix seconds; 0 = never expires
        uint64 grantedAt; // block timestamp of the latest grant
        uint64 index; // 1-based position in readers[topic]; 0 = no grant
    }

    mapping(bytes32 => Topic) private topics;
    mapping(bytes32 => mapping(address => Grant)) private grants;
    mapping(bytes32 => address[]) private readers;
    mapping(bytes32 => mapping(address => uint256)) private publisherIndex; // 1-based
    mapping(bytes32 => address[]) private publishers;
    mapping(address => bytes32) private encryptionKeys; // X25519 public keys
    mapping(bytes32 => mapping(bytes32 => uint64)) private keySetEpochs; // topic => hash => epoch
    // topic => keccak256(type) => versions (version n is index n - 1)
    mapping(bytes32 => mapping(bytes32 => Schema[])) private schemas;

    /// Compatibility modes: 0 NONE, 1 BACKWARD (the default), 2 BACKWARD_TRANSITIVE,
    /// 3 FORWARD, 4 FORWARD_TRANSITIVE, 5 FULL, 6 FULL_TRANSITIVE.
    uint8 public constant SCHEMA_MODES = 7;
    uint8 public constant SCHEMA_FORMATS = 3;

    error EmptyName();
    error AlreadyRegistered(bytes32 topic, address owner);
    error UnknownTopic(bytes32 topic);
    error NotOwner(bytes32 topic, address caller);
    error ZeroAddress();
    error ExpiryInPast(uint64 expiresAt, uint256 nowTimestamp);
    error NotGranted(bytes32 topic, address reader);
    error AlreadyPublisher(bytes32 topic, address publisher);
    error NotPublisher(bytes32 topic, address publisher);
    error ZeroKey();
    error NotEncrypted(bytes32 topic);
    error BadEpoch(bytes32 topic, uint64 epoch, uint64 currentEpoch);
    error EmptyDocument();
    error UnknownFormat(uint8 format);
    error UnknownMode(uint8 mode);

    event TopicRegistered(
        bytes32 indexed topic,
        address indexed owner,
        string name,
        bool encrypted,
        uint64 version
    );
    event OwnershipTransferred(
        bytes32 indexed topic,
        address indexed newOwner,
        address indexed previousOwner,
        string name,
        uint64 version
    );
    event AccessGranted(
        bytes32 indexed topic,
        address indexed reader,
        string name,
        uint64 expiresAt,
        uint64 version
    );
    event AccessRevoked(bytes32 indexed topic, address indexed reader, string name, uint64 version);
    event PublisherAllowed(
        bytes32 indexed topic,
        address indexed publisher,
        string name,
        uint64 version
    );
    event PublisherDenied(
        bytes32 indexed topic,
        address indexed publisher,
        string name,
        uint64 version
    );

    event EncryptionKeyAnnounced(address indexed account, bytes32 publicKey);
    event KeySetPublished(
        bytes32 indexed topic,
        string name,
        uint64 epoch,
        bytes32 keySetHash,
        uint64 version
    );
    event SchemaAdded(
        bytes32 indexed topic,
        string name,
        string eventType,
        uint64 schemaVersion,
        uint8 format,
        bytes document,
        uint64 version
    );
    event SchemaCompatibilitySet(bytes32 indexed topic, string name, uint8 mode, uint64 version);

    modifier onlyOwner(string calldata name) {
        bytes32 key = keccak256(bytes(name));
        address owner = topics[key].owner;
        if (owner == address(0)) revert UnknownTopic(key);
        if (owner != msg.sender) revert NotOwner(key, msg.sender);
        _;
    }

    // ---- changes -------------------------------------------------------------------------

    function register(string calldata name) external {
        _register(name, false);
    }

    /// @notice Register a topic whose data only ever travels encrypted (issue 12).
    function registerEncrypted(string calldata name) external {
        _register(name, true);
    }

    function _register(string calldata name, bool encrypted) private {
        if (bytes(name).length == 0) revert EmptyName();
        bytes32 key = keccak256(bytes(name));
        Topic storage t = topics[key];
        if (t.owner != address(0)) revert AlreadyRegistered(key, t.owner);
        t.owner = msg.sender;
        t.version = 1;
        t.name = name;
        t.encrypted = encrypted;
        t.compatibility = 1;
        emit TopicRegistered(key, msg.sender, name, encrypted, 1);
    }

    function transferOwnership(string calldata name, address newOwner) external onlyOwner(name) {
        if (newOwner == address(0)) revert ZeroAddress();
        bytes32 key = keccak256(bytes(name));
        Topic storage t = topics[key];
        address previous = t.owner;
        t.owner = newOwner;
        emit OwnershipTransferred(key, newOwner, previous, name, _bump(t));
    }

    /// @notice Grant (or update) read access; expiresAt = 0 means no expiry.
    function grant(string calldata name, address reader, uint64 expiresAt) external onlyOwner(name) {
        if (reader == address(0)) revert ZeroAddress();
        if (expiresAt != 0 && expiresAt <= block.timestamp) {
            revert ExpiryInPast(expiresAt, block.timestamp);
        }
        bytes32 key = keccak256(bytes(name));
        Grant storage g = grants[key][reader];
        if (g.index == 0) {
            readers[key].push(reader);
            g.index = uint64(readers[key].length);
        }
        g.expiresAt = expiresAt;
        g.grantedAt = uint64(block.timestamp);
        emit AccessGranted(key, reader, name, expiresAt, _bump(topics[key]));
    }

    function revoke(string calldata name, address reader) external onlyOwner(name) {
        bytes32 key = keccak256(bytes(name));
        Grant storage g = grants[key][reader];
        if (g.index == 0) revert NotGranted(key, reader);
        address[] storage list = readers[key];
        uint256 slot = g.index - 1;
        address last = list[list.length - 1];
        list[slot] = last;
        grants[key][last].index = uint64(slot + 1);
        list.pop();
        delete grants[key][reader];
        emit AccessRevoked(key, reader, name, _bump(topics[key]));
    }

    function allowPublisher(string calldata name, address publisher) external onlyOwner(name) {
        if (publisher == address(0)) revert ZeroAddress();
        bytes32 key = keccak256(bytes(name));
        if (publisherIndex[key][publisher] != 0) revert AlreadyPublisher(key, publisher);
        publishers[key].push(publisher);
        publisherIndex[key][publisher] = publishers[key].length;
        emit PublisherAllowed(key, publisher, name, _bump(topics[key]));
    }

    function denyPublisher(string calldata name, address publisher) external onlyOwner(name) {
        bytes32 key = keccak256(bytes(name));
        uint256 index = publisherIndex[key][publisher];
        if (index == 0) revert NotPublisher(key, publisher);
        address[] storage list = publishers[key];
        address last = list[list.length - 1];
        list[index - 1] = last;
        publisherIndex[key][last] = index;
        list.pop();
        delete publisherIndex[key][publisher];
        emit PublisherDenied(key, publisher, name, _bump(topics[key]));
    }

    /// @notice Bind an X25519 public key to the calling account (replaces an earlier one).
    function announceKey(bytes32 publicKey) external {
        if (publicKey == bytes32(0)) revert ZeroKey();
        encryptionKeys[msg.sender] = publicKey;
        emit EncryptionKeyAnnounced(msg.sender, publicKey);
    }

    /// @notice Record an owner-signed key set by its hash. `epoch` is the next epoch (a
    /// rotation) or an existing one (the same key sealed to more accounts, e.g. a new grantee).
    function publishKeySet(
        string calldata name,
        uint64 epoch,
        bytes32 keySetHash
    ) external onlyOwner(name) {
        if (keySetHash == bytes32(0)) revert ZeroKey();
        bytes32 key = keccak256(bytes(name));
        Topic storage t = topics[key];
        if (!t.encrypted) revert NotEncrypted(key);
        if (epoch == 0 || epoch > t.keyEpoch + 1) revert BadEpoch(key, epoch, t.keyEpoch);
        if (epoch == t.keyEpoch + 1) t.keyEpoch = epoch;
        keySetEpochs[key][keySetHash] = epoch;
        emit KeySetPublished(key, name, epoch, keySetHash, _bump(t));
    }

    /// @notice Add the next version of the schema for (topic, CloudEvents type).
    function addSchema(
        string calldata name,
        string calldata eventType,
        uint8 format,
        bytes calldata document
    ) external onlyOwner(name) {
        if (format == 0 || format > SCHEMA_FORMATS) revert UnknownFormat(format);
        if (document.length == 0) revert EmptyDocument();
        Schema[] storage versions = schemas[keccak256(bytes(name))][keccak256(bytes(eventType))];
        versions.push(Schema(format, document));
        emit SchemaAdded(
            keccak256(bytes(name)),
            name,
            eventType,
            uint64(versions.length),
            format,
            document,
            _bump(topics[keccak256(bytes(name))])
        );
    }

    function setSchemaCompatibility(string calldata name, uint8 mode) external onlyOwner(name) {
        if (mode >= SCHEMA_MODES) revert UnknownMode(mode);
        bytes32 key = keccak256(bytes(name));
        Topic storage t = topics[key];
        t.compatibility = mode;
        emit SchemaCompatibilitySet(key, name, mode, _bump(t));
    }

    // ---- views ---------------------------------------------------------------------------

    /// @notice The owner, or the zero address for a topic nobody registered.
    function ownerOf(string calldata name) external view returns (address) {
        return topics[keccak256(bytes(name))].owner;
    }

    /// @notice 0 for a topic nobody registered; 1 after registration; +1 per change.
    function versionOf(string calldata name) external view returns (uint64) {
        return topics[keccak256(bytes(name))].version;
    }

    /// @notice True if `reader` owns the topic, or holds a grant that has not expired at this
    /// block. The owner always reads its own topic (gateways apply the same rule).
    function canRead(string calldata name, address reader) external view returns (bool) {
        bytes32 key = keccak256(bytes(name));
        address owner = topics[key].owner;
        if (owner != address(0) && owner == reader) return true;
        Grant storage g = grants[key][reader];
        return g.index != 0 && (g.expiresAt == 0 || block.timestamp < g.expiresAt);
    }

    /// @notice True if `publisher` owns the topic or is an allowed publisher. The owner always
    /// publishes to its own topic (gateways apply the same rule).
    function canPublish(string calldata name, address publisher) external view returns (bool) {
        bytes32 key = keccak256(bytes(name));
        address owner = topics[key].owner;
        if (owner != address(0) && owner == publisher) return true;
        return publisherIndex[key][publisher] != 0;
    }

    /// @notice Grant details: whether one exists (expired or not), its expiry and grant time.
    function grantOf(
        string calldata name,
        address reader
    ) external view returns (bool exists, uint64 expiresAt, uint64 grantedAt) {
        Grant storage g = grants[keccak256(bytes(name))][reader];
        return (g.index != 0, g.expiresAt, g.grantedAt);
    }

    /// @notice Everyone holding a grant (expired ones included until revoked), in no set order.
    function readersOf(string calldata name) external view returns (address[] memory) {
        return readers[keccak256(bytes(name))];
    }

    function publishersOf(string calldata name) external view returns (address[] memory) {
        return publishers[keccak256(bytes(name))];
    }

    function isEncrypted(string calldata name) external view returns (bool) {
        return topics[keccak256(bytes(name))].encrypted;
    }

    /// @notice The newest key-set epoch of an encrypted topic (0 before the first key set).
    function keyEpochOf(string calldata name) external view returns (uint64) {
        return topics[keccak256(bytes(name))].keyEpoch;
    }

    /// @notice The epoch a key set with this hash was published under; 0 = never published.
    function keySetEpochOf(string calldata name, bytes32 keySetHash) external view returns (uint64) {
        return keySetEpochs[keccak256(bytes(name))][keySetHash];
    }

    /// @notice The X25519 public key `account` announced; zero if none.
    function encryptionKeyOf(address account) external view returns (bytes32) {
        return encryptionKeys[account];
    }

    function schemaCompatibilityOf(string calldata name) external view returns (uint8) {
        return topics[keccak256(bytes(name))].compatibility;
    }

    function schemaCount(
        string calldata name,
        string calldata eventType
    ) external view returns (uint64) {
        return uint64(schemas[keccak256(bytes(name))][keccak256(bytes(eventType))].length);
    }

    /// @notice Schema version `schemaVersion` (1-based) of (topic, type).
    function schemaAt(
        string calldata name,
        string calldata eventType,
        uint64 schemaVersion
    ) external view returns (uint8 format, bytes memory document) {
        Schema storage s = schemas[keccak256(bytes(name))][keccak256(bytes(eventType))][
            schemaVersion - 1
        ];
        return (s.format, s.document);
    }

    function _bump(Topic storage t) private returns (uint64) {
        t.version += 1;
        return t.version;
    }
}
