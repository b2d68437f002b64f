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
        ALTER TABLE "users" ADD "free_left" INT NOT NULL DEFAULT 0;
        ALTER TABLE "users" ADD "free_day" DATE;
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
        ALTER TABLE "users" ADD "invited_by" INT;
        ALTER TABLE "users" ADD "free_left" INT NOT NULL DEFAULT 0;
        ALTER TABLE "users" ADD "free_day" DATE;
        ALTER TABLE "users" ADD "invite_code" VARCHAR(16) UNIQUE;""",
}

DOWNGRADE = {
    "sqlite": """
        DROP INDEX IF EXISTS "uid_users_invite__eac08c";
        ALTER TABLE "quota_ledger" DROP COLUMN "free";
        ALTER TABLE "users" DROP COLUMN "invited_by";
        ALTER TABLE "users" DROP COLUMN "invite_code";
        ALTER TABLE "users" DROP COLUMN "free_left";
        ALTER TABLE "users" DROP COLUMN "free_day";
        DROP TABLE IF EXISTS "orders";
        DROP TABLE IF EXISTS "products";""",
    "postgres": """
        DROP INDEX IF EXISTS "uid_users_invite__eac08c";
        ALTER TABLE "users" DROP COLUMN "invited_by";
        ALTER TABLE "users" DROP COLUMN "free_left";
        ALTER TABLE "users" DROP COLUMN "free_day";
        ALTER TABLE "users" DROP COLUMN "invite_code";
        ALTER TABLE "quota_ledger" DROP COLUMN "free";
        DROP TABLE IF EXISTS "products";
        DROP TABLE IF EXISTS "orders";""",
}


async def upgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, DOWNGRADE)


MODELS_STATE = (
    "eJztXWtv2zYX/iuEvzQDsiLJuq5IhwFO4nReE9uznXc3Dw4j0bYQmdJEKqmx9b+/JHWXKE"
    "dyZEdW+KWNSR5Kenh7zjnk4b+tpaUjk7xt60sDt07Bvy0Ml4j9kcw4BC1o21EyT6DwzhQl"
    "IS8ikuAdoQ7UKEudQZMglqQjojmGTQ2LV99qY2DZyIHUcgDUNMvFFFgzQBcIiGqAZmFime"
    "gjwOgBsTJAW0AKXIKct/wJuqWxRxh4XkVlLjb+cdGUWnPEZBxW5V9/s2QD6+gLIsFP+346"
    "M5CpJ9AxdF6BSJ/SlS3SupheioL8Pe+mmmW6SxwVtld0YeGwtIEpT50jzL8A8eqp43LIsG"
    "uaPrYBit6bRkW8V4zJ6GgGXZMDz6W9F4jSWtNprz+ejjrj6bSVaZRAIgatn8TxYw3KXpWI"
    "r5/zV/j25PjdD+8+fPf+3QdWRLxmmPLDV+/RETCeoICnN259FfmQQq+EwDgClTeM+DsD7f"
    "kCOnJs4zIphNmrpxEO8KwvxEv4ZWoiPKcL9vP9uzV4/q89PP+5PTx4/+4b/kCLDTxvPPb8"
    "nBORxSGPILYhIY+Wo08XkCzK4JwRrAbsICFCO5o4dg73yfffF8CblcoFXOQlEXfYBCQHuo"
    "PdpQC7y94JYg1lQA9kd4e1N5m3ysHdal9cd3un3qQ7wf3B6JRNzCQ9XxdpguP3BVrg+H1u"
    "A/CsJP6agzhGU0izrXDBcqixRPIun5RMtYHui74N/tjH3s8+UO9jc+VPcmugH3evO6Nx+3"
    "rAH7ck5B9T4Nced3jOiUhdpVIP0s0UVgJ+645/Bvwn+LPf6wh4LULnjnhiVG78Z4u/E3Sp"
    "NcXW4xTqsfk4SA1QS7S6CQmdmtbcwBs0fEa4grb3X7ouTb8nTR1gkmlrTsxm9zEWwRPuoH"
    "b/CNkalciJOgVBhDCcSLY/nPmSl5+HyIQCzGyzxxnxyKtqDwf916C3B6nB4OcIWidWHqbZ"
    "rOXJMp0CMZyLT+LP5k+SYZanZcQwfULZmMZbsoDSAdhgZu/1LVMJEooB8Ov5CCw2CwrFgV"
    "r3CL8hgNMcYBBwj2wq0TyqqFGpH/VSP0RDlSbGSSmlgjypgihC9hoJGfpiG6y2DVo9KdnA"
    "Vt+TVs7lYvFm9pbnUstTXOTpRWoP2rOKdSrDb1MQZ/G9tBxkzPFntMrYFNbw2D2EN4/Asm"
    "QHPoZkKdGv2Nezb0bUW8vbo/P2Raf1NV9n2CoXdnWDdjB1VlImHOWu58G8HFdSi1HgPg5s"
    "4qyY4KeRldznpOBuBfjLAGKJTFY3sFxqGg+IeKU9E3uWDVdd+dPE+K9oFLAGZpksQQvUNp"
    "6imPMumXPOlJRPmkOBBlqRq2fMUdcujK+WY8NoAsDfnRQA+LuTXIB5VhJgCh021ZTS+kKJ"
    "HdrmS5rlN4T3+ORDERv8yYd8IzzPSyKsIwoNM4vwL6N+T45wJJGm/IZGwX/ANMjWyGHrx5"
    "mLxRACd65hUgOTt/yxP22rBdYAzhFKsP8A54Pr9u/pJji/6p+laT2v4Ezp4K9UBy9hKN8q"
    "6X1g3MGREl4vZz3ZFWUKW3v5noA3BLi2aUEd6cATB8aSvdtHwEgpJ5yczNxBXgGjpHx7yA"
    "o4yDYNDQImzmmpITX8Vlv5M2zA/EXKadoxiWoU7UaTWvY4ijD1MCpBDdJyioEVYGC8FSRu"
    "OQNDZ5XDD3yJFLx3K4rIHgK8BtAzf1EPVxiG41m31x7+EVKAcJm56vc+nUlIwNkf4047hb"
    "lr6xuSgKSkIgF1IQESE23o2t2YBCRXnGxX6WM0ttg/Bc2ON34le7XWFLU5xlbYAibHZzGq"
    "cwszXkEgzXGpJ/LXsistVrIsx4rLfgTUoCanRDOKGCOiBMwMh1CwRISwj1jDpkpXU8REGH"
    "TX2Gyl7IK79ajzhixlVgkEGkiajo+OithVjo7y7So8TynyzV7DizjTFXN7la3+8gr/Szfu"
    "dj3rcn5b2rG+KcOthwZaMcfNgdrncs/cinvt1dIgsLe6CzeAS6ItxJDMVxTijVZsy4Ev8R"
    "FADCAhBh86VJhCuUFUsxydgIX1yEg+QKwh9ENB98WWSsJkdKYKLBmMRL7noNLai2gUWkqn"
    "CvYeiEcyUe8Xew3qCpBMBAmaupgaplI9dqt67Nexq/JAt25GneGp0J8nuD0adRm56I1Po3"
    "GQHjEvdPrKM4ZnW2KMvuT08JhInRugku2dnd/H6327CcNuUDzt8E1CHk0/m/T9SHqHGxs0"
    "a2kLGlFyDHzq9DrD9rjb+3QK/BdjLTHB5/3rwVVn3DkFQc0TPBr3B4POxSkg1LJtpE8wm0"
    "Q6w+HNYMxTWWshx3FtynMu290rnjiDhsl/n131zz/zhDvT0u6RXpOxZRrcz7Qkc6lWsMZD"
    "lRbcqKlrdqJt25uwZgY2yGLK1EtSbi9WRrB5aFfft22HDVw69bhaCXqUkdud3ntUa6YUX5"
    "LFlGhwVMrCK5VVEKchFv4KDyE2y5bANyu4Ebh1mywqhld3HaGClcM2JaWAlUwNypvwCu3K"
    "/s60kiQyKdU8TlP9Hqe4Najk8EqJqngU9dlgkx1PcSthOX+NRFL5bSTrVGBvLYduSkoRgC"
    "cdYml79zMdY+ktSXvWi4s6yCSjWO4ok3XpCmAu7hWrWW8uCnBqICfAZe8AejdXVy91uvea"
    "/efpGedsyW7JXG3JEodrPW5h2anGChf0vI2sJaILhjSY8ciYsSiZ1AIOejDQY2jKBBR9oe"
    "DRoAvhHGMdlx90OgRcMNidx/C2HMlhiC0+p4g3jpuqUdwNF/jvg98xpUR533bqfbtnn7Wp"
    "ByKQrbPzh0EwuBlzr4Ht0gnu34zFT8ul4vdg2L/sXnVOge1YM8NEEzzsDPpDVsLr4jXxH7"
    "w4T63Z+lO9pVU5P/Px2orzU1sgttpIdnGt8YZFIs2zYlQ/a/grdxmEYyKN6NTbhph9N5KY"
    "iPIBDgUaF4ygej8utmipIwlB+cZBu5Vo1yEn33Tvya6xZipL6XDX/UGnxyNcIzzBF93RdX"
    "c04ptDdIMsDULEhpF2ryf2i0CM67JdxEHEMh+YOnS3KmfnT4g1b4msfooJISvvR0uJKkN/"
    "rQ39yl36Ct2l/q7zchpzUkgpy1llWZ1uUqebauBbePJ0k2QqUD6bp3FNToC1ctn0HR1JQ1"
    "N5GYfrHDQWL1LiQJTtOtoCEsTvKYPcPKy73AsCCfgNnfPLyQZwBe7Z0sMjRPGgqbeWS6es"
    "Yh2xBelWfg7quZVOmB4zXqBA8g0RoVoPvZBVyDsqZTuGhgB0ENAs20A6MPChF8yV1c9dPx"
    "wIcI+QTcAjT3uEZILvLHe+YH8vkBcXy38Cv4cNz1nNlgPmFiJewFg+9MJ4sezleTN5ol5f"
    "0cMHTrCDHhB2EWDjasXDR7iY5Zf3HMU9RDIPkg0N5T7a1tqf7z6Kd88yumparnG3MVS/Kc"
    "0fkdOy9+6l5Rpo2N2GYUBMqCVmjJiE4rgSrQEu+dQ/nSHJ/qT8GwcSQgpXCa57Z8e1EdY5"
    "QOXwbQ06vQtxfNCXn+BBu3vBfrKFf4LPr/rCsquZljDrDjuXN70LnuKgmcuPlNfDtGuzaQ"
    "KuSm7gTgg1z6y7lTDW7GmYeMHVS6KdlWwe5NUvmJzQeUNtAyaYEKwE7RoxQXUvl7Jmq3u5"
    "lKuqoKsqMGSUbOOYmHJF1rl9PYa6ydwdF1RtXOc2DnSOjbYVJERVO9e5nQPTWinTclJIOZ"
    "jr4GBuIKC18S/XDNvnupcjH6hkJqgA1UFUUzOBTc5/tfIvB9hLPMyxZsn3MfufVjg0/z+u"
    "RSGw2bsH1xERyvrLKbj1vQm34rzerXDpciv47SEvyP4ABxpiuHt+5JUL8TeymP2V1/+MS5"
    "CU+3UL7teyvkDlA1Q+wBckduE8U4oux2QUqjLPqkaNB8k0cGZZJoI4x7MaCqWv5WJS2wI1"
    "mHp3fCtXv3+V0CjPuunziTfXZ53hwbGYHFghw6MjKuzW67W8Z9Snl2Gkv3IGd4X0uXzfYz"
    "x7LTMVTJAtlmHJJ9lpR9yF6W3/82igH/tBVPUReP0O2MgBBzznECSC1fI9iTyMqoSXVlqz"
    "hJFGmwMz4XP90K5/Z/YZBvuD1fbBnfJX1k9lt0nmR4YMyisiIA22lR/xuEAs/eeFPd4RuK"
    "1R91PvZnAKiDHHrj3BjL2PT/lsQoNdP8Genwn+NBSR9ucOxCyX1cjEUF1ieqiY4DvU5dhS"
    "Z5WKNREKKHRrdlK/1thu5aj+zEFl1btAZIfKXZiitDul3dVcu1OnhBvoxK3dmGmSF7du4K"
    "pTwi+La41PCY8Qpd4nZuxlQdbhOlsZ8QoV9uL+Mur3wAM0XQT41i0eJvUerbyTsuwP8gYs"
    "GU/jwVdN4wERL7QqyzQcbsnip5JlvtuKan2Gx5Y9pQyp94s37iRnVepSvhVMtHIWat4D5F"
    "CHAmmmaWgU/Mc6BNnH9XINzByKBJ3MRKBMB5tM8UReQToCpbqbO38E7Cfdl2zaDK/qrYEz"
    "R1AtyaoUULD8JYmzmMLrkR9KQgRpOOCx7wz9GxG++1ZHD6c/Phr6T96+H/YTmZa9RJgC05"
    "obWLoQPbc6tWeoXj4XrwnLrOyRROMW962cPcWGdl96Z1ZMpnEBTKu3OAtXcYnJISyvrkDM"
    "XIHoIMSaaiZhQfm3H8ZlFKRSSHUoUZ84r1wDqS+zjlHurUlBBh0nhCnsokC8JdwdkZByeJ"
    "RweMAHRhKcKb8hQnpvVH5cloygmgSUN6np6mURb5IJCZ0ShPAG7Z6WVYc/62NHyLa0gR/Y"
    "xMqaTy9F9FNiTYt2Uv1GKQ8weTD8fGNAQkj5Z3O8ifl2MPnlU5LDMGe++OXnITLDCyNf1b"
    "WSyWU/uP1vc5iy9w42EagoIO/mSIVxf/drLBfCJ9qsvzk+qfMBTelGpYz0aXUnH9E+RmOL"
    "/fM0ru2wpoZ0vJKejDZyDG3Rkvgy/JzDdd4MGJV5yp2R/2XKrVAvt0KuEWHtbXM55oNaHT"
    "mo01ZgPqhKIOwXbyC6x0dHRRSNo6N8TYPnFbwGNH8rRv41oGozxukTmzFe1C3/9f/Zto89"
)
