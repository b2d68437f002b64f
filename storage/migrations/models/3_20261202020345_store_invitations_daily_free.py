"""The store (products, orders), daily free replies and invitations: their tables and columns.

As in the initial migration, aerich's SQL for SQLite and for PostgreSQL are both kept, and
MODELS_STATE is aerich's own.
"""

from tortoise import BaseDBAsyncClient

from storage.migration_sql import sql_for

RUN_IN_TRANSACTION = True

UPGRADE = {
    "sqlite": """
        CREATE TABLE IF NOT EXISTS "products" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "name" VARCHAR(64) NOT NULL,
    "replies" INT NOT NULL,
    "price_fen" INT NOT NULL,
    "active" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL
) /* A quota pack in the store: `replies` for `price_fen`, in fen (cents of a yuan). */;
        CREATE TABLE IF NOT EXISTS "orders" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "out_trade_no" VARCHAR(32) NOT NULL UNIQUE,
    "product_name" VARCHAR(64) NOT NULL,
    "replies" INT NOT NULL,
    "amount_fen" INT NOT NULL,
    "state" VARCHAR(16) NOT NULL /* PENDING: pending\nPAID: paid\nCLOSED: closed\nREFUNDED: refunded */,
    "prepay_id" VARCHAR(128),
    "transaction_id" VARCHAR(64),
    "out_refund_no" VARCHAR(64) UNIQUE,
    "created_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "paid_at" TIMESTAMP,
    "closed_at" TIMESTAMP,
    "refunded_at" TIMESTAMP,
    "product_id" INT REFERENCES "products" ("id") ON DELETE SET NULL,
    "user_id" INT REFERENCES "users" ("id") ON DELETE SET NULL
) /* One purchase of a product, as WeChat Pay knows it by `out_trade_no`. */;
CREATE INDEX IF NOT EXISTS "idx_orders_state_8d5b27" ON "orders" ("state", "created_at");
CREATE INDEX IF NOT EXISTS "idx_orders_user_id_ef1190" ON "orders" ("user_id", "id");
CREATE INDEX IF NOT EXISTS "idx_orders_paid_at_2ca315" ON "orders" ("paid_at");
        ALTER TABLE "quota_ledger" ADD "free" INT NOT NULL DEFAULT 0;
        ALTER TABLE "users" ADD "invited_by" INT;
        ALTER TABLE "users" ADD "invite_code" VARCHAR(16);
        ALTER TABLE "users" ADD "free_day" DATE;
        ALTER TABLE "users" ADD "free_left" INT NOT NULL DEFAULT 0;
        CREATE UNIQUE INDEX "uid_users_invite__eac08c" ON "users" ("invite_code");""",
    "postgres": """
        CREATE TABLE IF NOT EXISTS "products" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "name" VARCHAR(64) NOT NULL,
    "replies" INT NOT NULL,
    "price_fen" INT NOT NULL,
    "active" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "products" IS 'A quota pack in the store: `replies` for `price_fen`, in fen (cents of a yuan).';
        CREATE TABLE IF NOT EXISTS "orders" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "out_trade_no" VARCHAR(32) NOT NULL UNIQUE,
    "product_name" VARCHAR(64) NOT NULL,
    "replies" INT NOT NULL,
    "amount_fen" INT NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "prepay_id" VARCHAR(128),
    "transaction_id" VARCHAR(64),
    "out_refund_no" VARCHAR(64) UNIQUE,
    "created_at" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "paid_at" TIMESTAMPTZ,
    "closed_at" TIMESTAMPTZ,
    "refunded_at" TIMESTAMPTZ,
    "product_id" INT REFERENCES "products" ("id") ON DELETE SET NULL,
    "user_id" INT REFERENCES "users" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_orders_state_8d5b27" ON "orders" ("state", "created_at");
CREATE INDEX IF NOT EXISTS "idx_orders_user_id_ef1190" ON "orders" ("user_id", "id");
CREATE INDEX IF NOT EXISTS "idx_orders_paid_at_2ca315" ON "orders" ("paid_at");
COMMENT ON COLUMN "orders"."state" IS 'PENDING: pending\nPAID: paid\nCLOSED: closed\nREFUNDED: refunded';
COMMENT ON TABLE "orders" IS 'One purchase of a product, as WeChat Pay knows it by `out_trade_no`.';
        ALTER TABLE "quota_ledger" ADD "free" BOOL NOT NULL DEFAULT False;
        ALTER TABLE "users" ADD "free_left" INT NOT NULL DEFAULT 0;
        ALTER TABLE "users" ADD "free_day" DATE;
        ALTER TABLE "users" ADD "invite_code" VARCHAR(16) UNIQUE;
        ALTER TABLE "users" ADD "invited_by" INT;""",
}

DOWNGRADE = {
    "sqlite": """
        DROP INDEX IF EXISTS "uid_users_invite__eac08c";
        ALTER TABLE "quota_ledger" DROP COLUMN "free";
        ALTER TABLE "users" DROP COLUMN "invited_by";
        ALTER TABLE "users" DROP COLUMN "invite_code";
        ALTER TABLE "users" DROP COLUMN "free_day";
        ALTER TABLE "users" DROP COLUMN "free_left";
        DROP TABLE IF EXISTS "products";
        DROP TABLE IF EXISTS "orders";""",
    "postgres": """
        DROP INDEX IF EXISTS "uid_users_invite__eac08c";
        ALTER TABLE "users" DROP COLUMN "free_left";
        ALTER TABLE "users" DROP COLUMN "free_day";
        ALTER TABLE "users" DROP COLUMN "invite_code";
        ALTER TABLE "users" DROP COLUMN "invited_by";
        ALTER TABLE "quota_ledger" DROP COLUMN "free";
        DROP TABLE IF EXISTS "orders";
        DROP TABLE IF EXISTS "products";""",
}


async def upgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, DOWNGRADE)


MODELS_STATE = (
    "eJztXW1v27YW/iuEvzQFsiJJu65whwFO4na5S+zc2LkbNg8KI9E2EZlURSqpsfW/X5KSrH"
    "dHsmVHdvklcEgeinoOX55zDkn905pRC9nsTceaYdJqg39aBM6Q+JHMOAQt6DhRskzg8N5W"
    "JaEsopLgPeMuNLlIHUObIZFkIWa62OGYyupbHQKog1zIqQugaVKPcEDHgE8RUNUAkxJGbf"
    "QREPSIRBlgTiEHHkPuG/kEi5riEZhM6qjMI/iLhwxOJ0jIuKLKv/4WyZhY6Cti4b/OgzHG"
    "yLYS6GBLVqDSDT53VNoF4Z9UQdnOe8OktjcjUWFnzqeULEpjwmXqBBH5BkhWz11PQkY82w"
    "6wDVH0WxoV8ZsYk7HQGHq2BF5K+w2I0lqG0esPjUF3aBitjFJCiRi0QZLETyhUNJWpt5/I"
    "Jvxwcvzup3cf3r5/90EUUc1cpPz0zX90BIwvqODpDVvfVD7k0C+hMI5AlYpRvzPQnk2hm4"
    "9tXCaFsGh6GuEQz+ZCPINfDRuRCZ+Kf9+/W4Ln/zo3Z792bg7ev3stH0jFwPPHYy/IOVFZ"
    "EvIIYgcy9kRdy5hCNq2Cc0awHrDDhAjtaOLYOtwnP/5YAm9RqhBwlZdE3BUTUD7QXeLNFN"
    "gXok2QmCgDeii7Paz9ybxVDe5W5/zqotf2J90R6V8P2mJiZun5uowKjt+X0MDx+0IFyKwk"
    "/qaLJEYG5FktnIscjmcov8snJVM6sALRN+GPXez94gWtPrHnwSS3BPrhxVV3MOxcXcvHzR"
    "j7Yiv8OsOuzDlRqfNU6kFaTYtKwO8Xw1+B/Bf82e91FbyU8YmrnhiVG/7Zkm2CHqcGoU8G"
    "tGLzcZgaopbQug0ZN2w6wWQFxWeEa9B90OimqH5HVB1iktG1JGbjhxiLkAn30Hx4gmKNSu"
    "REnYIhxgROLNsfTgPJT7/dIBsqMLNqjzPigV/VDg76b2FvD1PDwS8RpCe0CNNs1uxklk6B"
    "BE7UK8lnyyflYVZkZcQwfcbYMOKaLGF0ADGYRbt+ECZBwjAAQT0fARWzoDIcOH1A5BUDku"
    "YAzMADcniO5VFHjdr8aJb5oRRVmRgnpbQJ8qwJognZ90jI0FcHi9pW0HpScg+1viNaLuRi"
    "cTX7y3Ol5Sku8vwitQP6rGOdyvDbFMRZfD9RF+EJ+Q3NMz6FJTx2B+EtIrAi2YVPC7KU6F"
    "fi7cU7I+6v5Z3BWee82/pWbDNslAt7FuZdwt15LhOOcpfzYFlOGqnlKHCfhD5xUUzx08hL"
    "HnBScD8HsjGAUZUp6gbU4zZ+RMwv7bvYs2y47sqfJ8Z/RaNAKFhkigQzNNtkimbO22TOBV"
    "NSMWleCOyhF7l+xhx17dL4mgU+jH0A+O1JCYDfnhQCLLOSAHPoiqmmktW3kNiib76iW35F"
    "eI9PPpTxwZ98KHbCy7wkwhbiENtZhP8z6PfyEY4k0pQfmxz8C2zMNkYOWz+PPaKGELj3sM"
    "0xYW/kY3/ZlAaWAC4RSrD/EOeDq84faRWcXfZP07ReVnCqbfDv1Aav4CjfJOk9o+QRuQzy"
    "AgdwIn8p8TVjJUv7f+UugVcMxGUFScXcRhaAY45cgDkDY+wyDmaIMfESeU7fVaspQ2hl3a"
    "qsY4UDTLPY7fp/pSIrkYBQYA9J1vHRURkWcHRUzAJknl52vs9lJ6712IxWUetJSa31ndK6"
    "WM+qOYJjEtoP/LwfOCQMa7qBb4Nqdgzcsl7gWKeq6gSOkVSfy625ceTKr2WPwN7onpEQrh"
    "xrIYZksaEQV1o5B3kg8RFAAiBjWA4dDlzk2HPx16SuxcCUPgmSD5BQhHWo6L7aAMCEjCVM"
    "gZmAkeV7yGutvYxFYaZsqtBTrh4pRP3/RDO4p0CyEWTI8AjHtjY9tmt67NYm4epAt24H3Z"
    "u2sp9HpDMYXAhy0Ru2o3GQHjEvtFeYEo5IDk0doq8FPTwm0mQF1LIZofvHcLknckFAL/u9"
    "z2HxtHsyCXk0/azS9yPpLbrhTTpzFI2oOAY+d3vdm87wove5DYKGCU2MyFn/6vqyO+y2QV"
    "jziAyG/evr7nkbME4dB1kjIiaR7s3N7fVQpgptIdf1HC5zPnUuLmXiGGIbWQ0ZSTYWo8KY"
    "sUmuDVDsU8kIrqTYhu223nSAcIwJZlNDGJOsWpwwI7h/aNfftx1XDFNu+MysAhnKyG3Pyj"
    "1qNC+KL8BqAsQSlarw5spqiNMQq+iEj5CYZSvgmxVcCdymTRY1w2t5rjK4qmGbktLA5kwN"
    "OnbwHXqRpa8Cm7AiiUxK7R+nqX8HVNz3U3F4pUT1Wckm78+P+wSrRWdyJHWUJmedCr2r1d"
    "BNSWkC8Gz4K+3dXjMMlt6AtGO9uGw4LGcU54fF8rp0DTCXj4E1rDeXBTg1kBPgijaA3u3l"
    "5UudPOm7lgoVZeJpfsbhsmgalUUqxNIczzWnghjIC5kgcFxqeSY/BJCB39GZvIXpGs7Bg1"
    "immAx43c/BHfWEdelCC4nF6y4/hLZupSMyIsMpCiVfMXUm5VAF4TDyo2yOi00EoIuASR2M"
    "LIDJoX9qRdQPCVBAgAeEHAaeZNoTZCNyT73JVPyeIqKOswRPkBdOkYmombpgQhHzT8bIMM"
    "jiYIxovFSTL+r3FWvxwBFx0SMiHgJiYM3lzkPBs5BVOgQo/eNqsMVsIBX1CzcPhDFBB2K9"
    "5XBT5KA47hfvnlUMnLTc3h07r9/CCUakUfWCsbTcXkT5Nh2QCCbUigQ4kNBmRY5ZAWdy6j"
    "fGKIfsFh+tTghpXHNwXayQq4aft31Bm4OIJQGqhm/ruts7V5HnQH5ErjsX5+JfsfCPyNll"
    "fyBDyKZNmQwp33Q/3fbOZYqLxp7cjdSMsLIjpgk4r+gNTAjtnzNwI+f1xNMI80+RVkQ7K7"
    "l/kNe/YEpC5w+1FZhgQrAWtBvEBPUFRDqSpC8g0gGOkgGO0JFRUccxMR3AarJ+fYa6ytwd"
    "F9Q6brKOQ5tjBS2nRLWem6zn0LVWybWcFNKB0qxLY/snL/cQ0MYcvGwYtuueu4xioDkzQQ"
    "2oXkc17SewyfmvUfHlEPucCHNMLcUx5uDVSt/q8sWjHAJHtB1gP+zKuOgvbXAXRBPuwJi6"
    "4E6FdKUX/O5QFhQ/wIGJBO5+HHnuQfI677qX2uvXN343K/xaNRaoY4A6BviCxG4xz1Siyz"
    "EZjWpeZNXk+DFnGjil1EaQFERWF0IpTO+F1KZADafe7ZqVp/3+ZcKiPL1In+u9vTrt3hwc"
    "q8lBFMI+HdFnOL5fz3vGfHoZRvpfyeAukTXJ3/cYz17KTBUTFIvlouSz7LT7iNx5sP3Pp4"
    "HB5YGqqo/A73fAQS44kDmHIHHyWe5JlGdyc3hprTXnMNJoc2DmLHZwTvjvzD7D4G4TvX1w"
    "u/xV9FMOK+C6KK+JQO7JjeLj8yWuYVnvDP2WwG0NLj73bq/bgOEJ8ZwREex92FbfxQ13/Y"
    "R7fkbk8426pGXiQiJyRY1CDDXlqhZ9wcR2b6CnOT7PpRfQ+wIa3efRJbRoC2KBG4Kuseuw"
    "0dhu5Au8YxdVNe9CkS0ad4sUbd1p667h1l1c6wH1rxZwTArpmGMTgriNGzP7FMVtGrjrhn"
    "FzzwnPosO9a6K698eEkxNgo6K4A8S5/4oZf1mYdbjMV8b8QqWjuPL7NOAR2h4CcuuWCyB4"
    "QHP/pKz4wV6BmeBpokbgfy3uCfOpzMSu9GTJU8l5sduaal0jYiueUoXUB8X37iRnXeZSsR"
    "dMaTkLdfGnpRYC2/+y1MvsDNzIN6T0Zx2KR8Bu0v2cTZuLW94bEMxRVCtnVQopWPGSJFlM"
    "6fUouEpCXdJwQB1EsPX6UF7gcGehx/bPT9j6xd/3I/5FNnVmiHD5PVP5kbichWjd6vSeoW"
    "bFXHwVVlnZI4m9W9w3cvaUYPOh8s6smMzefZGzfo+zChVXmBwW5fV9upn7dF2EhKrGOSyo"
    "+CrduIyGNBdSC+aYT5JXLoE0kFnGKHfWpZAHnSSEKezuISEoZ3laGu6IhHTAQwc8vmMLqE"
    "zAw4aMGwwhsoLe07L6fGJzTN2spjF5FGNfqM+qxEVTYvt2IUf9e3l8wCzjPmfFL7ZXE0I6"
    "hFgQ8Cp21eRfpbvmNw739Brd5F09i6tQV8dpcePqbnXRUvhE26RXxye1M3tfutEm3aMd5G"
    "Jz2spxkAY5h8tcpDAq85yPtBgG7atslq9STsW516MXk5eYSJP3MTdpf6EcVBUQDorvIbrH"
    "R0dlqOHRUTE3lHklv8lZHN8t/ianjvC2n4nwvmis79v/AbiIFyw="
)
