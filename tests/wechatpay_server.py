"""A stand-in for WeChat Pay API v3 on loopback, with RSA keys made for the test run.

It checks every request's merchant signature (WECHATPAY2-SHA256-RSA2048) against the merchant
key, keeps the orders placed with it, signs each answer with the platform key (the "WeChat Pay
public key" mode), and writes notices as WeChat does: the transaction encrypted with
AES-256-GCM under the APIv3 key, the body signed with the platform key.
"""

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.live_server import LiveServer
from tests.loopback_app import LoopbackApp

MCHID = "1900000109"
APPID = "wx-test-app"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092026120200000000000001"
AUTH = re.compile(r'(\w+)="([^"]*)"')


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _pem_public(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    signature = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    try:
        key.verify(
            base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass
class StandInOrder:
    out_trade_no: str
    appid: str
    mchid: str
    total: int
    openid: str
    description: str
    time_expire: str
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)

    def transaction(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": self.trade_state,
            "payer": {"openid": self.openid},
            "amount": {"total": self.total, "currency": "CNY"},
        }
        if self.transaction_id:
            body["transaction_id"] = self.transaction_id
            body["success_time"] = "2026-12-02T10:00:00+08:00"
        return body


class WeChatPayStandIn:
    """The stand-in's keys, orders and server; `settings` are wxgpt's WXGPT_WECHATPAY_*."""

    def __init__(self, key_dir: Path) -> None:
        self.merchant_key = _new_key()
        self.platform_key = _new_key()
        self.apiv3_key = secrets.token_hex(16)
        self.orders: dict[str, StandInOrder] = {}
        self.refused: list[str] = []
        self.closed: list[str] = []
        merchant_file = key_dir / "apiclient_key.pem"
        merchant_file.write_text(_pem_private(self.merchant_key))
        public_file = key_dir / "pub_key.pem"
        public_file.write_text(_pem_public(self.platform_key))
        self._files = (merchant_file, public_file)
        app = Starlette(
            routes=[
                Route("/v3/pay/transactions/jsapi", self._jsapi, methods=["POST"]),
                Route("/v3/pay/transactions/out-trade-no/{no}", self._query, methods=["GET"]),
                Route(
                    "/v3/pay/transactions/out-trade-no/{no}/close", self._close, methods=["POST"]
                ),
                Route("/v3/refund/domestic/refunds", self._refund, methods=["POST"]),
            ]
        )
        self._served = LoopbackApp(app)
        self.url = ""

    def start(self) -> "WeChatPayStandIn":
        self.url = f"http://127.0.0.1:{self._served.start()}"
        return self

    def stop(self) -> None:
        self._served.stop()

    def settings(self) -> dict[str, Any]:
        """wxgpt's settings for this merchant, pointed at the stand-in."""
        return {
            "wechat_appid": APPID,
            "wechatpay_mchid": MCHID,
            "wechatpay_merchant_serial": MERCHANT_SERIAL,
            "wechatpay_merchant_key_file": self._files[0],
            "wechatpay_apiv3_key": self.apiv3_key,
            "wechatpay_public_key_id": PUBLIC_KEY_ID,
            "wechatpay_public_key_file": self._files[1],
            "wechatpay_notify_url": "https://wxgpt.example/api/pay/wechat/notify",
            "wechatpay_api_base": self.url,
        }

    # What happens at WeChat's side.

    def pay(self, out_trade_no: str) -> StandInOrder:
        """The user pays the order in WeChat."""
        order = self.orders[out_trade_no]
        order.trade_state = "SUCCESS"
        order.transaction_id = "4200" + secrets.token_hex(12)
        return order

    def notice(
        self,
        transaction: dict[str, Any],
        *,
        timestamp: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
        apiv3_key: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A TRANSACTION.SUCCESS notice of `transaction`: its headers and body."""
        nonce = secrets.token_hex(6)
        aad = "transaction"
        ciphertext = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(transaction).encode(), aad.encode()
        )
        body = json.dumps(
            {
                "id": "EV-" + secrets.token_hex(8),
                "create_time": "2026-12-02T10:00:00+08:00",
                "resource_type": "encrypt-resource",
                "event_type": "TRANSACTION.SUCCESS",
                "summary": "支付成功",
                "resource": {
                    "original_type": "transaction",
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(ciphertext).decode(),
                    "associated_data": aad,
                    "nonce": nonce,
                },
            },
            ensure_ascii=False,
        )
        return self._signed_headers(body, timestamp, signing_key), body.encode()

    # The API.

    def _signed_headers(
        self, body: str, timestamp: int | None = None, key: rsa.RSAPrivateKey | None = None
    ) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        return {
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": PUBLIC_KEY_ID,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Wechatpay-Signature": rsa_sign(
                key or self.platform_key, f"{stamp}\n{nonce}\n{body}\n"
            ),
        }

    def _answer(self, status: int, data: dict[str, Any] | None = None) -> Response:
        body = "" if data is None else json.dumps(data)
        return Response(body, status_code=status, headers=self._signed_headers(body))

    async def _check(self, request: Request) -> tuple[str, Response | None]:
        body = (await request.body()).decode()
        scheme, _, params = request.headers.get("authorization", "").partition(" ")
        fields = dict(AUTH.findall(params))
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        stamp, nonce = fields.get("timestamp"), fields.get("nonce_str")
        message = f"{request.method}\n{path}\n{stamp}\n{nonce}\n{body}\n"
        good = (
            scheme == "WECHATPAY2-SHA256-RSA2048"
            and fields.get("mchid") == MCHID
            and fields.get("serial_no") == MERCHANT_SERIAL
            and rsa_verify(self.merchant_key.public_key(), message, fields.get("signature", ""))
        )
        if not good:
            self.refused.append(path)
            return body, self._answer(401, {"code": "SIGN_ERROR", "message": "签名错误"})
        return body, None

    async def _jsapi(self, request: Request) -> Response:
        raw, refusal = await self._check(request)
        if refusal:
            return refusal
        data = json.loads(raw)
        order = StandInOrder(
            out_trade_no=data["out_trade_no"],
            appid=data["appid"],
            mchid=data["mchid"],
            total=data["amount"]["total"],
            openid=data["payer"]["openid"],
            description=data["description"],
            time_expire=data["time_expire"],
        )
        self.orders[order.out_trade_no] = order
        return self._answer(200, {"prepay_id": "wx" + secrets.token_hex(14)})

    async def _query(self, request: Request) -> Response:
        _, refusal = await self._check(request)
        if refusal:
            return refusal
        order = self.orders.get(request.path_params["no"])
        if order is None:
            return self._answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
        return self._answer(200, order.transaction())

    async def _close(self, request: Request) -> Response:
        _, refusal = await self._check(request)
        if refusal:
            return refusal
        order = self.orders[request.path_params["no"]]
        order.trade_state = "CLOSED"
        self.closed.append(order.out_trade_no)
        return self._answer(204)

    async def _refund(self, request: Request) -> Response:
        raw, refusal = await self._check(request)
        if refusal:
            return refusal
        data = json.loads(raw)
        order = self.orders[data["out_trade_no"]]
        if order.trade_state not in ("SUCCESS", "REFUND"):
            return self._answer(400, {"code": "INVALID_REQUEST", "message": "订单未支付"})
        if not any(r["out_refund_no"] == data["out_refund_no"] for r in order.refunds):
            order.refunds.append(data)
        order.trade_state = "REFUND"
        return self._answer(
            200,
            {
                "refund_id": "5030" + secrets.token_hex(10),
                "out_refund_no": data["out_refund_no"],
                "status": "PROCESSING",
            },
        )


def buy(server: LiveServer, wid: str = "buyer") -> tuple[str, int, dict[str, Any]]:
    """Log in as `wid` and order the first product; the token, user id and the answer."""
    token, user_id = server.login_user(wid)
    product = server.get("/api/pay/products", token).json()["products"][0]
    response = httpx.post(
        server.url + "/api/pay/orders",
        json={"product_id": product["id"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return token, user_id, response.json()
