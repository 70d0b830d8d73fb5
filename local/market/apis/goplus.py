"""GoPlus token security: EVM /api/v1/token_security/{chain_id} and /api/v1/solana/token_security.

Envelope {code, message, result}; EVM results keyed by the lower-cased address, Solana by the
mint exactly as sent (case-sensitive). Flags are the strings "0"/"1", holder flags integers,
taxes fractions as strings ("0.1" = 10 %), as in the goplus.*.json samples. A missing key means
unknown: closed-source tokens lack most capability flags, wrapped tokens lack owner/dex/LP data.

Choices where GoPlus' behaviour is not recorded: an address GoPlus does not know is left out
of `result` (code 1, possibly `result: {}`); an unsupported chain is HTTP 200 with code 2018;
a missing `contract_addresses` is code 5006. A rate limit is HTTP 200 with code 4029, as
observed in public repositories, so clients must check `code`, not only the HTTP status.
"""

from __future__ import annotations

import random
from decimal import Decimal

from local.market import addresses, wire
from local.market.apis.base import (
    Api,
    Request,
    Response,
    html_error_page,
    json_response,
    retry_after_header,
    split_list,
)
from local.market.chains import BY_GOPLUS_CHAIN_ID
from local.market.pools import main_pool, pools_of
from local.market.universe import Token

_TRUSTED_RANK = 80  # well-known tokens of the top ranks are on GoPlus' trust list
_EVM_RISK_FLAGS = {
    "honeypot": {
        "is_honeypot": "1",
        "cannot_sell_all": "1",
        "sell_tax": "1",
        "hidden_owner": "1",
        "honeypot_with_same_creator": "3",
    },
    "high_tax": {"buy_tax": "0.1", "sell_tax": "0.1", "slippage_modifiable": "1"},
    "mintable": {"is_mintable": "1"},
    "proxy": {"is_proxy": "1", "external_call": "1"},
}
# Flags GoPlus only reports for verified (open-source) contracts.
_SOURCE_FLAGS = (
    "anti_whale_modifiable",
    "buy_tax",
    "can_take_back_ownership",
    "cannot_buy",
    "cannot_sell_all",
    "external_call",
    "hidden_owner",
    "is_anti_whale",
    "is_blacklisted",
    "is_honeypot",
    "is_mintable",
    "is_proxy",
    "is_whitelisted",
    "owner_change_balance",
    "personal_slippage_modifiable",
    "selfdestruct",
    "sell_tax",
    "slippage_modifiable",
    "trading_cooldown",
    "transfer_pausable",
    "transfer_tax",
)


def _envelope(result: dict | None, code: int = 1, message: str = "OK") -> Response:
    return json_response({"code": code, "message": message, "result": result})


class GoPlusApi(Api):
    """Token security audits for EVM chains and Solana."""

    name = "goplus"

    def __init__(self, universe, clock) -> None:
        super().__init__(universe, clock)
        self.route("GET", "/api/v1/token_security/{chain_id}", self.token_security)
        self.route("GET", "/api/v1/solana/token_security", self.solana_token_security)

    def token_security(self, request: Request, chain_id: str) -> Response:
        chain = BY_GOPLUS_CHAIN_ID.get(chain_id)
        if chain is None:
            return _envelope(None, 2018, "The chain is not supported")
        wanted = split_list(request.param("contract_addresses"))
        if not wanted:
            return _envelope(None, 5006, "param error: contract_addresses is required")
        result = {}
        for address in wanted:
            token = self.universe.by_contract(chain.slug, address)
            if token is not None:
                result[address.lower()] = self._evm(token, chain.slug)
        return _envelope(result)

    def solana_token_security(self, request: Request) -> Response:
        wanted = split_list(request.param("contract_addresses"))
        if not wanted:
            return _envelope(None, 5006, "param error: contract_addresses is required")
        result = {}
        for mint in wanted:
            token = self.universe.by_contract("solana", mint)  # exact: base58 is case-sensitive
            if token is not None:
                result[mint] = self._solana(token)
        return _envelope(result)

    # --- bodies ------------------------------------------------------------------------------------

    def _evm(self, token: Token, chain: str) -> dict:
        rng = random.Random(f"{self.universe.seed}:goplus:{token.key}:{chain}")
        contract = token.contract_on(chain)
        supply = token.total_supply
        renounced = token.risk == "clean" and rng.random() < 0.6
        owner = "" if renounced else _evm_address(rng)
        creator = _evm_address(rng)
        holders = _holders(rng, supply, lambda: _evm_address(rng), evm=True)
        entry: dict = {
            "anti_whale_modifiable": "0",
            "buy_tax": "0",
            "can_take_back_ownership": "0",
            "cannot_buy": "0",
            "cannot_sell_all": "0",
            "creator_address": creator,
            "creator_balance": wire.plain((supply * Decimal("0.0001")).quantize(Decimal("0.000001"))),
            "creator_percent": "0.000100",
        }
        pools = [p for p in pools_of(self.universe, token, chain) if p.liquidity_usd > 0]
        if token.wraps is None:
            entry["dex"] = [
                {
                    "liquidity_type": "UniV2" if i % 2 == 0 else "UniV3",
                    "name": p.dex.gt_name,
                    "liquidity": wire.plain(p.liquidity_usd),
                    "pair": p.address,
                }
                for i, p in enumerate(dict.fromkeys(pools))
            ]
        entry |= {
            "external_call": "0",
            "hidden_owner": "0",
            "holder_count": str(1000 + rng.randrange(5_000_000)),
            "holders": holders,
            "honeypot_with_same_creator": "0",
            "is_anti_whale": "0",
            "is_blacklisted": "0",
            "is_honeypot": "0",
            "is_in_dex": "1" if pools else "0",
            "is_mintable": "0",
            "is_open_source": "1",
            "is_proxy": "0",
            "is_whitelisted": "0",
        }
        if token.wraps is None:
            lp_supply = Decimal(rng.randrange(10**3, 10**7)) + Decimal(rng.randrange(10**6)) / 10**6
            entry["lp_holder_count"] = str(2 + rng.randrange(400))
            entry["lp_holders"] = _holders(
                rng, lp_supply, lambda: _evm_address(rng), evm=True, count=3, locked_first=True
            )
            entry["lp_total_supply"] = wire.plain(lp_supply)
            entry["owner_address"] = owner
        entry |= {
            "owner_balance": "0",
            "owner_change_balance": "0",
            "owner_percent": "0",
            "personal_slippage_modifiable": "0",
            "selfdestruct": "0",
            "sell_tax": "0",
            "slippage_modifiable": "0",
            "token_name": token.name,
            "token_symbol": token.symbol,
            "total_supply": wire.plain(supply),
            "trading_cooldown": "0",
            "transfer_pausable": "0",
            "transfer_tax": "" if token.wraps else "0",
        }
        entry |= _EVM_RISK_FLAGS.get(token.risk, {})
        if token.risk == "closed_source":
            entry["is_open_source"] = "0"
            for flag in _SOURCE_FLAGS:
                entry.pop(flag, None)
        if (
            token.market_cap_rank is not None
            and token.market_cap_rank <= _TRUSTED_RANK
            and token.risk == "clean"
            and contract is not None
        ):
            entry["trust_list"] = "1"
        return entry

    def _solana(self, token: Token) -> dict:
        rng = random.Random(f"{self.universe.seed}:goplus:{token.key}:solana")
        supply = token.total_supply
        trusted = token.market_cap_rank is not None and token.market_cap_rank <= _TRUSTED_RANK and token.risk == "clean"
        mintable = token.risk == "sol_mintable" or token.is_stablecoin
        freezable = token.risk == "sol_freezable" or token.is_stablecoin
        pool = main_pool(self.universe, token, "solana")
        dex = [
            {
                "dex_name": p.dex.dex_id,
                "tvl": wire.plain(p.liquidity_usd),
                "lp_amount": None if p.dex.label else wire.plain(p.liquidity_usd / 7),
                "type": "Concentrated" if p.dex.label else "Standard",
            }
            for p in dict.fromkeys(pools_of(self.universe, token, "solana"))
            if p.liquidity_usd > 0
        ]
        return {
            "balance_mutable_authority": _authority("0"),
            "closable": _authority("0"),
            "creators": [],
            "default_account_state": "1",
            "default_account_state_upgradable": _authority("0"),
            "dex": dex if pool else [],
            "freezable": _authority("1", rng) if freezable else _authority("0"),
            "holder_count": str(500 + rng.randrange(3_000_000)),
            "holders": _holders(rng, supply, lambda: addresses.random_solana_address(rng), evm=False, count=5),
            "lp_holders": [],
            "metadata": {
                "description": "",
                "name": token.name,
                "symbol": token.symbol,
                "uri": f"https://ipfs.io/ipfs/Qm{token.key[-30:]}",
            },
            "metadata_mutable": {
                "metadata_upgrade_authority": [
                    {"address": addresses.random_solana_address(rng), "malicious_address": 0}
                ],
                "status": "1" if token.risk != "clean" or token.is_stablecoin else "0",
            },
            "mintable": _authority("1", rng) if mintable else _authority("0"),
            "non_transferable": "0",
            "total_supply": wire.plain(supply),
            "transfer_fee": {},
            "transfer_fee_upgradable": _authority("0"),
            "transfer_hook": [],
            "transfer_hook_upgradable": _authority("0"),
            "trusted_token": 1 if trusted else 0,
        }

    # --- Api hooks ---------------------------------------------------------------------------------

    def not_found(self, request: Request) -> Response:
        return json_response({"code": 404, "message": "Not Found", "result": None}, 404)

    def error_response(self, status: int, retry_after: int | None) -> Response:
        if status == 429:  # GoPlus signals its limit in the body, with HTTP 200
            return json_response(
                {"code": 4029, "message": "Frequency over limit", "result": None}, 200, retry_after_header(retry_after)
            )
        if status == 502:
            return html_error_page(502, "Bad Gateway")
        code = 5000 if status >= 500 else status
        return json_response(
            {"code": code, "message": "server error" if status >= 500 else "request refused", "result": None},
            status,
            retry_after_header(retry_after),
        )


def _evm_address(rng: random.Random) -> str:
    return "0x" + rng.randbytes(20).hex()


def _authority(status: str, rng: random.Random | None = None) -> dict:
    holders = (
        [{"address": addresses.random_solana_address(rng), "malicious_address": 0}] if rng and status == "1" else []
    )
    return {"authority": holders, "status": status}


def _holders(
    rng: random.Random, supply: Decimal, new_address, evm: bool, count: int = 10, locked_first: bool = False
) -> list[dict]:
    holders = []
    remaining = Decimal("0.6")
    for i in range(count):
        share = (remaining * Decimal(rng.randrange(15, 45)) / 100).quantize(Decimal("0.000000000000000001"))
        remaining -= share
        balance = (supply * share).quantize(Decimal("0.000001"))
        locked = 1 if locked_first and i == 0 else 0
        if evm:
            holders.append(
                {
                    "address": new_address(),
                    "tag": "",
                    "is_contract": rng.randrange(2),
                    "balance": wire.plain(balance),
                    "percent": wire.plain(share),
                    "is_locked": locked,
                }
            )
        else:
            holders.append(
                {
                    "account": new_address(),
                    "balance": wire.plain(balance),
                    "is_locked": locked,
                    "percent": wire.plain(share.quantize(Decimal("0.0001"))),
                }
            )
    return holders
