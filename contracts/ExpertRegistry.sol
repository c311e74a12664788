// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IExpertRegistry} from "./interfaces/IExpertRegistry.sol";
import {IModelApprovals} from "./interfaces/IModelApprovals.sol";
import {IGovernancePath} from "./interfaces/IGovernancePath.sol";
import {PeerIdLib} from "./PeerIdLib.sol";
import {Bounds} from "./utils/Bounds.sol";

/// @dev What a freezer must answer for {ExpertRegistry.setFreezer} to accept it.
interface IFreezerOf {
    function registry() external view returns (address);
}

/// @title ExpertRegistry — staked operators serving expert shards of approved models.
/// @notice One node per operator address. Verified on-chain: the operator's consent (it is the
/// sender), the model approval, the shard ids, the PeerId's format (an identity multihash of an
/// Ed25519 or secp256k1 libp2p key). Stored for off-chain verification: the PeerId key's
/// signature over `bindingMessage(operator, peerId)` (libp2p keys use Ed25519 / sha256-prehashed
/// secp256k1, which the EVM cannot check cheaply). PeerIds are deliberately not unique on-chain:
/// a uniqueness check without the signature check let anyone squat a victim's public PeerId;
/// routers accept only bindings that verify, which a squatter cannot produce. See
/// docs/contracts.md.
contract ExpertRegistry is Ownable, IExpertRegistry {
    using SafeERC20 for IERC20;

    uint256 public constant MAX_SHARDS = 256;
    uint256 public constant MAX_MULTIADDRS = 16;
    uint256 public constant MAX_MULTIADDR_LENGTH = 256;
    bytes32 private constant BINDING_TAG = keccak256("pov.peer-binding.v1");
    /// @dev Unbonding bounds: never so short that a slash cannot reach the stake, never so long
    /// that `block.timestamp + period` nears 2^64 (an `unbond()` that overflows traps the stake).
    uint64 public constant MIN_UNBONDING_PERIOD = 1 hours;
    uint64 public constant MAX_UNBONDING_PERIOD = 365 days;
    /// @dev The longest a freezer can hold an operator's withdrawal in one call.
    uint64 public constant MAX_FREEZE = 30 days;
    /// @dev Unbonding must exceed the governance path by half of it: a slash proposed the moment
    /// an operator starts unbonding executes with that much time to spare (block times drift).
    uint16 public constant UNBONDING_MARGIN_BPS = 5000;

    struct Node {
        uint256 stake;
        uint256 price;
        bytes32 modelId;
        uint64 unbondingEnds;
        uint64 frozenUntil;
        bool registered;
        uint32[] shards;
        bytes peerId;
        string[] multiaddrs;
        bytes peerSignature;
    }

    IERC20 private immutable _token;
    IModelApprovals private immutable _models;
    mapping(address operator => Node) private _nodes;
    /// @dev keccak256(modelId, shard) → operators serving it (bonded registrations only).
    mapping(bytes32 shardKey => address[]) private _shardOperators;
    mapping(bytes32 shardKey => mapping(address operator => uint256)) private _shardPosition; // index + 1
    uint256 private _totalStaked;
    uint256 private _minStake;
    address private _treasury;
    uint64 private _unbondingPeriod;
    /// @dev The governance path (voting delay + period + timelock delay, in seconds) at deployment:
    /// the unbonding period can never be set below it, so a slash proposed when an operator starts
    /// unbonding can execute before it withdraws.
    uint64 private immutable _minUnbonding;
    /// @dev The governor: its path (read live) keeps the unbonding period above it, and it refuses
    /// settings that would lengthen its path past the unbonding period (PovGovernor.bindRegistry).
    IGovernancePath private immutable _governance;
    address private _freezer;

    constructor(
        IERC20 token_,
        IModelApprovals models_,
        address treasury_,
        uint256 minStake_,
        uint64 unbondingPeriod_,
        uint64 minUnbondingPeriod_,
        IGovernancePath governance_,
        address owner_
    ) Ownable(owner_) {
        _token = token_;
        _models = models_;
        Bounds.check(
            "minUnbondingPeriod",
            minUnbondingPeriod_,
            MIN_UNBONDING_PERIOD,
            MAX_UNBONDING_PERIOD
        );
        _minUnbonding = minUnbondingPeriod_;
        _governance = governance_;
        _setTreasury(treasury_);
        _setMinStake(minStake_);
        _setUnbondingPeriod(unbondingPeriod_);
    }

    // ──────────────────────────── operator ───────────────────────────

    /// @inheritdoc IExpertRegistry
    function register(Registration calldata reg, uint256 stake) external {
        _register(reg, stake);
    }

    /// @inheritdoc IExpertRegistry
    function registerWithPermit(
        Registration calldata reg,
        uint256 stake,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        // A front-run permit (same signature used by someone else) must not block registration.
        try
            IERC20Permit(address(_token)).permit(
                msg.sender,
                address(this),
                stake,
                deadline,
                v,
                r,
                s
            )
        {} catch {}
        _register(reg, stake);
    }

    /// @inheritdoc IExpertRegistry
    function updatePrice(uint256 price) external {
        Node storage node = _bonded(msg.sender);
        emit PriceUpdated(msg.sender, node.price, price);
        node.price = price;
    }

    /// @inheritdoc IExpertRegistry
    function updateMultiaddrs(string[] calldata multiaddrs) external {
        Node storage node = _bonded(msg.sender);
        _checkMultiaddrs(multiaddrs);
        _storeMultiaddrs(node, multiaddrs);
        emit MultiaddrsUpdated(msg.sender, multiaddrs);
    }

    /// @inheritdoc IExpertRegistry
    function updateShards(uint32[] calldata shards) external {
        Node storage node = _bonded(msg.sender);
        _checkShards(node.modelId, shards);
        _unindex(msg.sender, node);
        node.shards = shards;
        _index(msg.sender, node);
        emit ShardsUpdated(msg.sender, shards);
    }

    /// @inheritdoc IExpertRegistry
    function addStake(uint256 amount) external {
        if (amount == 0) revert RegistryZeroAmount();
        Node storage node = _bonded(msg.sender);
        uint256 stake = node.stake + amount;
        node.stake = stake;
        _totalStaked += amount;
        emit StakeAdded(msg.sender, amount, stake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IExpertRegistry
    function unbond() external {
        Node storage node = _bonded(msg.sender);
        uint64 ends = uint64(block.timestamp) + _unbondingPeriod;
        node.unbondingEnds = ends;
        _unindex(msg.sender, node);
        emit UnbondingStarted(msg.sender, node.stake, ends);
    }

    /// @inheritdoc IExpertRegistry
    function withdraw() external {
        Node storage node = _nodes[msg.sender];
        if (!node.registered) revert RegistryNotRegistered(msg.sender);
        uint64 ends = node.unbondingEnds;
        if (ends == 0) revert RegistryNotUnbonding(msg.sender);
        if (block.timestamp < ends)
            revert RegistryUnbondingNotOver(msg.sender, ends, block.timestamp);
        uint64 frozen = node.frozenUntil;
        if (block.timestamp < frozen)
            revert RegistryWithdrawalFrozen(msg.sender, frozen, block.timestamp);
        uint256 stake = node.stake;
        delete _nodes[msg.sender];
        _totalStaked -= stake;
        emit StakeWithdrawn(msg.sender, stake);
        if (stake != 0) _token.safeTransfer(msg.sender, stake);
    }

    // ─────────────────────────── governance ──────────────────────────

    /// @inheritdoc IExpertRegistry
    function slash(address operator, uint256 amount, string calldata reason) external onlyOwner {
        if (amount == 0) revert RegistryZeroAmount();
        Node storage node = _nodes[operator];
        uint256 stake = node.stake;
        if (!node.registered || stake == 0) {
            // the operator left (or was slashed to zero) before the proposal executed: reverting
            // would take the proposal's other actions down with it
            emit SlashSkipped(operator, amount, reason);
            return;
        }
        if (amount > stake) amount = stake; // what is left is all there is to take
        unchecked {
            node.stake = stake - amount;
        }
        _totalStaked -= amount;
        emit Slashed(operator, amount, stake - amount, _treasury, reason);
        _token.safeTransfer(_treasury, amount);
    }

    /// @inheritdoc IExpertRegistry
    function setMinStake(uint256 minStake_) external onlyOwner {
        _setMinStake(minStake_);
    }

    /// @inheritdoc IExpertRegistry
    function setUnbondingPeriod(uint64 period) external onlyOwner {
        _setUnbondingPeriod(period);
    }

    /// @inheritdoc IExpertRegistry
    function setTreasury(address treasury_) external onlyOwner {
        _setTreasury(treasury_);
    }

    /// @inheritdoc IExpertRegistry
    function setFreezer(address freezer_) external onlyOwner {
        if (freezer_ != address(0) && !_freezesThis(freezer_))
            revert RegistryInvalidFreezer(freezer_);
        emit FreezerSet(_freezer, freezer_);
        _freezer = freezer_;
    }

    /// @inheritdoc IExpertRegistry
    function freezeWithdrawal(address operator, uint64 until) external {
        if (msg.sender != _freezer) revert RegistryNotFreezer(msg.sender);
        Node storage node = _nodes[operator];
        if (!node.registered) revert RegistryNotRegistered(operator);
        uint256 max = block.timestamp + MAX_FREEZE;
        if (until > max) revert RegistryFreezeTooLong(until, max);
        node.frozenUntil = until;
        emit WithdrawalFrozen(operator, until);
    }

    // ───────────────────────────── views ─────────────────────────────

    /// @inheritdoc IExpertRegistry
    function bindingMessage(address operator, bytes calldata peerId) public view returns (bytes32) {
        return
            keccak256(
                abi.encode(BINDING_TAG, block.chainid, address(this), operator, keccak256(peerId))
            );
    }

    /// @inheritdoc IExpertRegistry
    function isActive(address operator) public view returns (bool) {
        Node storage node = _nodes[operator];
        return
            node.registered &&
            node.unbondingEnds == 0 &&
            node.stake >= _minStake &&
            _models.isApproved(node.modelId);
    }

    /// @inheritdoc IExpertRegistry
    function nodeOf(address operator) public view returns (NodeView memory view_) {
        Node storage node = _nodes[operator];
        if (!node.registered) return view_;
        view_ = NodeView({
            operator: operator,
            modelId: node.modelId,
            shards: node.shards,
            price: node.price,
            stake: node.stake,
            peerId: node.peerId,
            multiaddrs: node.multiaddrs,
            peerSignature: node.peerSignature,
            unbondingEnds: node.unbondingEnds
        });
    }

    /// @inheritdoc IExpertRegistry
    function withdrawalFrozenUntil(address operator) external view returns (uint64) {
        return _nodes[operator].frozenUntil;
    }

    /// @inheritdoc IExpertRegistry
    function freezer() external view returns (address) {
        return _freezer;
    }

    /// @inheritdoc IExpertRegistry
    function minUnbondingPeriod() external view returns (uint64) {
        return _minUnbonding;
    }

    /// @inheritdoc IExpertRegistry
    function unbondingFloor() public view returns (uint64) {
        if (address(_governance) == address(0)) return _minUnbonding;
        uint256 path = _governance.governancePath();
        uint256 floor = path + (path * UNBONDING_MARGIN_BPS) / 10_000;
        if (floor < _minUnbonding) return _minUnbonding;
        return floor > type(uint64).max ? type(uint64).max : uint64(floor);
    }

    /// @inheritdoc IExpertRegistry
    function governance() external view returns (address) {
        return address(_governance);
    }

    /// @inheritdoc IExpertRegistry
    function stakeOf(address operator) external view returns (uint256) {
        return _nodes[operator].stake;
    }

    /// @inheritdoc IExpertRegistry
    function activeNodes(
        bytes32 modelId,
        uint32 shard
    ) external view returns (NodeView[] memory nodes) {
        (address[] memory ops, uint256 n) = _eligible(modelId, shard, type(uint256).max);
        nodes = new NodeView[](n);
        for (uint256 i; i < n; ++i) {
            nodes[i] = nodeOf(ops[i]);
        }
    }

    /// @inheritdoc IExpertRegistry
    function selectNodes(
        bytes32 modelId,
        uint32 shard,
        bytes32 seed,
        uint256 maxPrice,
        uint256 k
    ) external view returns (NodeView[] memory nodes) {
        (address[] memory ops, uint256 n) = _eligible(modelId, shard, maxPrice);
        if (k > n) k = n;
        uint256[] memory weights = new uint256[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            weights[i] = _nodes[ops[i]].stake;
            total += weights[i];
        }
        nodes = new NodeView[](k);
        // Weighted sampling without replacement: draw r in [0, total), walk the cumulative
        // weights, then remove the chosen node's weight. O(n·k), fine for a view.
        for (uint256 j; j < k; ++j) {
            if (total == 0) {
                // only zero-stake nodes left (possible when governance sets minStake to 0): stop
                assembly ("memory-safe") {
                    mstore(nodes, j)
                }
                break;
            }
            uint256 r = uint256(keccak256(abi.encode(seed, j))) % total;
            uint256 i;
            while (r >= weights[i]) {
                r -= weights[i];
                ++i;
            }
            nodes[j] = nodeOf(ops[i]);
            total -= weights[i];
            weights[i] = 0;
        }
    }

    /// @inheritdoc IExpertRegistry
    function token() external view returns (address) {
        return address(_token);
    }

    /// @inheritdoc IExpertRegistry
    function models() external view returns (address) {
        return address(_models);
    }

    /// @inheritdoc IExpertRegistry
    function minStake() external view returns (uint256) {
        return _minStake;
    }

    /// @inheritdoc IExpertRegistry
    function unbondingPeriod() external view returns (uint64) {
        return _unbondingPeriod;
    }

    /// @inheritdoc IExpertRegistry
    function treasury() external view returns (address) {
        return _treasury;
    }

    /// @inheritdoc IExpertRegistry
    function totalStaked() external view returns (uint256) {
        return _totalStaked;
    }

    // ──────────────────────────── internal ───────────────────────────

    function _register(Registration calldata reg, uint256 stake) private {
        Node storage node = _nodes[msg.sender];
        if (node.registered) revert RegistryAlreadyRegistered(msg.sender);
        if (!_models.isApproved(reg.modelId)) revert RegistryModelNotApproved(reg.modelId);
        if (stake < _minStake) revert RegistryInsufficientStake(msg.sender, stake, _minStake);
        _checkShards(reg.modelId, reg.shards);
        _checkMultiaddrs(reg.multiaddrs);
        if (!PeerIdLib.isSupported(reg.peerId)) revert RegistryInvalidPeerId(reg.peerId);
        // Ed25519 signatures are 64 bytes; libp2p secp256k1 signatures are DER (≤ 72 bytes).
        if (reg.peerSignature.length < 64 || reg.peerSignature.length > 72) {
            revert RegistryInvalidPeerSignature(reg.peerSignature.length);
        }

        node.registered = true;
        node.stake = stake;
        node.price = reg.price;
        node.modelId = reg.modelId;
        node.shards = reg.shards;
        node.peerId = reg.peerId;
        _storeMultiaddrs(node, reg.multiaddrs);
        node.peerSignature = reg.peerSignature;
        _index(msg.sender, node);
        _totalStaked += stake;
        emit NodeRegistered(
            msg.sender,
            reg.modelId,
            reg.shards,
            reg.price,
            stake,
            reg.peerId,
            reg.multiaddrs,
            reg.peerSignature
        );
        _token.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @dev The registered, bonded node of `operator` (reverts otherwise).
    function _bonded(address operator) private view returns (Node storage node) {
        node = _nodes[operator];
        if (!node.registered) revert RegistryNotRegistered(operator);
        if (node.unbondingEnds != 0) revert RegistryIsUnbonding(operator, node.unbondingEnds);
    }

    function _checkShards(bytes32 modelId, uint32[] calldata shards) private view {
        uint256 n = shards.length;
        if (n == 0) revert RegistryNoShards();
        if (n > MAX_SHARDS) revert RegistryTooManyShards(n, MAX_SHARDS);
        uint16 shardCount = _models.modelInfo(modelId).shardCount;
        for (uint256 i; i < n; ++i) {
            uint32 shard = shards[i];
            if (shard >= shardCount) revert RegistryInvalidShard(modelId, shard, shardCount);
            if (i != 0 && shard <= shards[i - 1])
                revert RegistryShardsNotIncreasing(shards[i - 1], shard);
        }
    }

    function _checkMultiaddrs(string[] calldata multiaddrs) private pure {
        uint256 n = multiaddrs.length;
        if (n == 0) revert RegistryNoMultiaddrs();
        if (n > MAX_MULTIADDRS) revert RegistryTooManyMultiaddrs(n, MAX_MULTIADDRS);
        for (uint256 i; i < n; ++i) {
            uint256 len = bytes(multiaddrs[i]).length;
            if (len == 0 || len > MAX_MULTIADDR_LENGTH) revert RegistryInvalidMultiaddr(i, len);
        }
    }

    /// @dev The old code generator cannot copy string[] from calldata to storage in one go.
    function _storeMultiaddrs(Node storage node, string[] calldata multiaddrs) private {
        delete node.multiaddrs;
        for (uint256 i; i < multiaddrs.length; ++i) {
            node.multiaddrs.push(multiaddrs[i]);
        }
    }

    function _shardKey(bytes32 modelId, uint32 shard) private pure returns (bytes32) {
        return keccak256(abi.encode(modelId, shard));
    }

    function _index(address operator, Node storage node) private {
        uint32[] storage shards = node.shards;
        for (uint256 i; i < shards.length; ++i) {
            bytes32 key = _shardKey(node.modelId, shards[i]);
            _shardOperators[key].push(operator);
            _shardPosition[key][operator] = _shardOperators[key].length;
        }
    }

    function _unindex(address operator, Node storage node) private {
        uint32[] storage shards = node.shards;
        for (uint256 i; i < shards.length; ++i) {
            bytes32 key = _shardKey(node.modelId, shards[i]);
            address[] storage list = _shardOperators[key];
            uint256 pos = _shardPosition[key][operator];
            address last = list[list.length - 1];
            list[pos - 1] = last;
            _shardPosition[key][last] = pos;
            list.pop();
            delete _shardPosition[key][operator];
        }
    }

    /// @dev Active operators of (modelId, shard) priced ≤ maxPrice, in registration-list order,
    /// compacted into the first `n` slots of `ops`.
    function _eligible(
        bytes32 modelId,
        uint32 shard,
        uint256 maxPrice
    ) private view returns (address[] memory ops, uint256 n) {
        address[] storage list = _shardOperators[_shardKey(modelId, shard)];
        ops = new address[](list.length);
        if (!_models.isApproved(modelId)) return (ops, 0);
        uint256 min = _minStake;
        for (uint256 i; i < list.length; ++i) {
            Node storage node = _nodes[list[i]];
            if (node.stake >= min && node.price <= maxPrice) ops[n++] = list[i];
        }
    }

    function _setMinStake(uint256 minStake_) private {
        emit MinStakeSet(_minStake, minStake_);
        _minStake = minStake_;
    }

    function _setUnbondingPeriod(uint64 period) private {
        Bounds.check("unbondingPeriod", period, unbondingFloor(), MAX_UNBONDING_PERIOD);
        emit UnbondingPeriodSet(_unbondingPeriod, period);
        _unbondingPeriod = period;
    }

    /// @dev A freezer must be a contract that names this registry as the one it freezes.
    function _freezesThis(address freezer_) private view returns (bool) {
        if (freezer_.code.length == 0) return false;
        try IFreezerOf(freezer_).registry() returns (address r) {
            return r == address(this);
        } catch {
            return false;
        }
    }

    function _setTreasury(address treasury_) private {
        if (treasury_ == address(0)) revert RegistryInvalidTreasury(treasury_);
        emit TreasurySet(_treasury, treasury_);
        _treasury = treasury_;
    }

    // ──────────────────────────── paging ─────────────────────────────

    /// @inheritdoc IExpertRegistry
    function activeNodesPage(
        bytes32 modelId,
        uint32 shard,
        uint256 offset,
        uint256 limit
    ) external view returns (NodeView[] memory nodes, uint256 total) {
        address[] storage list = _shardOperators[_shardKey(modelId, shard)];
        total = list.length;
        if (offset >= total || !_models.isApproved(modelId)) return (nodes, total);
        uint256 end = total - offset < limit ? total : offset + limit;
        nodes = new NodeView[](end - offset);
        uint256 n;
        uint256 min = _minStake;
        for (uint256 i = offset; i < end; ++i) {
            if (_nodes[list[i]].stake >= min) nodes[n++] = nodeOf(list[i]);
        }
        assembly ("memory-safe") {
            mstore(nodes, n)
        }
    }
}
