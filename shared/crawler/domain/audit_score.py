"""The audit score: 0..100, higher is safer, from GoPlus token-security flags.

Start at 100, subtract the penalty of every risk the provider reports, add the trust
bonus, clamp to 0..100 and round to 0.01 (half up). A flag the provider did not report
(missing key, ``""``) is **unknown**: it costs nothing but is listed in ``unknown_flags``
so a reader knows the score rests on less evidence. Hard stops set the score to 0
whatever else is true. The same table is in docs/audit-score.md.

EVM (``/api/v1/token_security/{chain_id}``; flags are "1"/"0"):

| rule                          | when                                        | points          |
|-------------------------------|---------------------------------------------|-----------------|
| is_honeypot                   | is_honeypot = 1                             | score = 0       |
| sell_tax_100                  | sell_tax >= 1 (100 %: cannot sell)          | score = 0       |
| cannot_sell_all               | cannot_sell_all = 1                         | -30             |
| owner_change_balance          | owner_change_balance = 1                    | -20             |
| not_open_source               | is_open_source = 0                          | -25             |
| hidden_owner                  | hidden_owner = 1                            | -15             |
| can_take_back_ownership       | can_take_back_ownership = 1                 | -15             |
| selfdestruct                  | selfdestruct = 1                            | -15             |
| cannot_buy                    | cannot_buy = 1                              | -15             |
| is_mintable                   | is_mintable = 1                             | -10             |
| is_proxy                      | is_proxy = 1                                | -10             |
| transfer_pausable             | transfer_pausable = 1                       | -10             |
| is_blacklisted                | is_blacklisted = 1                          | -10             |
| slippage_modifiable           | slippage_modifiable = 1                     | -10             |
| honeypot_with_same_creator    | honeypot_with_same_creator >= 1             | -10             |
| personal_slippage_modifiable  | personal_slippage_modifiable = 1            | -5              |
| external_call                 | external_call = 1                           | -5              |
| trading_cooldown              | trading_cooldown = 1                        | -5              |
| buy_tax                       | buy_tax fraction t                          | -100·t, max -20 |
| sell_tax                      | sell_tax fraction t (< 1)                   | -100·t, max -30 |
| holder_concentration          | top-10 share C of holders (see below)       | -20·clamp((C-0.2)/0.5, 0, 1) |
| lp_unlocked                   | locked share L of LP (lp_holders)           | -15·(1-L)       |
| trust_list                    | trust_list = 1                              | +10             |

Solana (``/api/v1/solana/token_security``; ``{status: "0"/"1", authority: [...]}`` objects):

| rule                              | when                                            | points    |
|-----------------------------------|-------------------------------------------------|-----------|
| non_transferable                  | non_transferable = 1                            | score = 0 |
| balance_mutable_authority         | balance_mutable_authority.status = 1            | -30       |
| default_account_frozen            | default_account_state = 2 (accounts start frozen)| -30      |
| malicious_authority               | any authority has malicious_address = 1         | -30       |
| freezable                         | freezable.status = 1                            | -20       |
| mintable                          | mintable.status = 1                             | -15       |
| transfer_hook                     | transfer_hook is non-empty (custom program code)| -15       |
| closable                          | closable.status = 1                             | -10       |
| transfer_hook_upgradable          | transfer_hook_upgradable.status = 1             | -10       |
| transfer_fee                      | transfer_fee is non-empty                       | -5        |
| transfer_fee_upgradable           | transfer_fee_upgradable.status = 1              | -5        |
| default_account_state_upgradable  | default_account_state_upgradable.status = 1     | -5        |
| metadata_mutable                  | metadata_mutable.status = 1                     | -5        |
| holder_concentration              | as for EVM                                      | as EVM    |
| trusted_token                     | trusted_token = 1                               | +10       |

Holder concentration C: the summed ``percent`` (a fraction) of the first 10 ``holders``,
leaving out locked holdings (``is_locked = 1``), burn addresses and, on EVM, contracts
(``is_contract = 1``: pools, bridges, lockers). C <= 20 % costs nothing; 70 % or more
costs the full 20. LP lock share L: summed ``percent`` of ``lp_holders`` that are locked
or burn addresses; no ``lp_holders`` (or an empty list) is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.errors import BadWireValue
from shared.wire import as_dict, as_list, text, to_fraction, to_int

MAX_SCORE = Decimal(100)
SCORE_STEP = Decimal("0.01")
HARD_STOP = MAX_SCORE

EVM_FLAG_PENALTIES: dict[str, Decimal] = {
    "cannot_sell_all": Decimal(30),
    "owner_change_balance": Decimal(20),
    "hidden_owner": Decimal(15),
    "can_take_back_ownership": Decimal(15),
    "selfdestruct": Decimal(15),
    "cannot_buy": Decimal(15),
    "is_mintable": Decimal(10),
    "is_proxy": Decimal(10),
    "transfer_pausable": Decimal(10),
    "is_blacklisted": Decimal(10),
    "slippage_modifiable": Decimal(10),
    "personal_slippage_modifiable": Decimal(5),
    "external_call": Decimal(5),
    "trading_cooldown": Decimal(5),
}
NOT_OPEN_SOURCE_PENALTY = Decimal(25)
SAME_CREATOR_HONEYPOT_PENALTY = Decimal(10)
BUY_TAX_CAP = Decimal(20)
SELL_TAX_CAP = Decimal(30)
TRUST_BONUS = Decimal(10)

CONCENTRATION_MAX_PENALTY = Decimal(20)
CONCENTRATION_FREE = Decimal("0.20")  # a top-10 share up to this costs nothing
CONCENTRATION_SPAN = Decimal("0.50")  # ... and the full penalty is reached at FREE + SPAN
TOP_HOLDERS = 10
LP_UNLOCKED_MAX_PENALTY = Decimal(15)

SOLANA_AUTHORITY_PENALTIES: dict[str, Decimal] = {
    "balance_mutable_authority": Decimal(30),
    "freezable": Decimal(20),
    "mintable": Decimal(15),
    "closable": Decimal(10),
    "transfer_hook_upgradable": Decimal(10),
    "transfer_fee_upgradable": Decimal(5),
    "default_account_state_upgradable": Decimal(5),
    "metadata_mutable": Decimal(5),
}
DEFAULT_ACCOUNT_FROZEN_PENALTY = Decimal(30)
MALICIOUS_AUTHORITY_PENALTY = Decimal(30)
TRANSFER_HOOK_PENALTY = Decimal(15)
TRANSFER_FEE_PENALTY = Decimal(5)
SPL_ACCOUNT_STATE_FROZEN = 2  # Token-2022 default account state: 1 initialized, 2 frozen

BURN_ADDRESSES = frozenset(
    {
        "0x0000000000000000000000000000000000000000",
        "0x000000000000000000000000000000000000dead",
        "0xdead000000000000000042069420694206942069",
        "1nc1nerator11111111111111111111111111111111",
    }
)


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """A score with its explanation."""

    score: Decimal
    penalties: tuple[tuple[str, Decimal], ...]  # (rule, points subtracted); negative = bonus
    unknown_flags: tuple[str, ...]


def flag(value: Any) -> bool | None:
    """A GoPlus capability flag: "1"/1 -> True, "0"/0 -> False, anything else unknown (None)."""
    if isinstance(value, bool):
        return value
    try:
        number = to_int(value, "flag")
    except BadWireValue:  # 1e400 is neither 1 nor 0
        return None
    if number == 1:
        return True
    if number == 0:
        return False
    return None


class _Tally:
    def __init__(self) -> None:
        self.penalties: list[tuple[str, Decimal]] = []
        self.unknown: list[str] = []
        self.hard_stop = False

    def add(self, rule: str, points: Decimal) -> None:
        if points:
            self.penalties.append((rule, points))

    def stop(self, rule: str) -> None:
        self.hard_stop = True
        self.penalties.append((rule, HARD_STOP))

    def result(self) -> ScoreResult:
        if self.hard_stop:
            score = Decimal(0)
        else:
            score = MAX_SCORE - sum((p for _, p in self.penalties), Decimal(0))
            score = min(MAX_SCORE, max(Decimal(0), score))
        return ScoreResult(
            score.quantize(SCORE_STEP, rounding=ROUND_HALF_UP),
            tuple(self.penalties),
            tuple(dict.fromkeys(self.unknown)),
        )


def _holder_concentration(holders: Any, *, address_key: str, exclude_contracts: bool) -> Decimal | None:
    entries = [as_dict(h) for h in as_list(holders)][:TOP_HOLDERS]
    if not entries:
        return None
    share = Decimal(0)
    for holder in entries:
        address = (text(holder.get(address_key)) or "").lower()
        if flag(holder.get("is_locked")) or address in BURN_ADDRESSES:
            continue
        if exclude_contracts and flag(holder.get("is_contract")):
            continue
        share += to_fraction(holder.get("percent"), "percent") or Decimal(0)
    return share


def _concentration_penalty(share: Decimal) -> Decimal:
    scaled = (share - CONCENTRATION_FREE) / CONCENTRATION_SPAN
    return CONCENTRATION_MAX_PENALTY * min(Decimal(1), max(Decimal(0), scaled))


def _score_holders(tally: _Tally, entry: dict[str, Any], *, address_key: str, exclude_contracts: bool) -> None:
    share = _holder_concentration(entry.get("holders"), address_key=address_key, exclude_contracts=exclude_contracts)
    if share is None:
        tally.unknown.append("holders")
    else:
        tally.add("holder_concentration", _concentration_penalty(share))


def score_evm(entry: dict[str, Any]) -> ScoreResult:
    """Score an EVM ``token_security`` result entry (see the module table)."""
    entry = as_dict(entry)
    tally = _Tally()
    if flag(entry.get("is_honeypot")):
        tally.stop("is_honeypot")
    elif flag(entry.get("is_honeypot")) is None:
        tally.unknown.append("is_honeypot")

    sell_tax = to_fraction(entry.get("sell_tax"), "sell_tax")
    buy_tax = to_fraction(entry.get("buy_tax"), "buy_tax")
    if sell_tax is not None and sell_tax >= 1:
        tally.stop("sell_tax_100")
    for rule, tax, cap in (("buy_tax", buy_tax, BUY_TAX_CAP), ("sell_tax", sell_tax, SELL_TAX_CAP)):
        if tax is None:
            tally.unknown.append(rule)
        elif tax < 1:
            tally.add(rule, min(cap, tax * 100))

    for name, points in EVM_FLAG_PENALTIES.items():
        value = flag(entry.get(name))
        if value is None:
            tally.unknown.append(name)
        elif value:
            tally.add(name, points)

    open_source = flag(entry.get("is_open_source"))
    if open_source is None:
        tally.unknown.append("is_open_source")
    elif not open_source:
        tally.add("not_open_source", NOT_OPEN_SOURCE_PENALTY)

    same_creator = to_int(entry.get("honeypot_with_same_creator"), "honeypot_with_same_creator")
    if same_creator is None:
        tally.unknown.append("honeypot_with_same_creator")
    elif same_creator > 0:
        tally.add("honeypot_with_same_creator", SAME_CREATOR_HONEYPOT_PENALTY)

    _score_holders(tally, entry, address_key="address", exclude_contracts=True)

    lp_holders = [as_dict(h) for h in as_list(entry.get("lp_holders"))]
    if not lp_holders:
        tally.unknown.append("lp_holders")
    else:
        locked = sum(
            (
                to_fraction(h.get("percent"), "percent") or Decimal(0)
                for h in lp_holders
                if flag(h.get("is_locked")) or (text(h.get("address")) or "").lower() in BURN_ADDRESSES
            ),
            Decimal(0),
        )
        tally.add("lp_unlocked", LP_UNLOCKED_MAX_PENALTY * (1 - min(Decimal(1), locked)))

    if flag(entry.get("trust_list")):
        tally.add("trust_list", -TRUST_BONUS)
    return tally.result()


def _status(entry: dict[str, Any], name: str) -> bool | None:
    return flag(as_dict(entry.get(name)).get("status"))


def _has_malicious_authority(entry: dict[str, Any]) -> bool:
    for value in entry.values():
        obj = as_dict(value)
        for key in ("authority", "metadata_upgrade_authority"):
            if any(flag(as_dict(a).get("malicious_address")) for a in as_list(obj.get(key))):
                return True
    return False


def score_solana(entry: dict[str, Any]) -> ScoreResult:
    """Score a Solana ``token_security`` result entry (see the module table)."""
    entry = as_dict(entry)
    tally = _Tally()
    non_transferable = flag(entry.get("non_transferable"))
    if non_transferable:
        tally.stop("non_transferable")
    elif non_transferable is None:
        tally.unknown.append("non_transferable")

    for name, points in SOLANA_AUTHORITY_PENALTIES.items():
        value = _status(entry, name)
        if value is None:
            tally.unknown.append(name)
        elif value:
            tally.add(name, points)

    state = to_int(entry.get("default_account_state"), "default_account_state")
    if state is None:
        tally.unknown.append("default_account_state")
    elif state == SPL_ACCOUNT_STATE_FROZEN:
        tally.add("default_account_frozen", DEFAULT_ACCOUNT_FROZEN_PENALTY)

    if _has_malicious_authority(entry):
        tally.add("malicious_authority", MALICIOUS_AUTHORITY_PENALTY)

    if "transfer_hook" not in entry:
        tally.unknown.append("transfer_hook")
    elif entry["transfer_hook"]:
        tally.add("transfer_hook", TRANSFER_HOOK_PENALTY)
    if "transfer_fee" not in entry:
        tally.unknown.append("transfer_fee")
    elif entry["transfer_fee"]:
        tally.add("transfer_fee", TRANSFER_FEE_PENALTY)

    _score_holders(tally, entry, address_key="account", exclude_contracts=False)

    if flag(entry.get("trusted_token")):
        tally.add("trusted_token", -TRUST_BONUS)
    return tally.result()
