"""WeChat Pay API v3 for JSAPI (mini-program) payments, through the wechatpayv3 SDK.

The SDK signs requests with the merchant key, verifies WeChat's answers and notices with the
WeChat Pay public key, and decrypts notices (AES-256-GCM with the APIv3 key); this module is
the only one that touches it, and adds what the SDK leaves to its caller: the timestamp
window of a notice, and typed answers and errors.
"""

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# The async client has an enum of its own; the package's top-level one does not match it.
from wechatpayv3.async_ import AsyncWeChatPay, WeChatPayType

from server.config import Settings

logger = logging.getLogger(__name__)

# WeChat's own rule for notices and answers: a timestamp further off than this is refused.
MAX_CLOCK_SKEW_S = 300
TIMEOUT_S = (5.0, 15.0)


class WeChatPayError(Exception):
    """WeChat Pay refused a request or could not be reached; the message says which."""


class NoticeRejected(Exception):
    """A payment notice failed a check; nothing may be credited. The message says which."""


@dataclass(frozen=True)
class MerchantConfig:
    """Who the merchant is and how to reach WeChat Pay; the keys are PEM text."""

    appid: str
    mchid: str
    merchant_serial: str
    merchant_key: str
    apiv3_key: str
    public_key_id: str
    public_key: str
    notify_url: str
    api_base: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "MerchantConfig":
        """The configured merchant; raises OSError when a key file cannot be read."""
        assert settings.wechatpay_merchant_key_file
        assert settings.wechatpay_public_key_file
        assert settings.wechatpay_apiv3_key is not None
        return cls(
            appid=settings.wechat_appid,
            mchid=settings.wechatpay_mchid,
            merchant_serial=settings.wechatpay_merchant_serial,
            merchant_key=settings.wechatpay_merchant_key_file.read_text(),
            apiv3_key=settings.wechatpay_apiv3_key.get_secret_value(),
            public_key_id=settings.wechatpay_public_key_id,
            public_key=settings.wechatpay_public_key_file.read_text(),
            notify_url=settings.wechatpay_notify_url,
            api_base=settings.wechatpay_api_base.rstrip("/"),
        )


@dataclass(frozen=True)
class Transaction:
    """What WeChat Pay says of one order: from a notice or a query."""

    out_trade_no: str
    trade_state: str
    appid: str
    mchid: str
    total_fen: int | None
    transaction_id: str | None

    @classmethod
    def from_json(cls, data: Any) -> "Transaction":
        """A transaction from WeChat's JSON; raises ValueError when a field is missing."""
        if not isinstance(data, dict):
            raise ValueError("the transaction is not a JSON object")
        amount = data.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        fields = (data.get("out_trade_no"), data.get("trade_state"))
        if not all(isinstance(field, str) and field for field in fields):
            raise ValueError("the transaction lacks out_trade_no or trade_state")
        return cls(
            out_trade_no=str(data["out_trade_no"]),
            trade_state=str(data["trade_state"]),
            appid=str(data.get("appid", "")),
            mchid=str(data.get("mchid", "")),
            total_fen=total if isinstance(total, int) else None,
            transaction_id=data.get("transaction_id") or None,
        )


class WeChatPay:
    """One merchant's connection to WeChat Pay; `start` before use, `close` after."""

    def __init__(self, config: MerchantConfig) -> None:
        self.config = config
        self._sdk = AsyncWeChatPay(
            wechatpay_type=WeChatPayType.MINIPROG,
            mchid=config.mchid,
            private_key=config.merchant_key,
            cert_serial_no=config.merchant_serial,
            appid=config.appid,
            apiv3_key=config.apiv3_key,
            notify_url=config.notify_url,
            public_key=config.public_key,
            public_key_id=config.public_key_id,
            timeout=TIMEOUT_S,
        )
        # The SDK has no setting for its gateway; WXGPT_WECHATPAY_API_BASE points it at a
        # stand-in in tests, or at a proxy.
        self._sdk._core._gate_way = config.api_base

    async def start(self) -> None:
        """Open the SDK's HTTP client."""
        await self._sdk.__aenter__()

    async def close(self) -> None:
        """Close the SDK's HTTP client."""
        await self._sdk.__aexit__(None, None, None)

    async def create_jsapi(
        self, out_trade_no: str, description: str, amount_fen: int, openid: str, expires: datetime
    ) -> str:
        """Place the order at WeChat Pay (/v3/pay/transactions/jsapi); returns its prepay_id."""
        status, body = await self._call(
            "placing the order",
            self._sdk.pay(
                description=description,
                out_trade_no=out_trade_no,
                amount={"total": amount_fen, "currency": "CNY"},
                payer={"openid": openid},
                time_expire=expires.isoformat(timespec="seconds"),
                pay_type=WeChatPayType.JSAPI,
            ),
        )
        prepay_id = _json(body).get("prepay_id") if status == 200 else None
        if not isinstance(prepay_id, str) or not prepay_id:
            raise WeChatPayError(f"WeChat Pay did not place the order: {_refusal(status, body)}")
        return prepay_id

    def payment_params(self, prepay_id: str) -> dict[str, str]:
        """What the mini-program passes to wx.requestPayment, signed with the merchant key."""
        stamp = str(int(time.time()))
        nonce = secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        sign = self._sdk.sign([self.config.appid, stamp, nonce, package])
        return {
            "timeStamp": stamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": sign,
        }

    async def verify_notice(
        self, headers: dict[str, str], body: bytes, now: datetime
    ) -> tuple[str, Transaction | None]:
        """The event type of a signed, fresh notice and, for a payment, its transaction.

        Raises NoticeRejected when the signature, the timestamp, the decryption or the shape
        fails; the RSA and AES work runs off the event loop.
        """
        stamp = headers.get("wechatpay-timestamp", "")
        if not stamp.isdigit():
            raise NoticeRejected("the notice has no Wechatpay-Timestamp")
        skew = abs(now.timestamp() - int(stamp))
        if skew > MAX_CLOCK_SKEW_S:
            raise NoticeRejected(
                f"the notice's timestamp is {skew:.0f} s off (at most {MAX_CLOCK_SKEW_S} s)"
            )
        if headers.get("wechatpay-serial") != self.config.public_key_id:
            raise NoticeRejected("the notice is signed with another key than the configured one")
        try:
            # The SDK looks headers up in its own spelling and in lower case; ours are lower.
            notice = await asyncio.to_thread(self._sdk.callback, headers, body)
        except Exception as exc:  # the SDK raises bare Exception for an unknown algorithm
            raise NoticeRejected(f"the notice could not be verified: {exc}") from None
        if not isinstance(notice, dict):
            raise NoticeRejected("the notice's signature or encryption is not valid")
        event = str(notice.get("event_type", ""))
        if not event.startswith("TRANSACTION."):
            return event, None
        try:
            return event, Transaction.from_json(notice.get("resource"))
        except ValueError as exc:
            raise NoticeRejected(f"the notice's transaction is malformed: {exc}") from None

    async def query(self, out_trade_no: str) -> Transaction | None:
        """What WeChat Pay knows of the order, or None when it never saw it."""
        status, body = await self._call(
            "asking about an order", self._sdk.query(out_trade_no=out_trade_no)
        )
        if status == 404 or (status == 400 and _json(body).get("code") == "ORDER_NOT_EXIST"):
            return None
        if status != 200:
            raise WeChatPayError(f"WeChat Pay did not answer the query: {_refusal(status, body)}")
        try:
            return Transaction.from_json(_json(body))
        except ValueError as exc:
            raise WeChatPayError(f"WeChat Pay answered a malformed transaction: {exc}") from None

    async def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order at WeChat Pay, so that it can no longer be paid."""
        status, body = await self._call("closing an order", self._sdk.close(out_trade_no))
        if status not in (200, 204):
            raise WeChatPayError(f"WeChat Pay did not close the order: {_refusal(status, body)}")

    async def refund(
        self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int
    ) -> str:
        """Ask for a refund (the same out_refund_no asks for the same one); returns its status."""
        status, body = await self._call(
            "refunding an order",
            self._sdk.refund(
                out_refund_no=out_refund_no,
                amount={"refund": refund_fen, "total": total_fen, "currency": "CNY"},
                out_trade_no=out_trade_no,
            ),
        )
        refund_status = _json(body).get("status") if status == 200 else None
        if refund_status not in ("SUCCESS", "PROCESSING"):
            raise WeChatPayError(f"WeChat Pay refused the refund: {_refusal(status, body)}")
        return str(refund_status)

    async def _call(self, what: str, request: Any) -> tuple[int, Any]:
        try:
            status, body = await request
        except Exception as exc:  # httpx errors, and the SDK's bare Exception on a bad signature
            logger.warning("WeChat Pay failed while %s: %s", what, exc)
            raise WeChatPayError(f"WeChat Pay could not be reached while {what}") from exc
        return int(status), body


def order_expiry(now: datetime, ttl_seconds: int) -> datetime:
    """When an order placed now stops being payable, to the second (WeChat's format)."""
    return (now + timedelta(seconds=ttl_seconds)).replace(microsecond=0)


def _json(body: Any) -> dict[str, Any]:
    try:
        data = json.loads(body) if isinstance(body, str | bytes) and body else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _refusal(status: int, body: Any) -> str:
    data = _json(body)
    return f"HTTP {status} {data.get('code', '')} {data.get('message', '')}".strip()
