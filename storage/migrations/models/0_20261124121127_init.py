"""The initial schema, written by `aerich init-db` once against SQLite and once against
PostgreSQL: aerich emits SQL for one dialect, and wxgpt runs on both."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

UPGRADE = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS "settings" (
    "key" VARCHAR(64) NOT NULL PRIMARY KEY,
    "value" JSON NOT NULL,
    "updated_at" TIMESTAMP NOT NULL
) /* A JSON value under a key; the keys' meaning lives with their readers. */;
CREATE TABLE IF NOT EXISTS "users" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "openid" VARCHAR(128) NOT NULL UNIQUE,
    "nickname" VARCHAR(64) NOT NULL,
    "quota" INT NOT NULL,
    "banned" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "last_seen_at" TIMESTAMP
) /* A WeChat user (openid), or `dev:<wid>` for development logins. */;
CREATE TABLE IF NOT EXISTS "conversations" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "title" VARCHAR(100) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
) /* A user's conversation; titled after its first message. */;
CREATE INDEX IF NOT EXISTS "idx_conversatio_updated_0a97ea" ON "conversations" ("updated_at");
CREATE TABLE IF NOT EXISTS "messages" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "role" VARCHAR(16) NOT NULL /* USER: user
ASSISTANT: assistant */,
    "content" TEXT NOT NULL,
    "status" VARCHAR(16) NOT NULL /* GENERATING: generating
COMPLETE: complete
STOPPED: stopped
INTERRUPTED: interrupted
FAILED: failed */,
    "client_msg_id" VARCHAR(64),
    "finish_reason" VARCHAR(16),
    "prompt_tokens" INT NOT NULL,
    "completion_tokens" INT NOT NULL,
    "first_token_ms" INT,
    "duration_ms" INT,
    "created_at" TIMESTAMP NOT NULL,
    "conversation_id" INT NOT NULL REFERENCES "conversations" ("id") ON DELETE CASCADE,
    "reply_to_id" INT REFERENCES "messages" ("id") ON DELETE SET NULL
) /* One message; an assistant reply records how it ended, its tokens and timings. */;
CREATE TABLE IF NOT EXISTS "quota_ledger" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "delta" INT NOT NULL,
    "reason" VARCHAR(16) NOT NULL /* SIGNUP: signup
CHAT: chat
REFUND: refund
GRANT: grant
SET: set */,
    "client_msg_id" VARCHAR(64),
    "actor" VARCHAR(64),
    "note" VARCHAR(255),
    "created_at" TIMESTAMP NOT NULL,
    "message_id" INT REFERENCES "messages" ("id") ON DELETE SET NULL,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_quota_ledge_user_id_8b6f89" UNIQUE ("user_id", "client_msg_id", "reason")
) /* Every change of a user's quota; unique per (user, client_msg_id, reason). */;
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSON NOT NULL
);
""",
    "postgres": """
CREATE TABLE IF NOT EXISTS "settings" (
    "key" VARCHAR(64) NOT NULL PRIMARY KEY,
    "value" JSONB NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "settings" IS 'A JSON value under a key; the keys'' meaning lives with their readers.';
CREATE TABLE IF NOT EXISTS "users" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "openid" VARCHAR(128) NOT NULL UNIQUE,
    "nickname" VARCHAR(64) NOT NULL,
    "quota" INT NOT NULL,
    "banned" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "last_seen_at" TIMESTAMPTZ
);
COMMENT ON TABLE "users" IS 'A WeChat user (openid), or `dev:<wid>` for development logins.';
CREATE TABLE IF NOT EXISTS "conversations" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "title" VARCHAR(100) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_conversatio_updated_0a97ea" ON "conversations" ("updated_at");
COMMENT ON TABLE "conversations" IS 'A user''s conversation; titled after its first message.';
CREATE TABLE IF NOT EXISTS "messages" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "role" VARCHAR(16) NOT NULL,
    "content" TEXT NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "client_msg_id" VARCHAR(64),
    "finish_reason" VARCHAR(16),
    "prompt_tokens" INT NOT NULL,
    "completion_tokens" INT NOT NULL,
    "first_token_ms" INT,
    "duration_ms" INT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "conversation_id" INT NOT NULL REFERENCES "conversations" ("id") ON DELETE CASCADE,
    "reply_to_id" INT REFERENCES "messages" ("id") ON DELETE SET NULL
);
COMMENT ON COLUMN "messages"."role" IS 'USER: user
ASSISTANT: assistant';
COMMENT ON COLUMN "messages"."status" IS 'GENERATING: generating
COMPLETE: complete
STOPPED: stopped
INTERRUPTED: interrupted
FAILED: failed';
COMMENT ON TABLE "messages" IS 'One message; an assistant reply records how it ended, its tokens and timings.';
CREATE TABLE IF NOT EXISTS "quota_ledger" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "delta" INT NOT NULL,
    "reason" VARCHAR(16) NOT NULL,
    "client_msg_id" VARCHAR(64),
    "actor" VARCHAR(64),
    "note" VARCHAR(255),
    "created_at" TIMESTAMPTZ NOT NULL,
    "message_id" INT REFERENCES "messages" ("id") ON DELETE SET NULL,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_quota_ledge_user_id_8b6f89" UNIQUE ("user_id", "client_msg_id", "reason")
);
COMMENT ON COLUMN "quota_ledger"."reason" IS 'SIGNUP: signup
CHAT: chat
REFUND: refund
GRANT: grant
SET: set';
COMMENT ON TABLE "quota_ledger" IS 'Every change of a user''s quota; unique per (user, client_msg_id, reason).';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);
""",
}

DOWNGRADE = """
DROP TABLE IF EXISTS "quota_ledger";
DROP TABLE IF EXISTS "messages";
DROP TABLE IF EXISTS "conversations";
DROP TABLE IF EXISTS "users";
DROP TABLE IF EXISTS "settings";
"""


def _for(db: BaseDBAsyncClient) -> str:
    dialect = db.capabilities.dialect
    if dialect not in UPGRADE:
        raise RuntimeError(f"wxgpt migrations support SQLite and PostgreSQL, not {dialect}")
    return dialect


async def upgrade(db: BaseDBAsyncClient) -> str:
    return UPGRADE[_for(db)]


async def downgrade(db: BaseDBAsyncClient) -> str:
    _for(db)
    return DOWNGRADE


MODELS_STATE = (
    "eJztnP1P2zgYx/8Vq78MpB7aeoyhcjqpQGC9lZZrw23amDLTuG1EamexA6t2/O9nO0nz5r"
    "QNlC708gtqbT9O+vHb83zzhJ+1KTGRTfdOCL5DLoXMIrjWBD9rGE4R/6Csr4MadJyoVhQw"
    "eGNLg2GspayBN5S5cMh45QjaFPEiE9GhaznBxWot4FHkvqIgbnsEmMVsZAI4YsgFFqNgZL"
    "mUgSmiFI7RnujbJEPeuYXHT+vGw9Z3DxmMjBGbIJd39uUrL7awiX4gGn51bo2RhWwzwccy"
    "RQey3GAzR5a1MTuTDcUd3hhDYntTHDV2ZmxC8Ly1hZkoHSOMXMiQ6J65nsCEPdsOsIbk/D"
    "uNmvi3GLMx0Qh6toAtrP0biMpqhtHt6cZA0w2jlhmI0CIGNSjiRMUg8lul8tePxS381niz"
    "/27/8PeD/UPeRN7mvOTdg3/pCIxvKPF09dqDrIcM+i0k4wiqHLIs15MJdNVg5wYptvym02"
    "xDkovghgUR3WjmbgLvFP4wbITHbMK/vnn9egHMf1r9k/et/g5vtSsuSfhS8xdiN6hq+HWC"
    "eER46CLBw4Asi/mU1zBritSok5Yp3mZguhd+eIn0+Q80e9ieBYtqAXy9faEN9NbFpbjclN"
    "LvtuTX0jVR05Cls1TpzkFqnOadgI9t/T0QX8HnXleTeAllY1deMWqnf66Je4IeIwYm9wY0"
    "Y+s/LA2pJUbdc8xHjnrScjOjvtEdbYsHnR+KRqFjKmax/Kx6CSt6DceVcABGt8rTSuDK0j"
    "0jLrLG+AOaSchtfkcQD1WHVOBiXQXdvDC4D+HsCUujaenC+7nHFJ9U/LfzX4yYf6i3Biet"
    "U60mCd/A4e09dE0jB3XgtNEs7uPA8uxDH9lzN1VN+sLvZYtgS3ikQWLQEjizVdPGNF0CMY"
    "diBtcWV0rhUoQFMZL5EUF80JYHAz2MQt/8CEAMIKWWWDoMuMixZ/zvkLgmBRNyz715gPhA"
    "mHXp1zNyizDlNib3+accI83GCGvvvQodyhU6uCQvctCwN81sxQnGoW2Zg4ja1UDrN2Wke4"
    "1bg0GbewddvRlN5PSUXynEOFglwkj7MLEA4yATXxDMEFa4mTr6kTPDYyZlHoCie7XShdQ+"
    "6QnvMUS5c9H6tJvwIDu97nnYPIb+pNM7TiHno888xcm42tyPrDcHnxObOtIPKLgGzrWu1m"
    "/p7e55EwQ3xkfiGp/0Li47mq41QdjzNR7ovctL7bQJKCOOg8xrzDcRrd+/utRFKR8t5Lqe"
    "w0TNWavdEYUjaNnILMlKsi2+KowpHSud+HxNJGP4qIENzoayLKok7YP9FWgf7OfSFlVJ2i"
    "MLW3Ri8GiQ+h7kqrQzhttHe/1z23H5MmWG71oVcIYydpsLU1+X2i+KH8ByA7QElaJ4lbYV"
    "4jRi+RzBJ8R32QJ8s4aPglu2zWLNeE3PlXF8MbYpqwqsYmuotP//oQwcfyhaTA5WWFaysG"
    "JdSQWJb+vF6Kasqg1rqd4+TOUiPFF3T6c2vLBZvKr+rljFah1eNaXXgHl10b1ks3lVwKmF"
    "nIDL7wF0rzqdRU85nlPC/9sjDHaQOZYKdUbGj1fXF0n530VDHhHOWy6V8zU+6WZgOIF4jA"
    "AZARgm6ciujoA/ysBBLtgRNXWQ0C3qwI+od7NS/lp7Vsj4X+YP9jJKShDlf62U/l+o9PPJ"
    "yWCRyCBsXzkvSuclX/Fa4cnJ02SvTT07GbTPu1eXTUD5yeU51/jkfUtvii2EXeO+dnbVPW"
    "3yXWHkYfMan/flc5WxCzGv5T1yM1SWpyuVJrxBTZifb0SR4JFPeW5Q0V1OFxNWKNUzbL99"
    "bBtv364Al7fKpSvrKrGnEnuCFJdiSkTSqBIisk5SlUpZpVKWQGlYmkqp2AoqBWc51+QGWC"
    "oBZ4AY839iRrwJq+qLhBvqN1r5hay/Br0uuIO2hwCPhpALILhFsyPAJkh8oK/AFEHMewS2"
    "dYcouLfYRFRarpBVuIEi93JtvT4h55JfpYizGTRfT1D7a9WYZ3Hj89UZOcpZ1GIGqFHPDd"
    "KepjVk4F8+IehLPC8XYBYoEu5kJgkwne+X8hNFB+kkwJf1hk/l7i9390NGMX9/nvGfOX42"
    "fzBJV0txKoUuWP6RJLyYlc+jj4hv0kwq/GCHOAhb5m4dEBd8M9Fd8497y/zzGxjx7/wrso"
    "kzRZgBm4wtrDyIntpdlfVfrmcB/hAWOdkji6073N80DlcRnBuH+YqzqEvJdNbwVn4uwDhu"
    "s8Gs8tqLcqEixPK5ZYHNYd6+Ss1MCzU3EGOk2A+OCbF5hKHmGRmlgN5wq+ciOi/ZrPN53O"
    "t1Es7NcTv9isnVxbHGtwk5gXkjyw+Eq3TC7Xc5V1GYbUiZQRHCjxj3tO0aRr6cilPZB1oR"
    "W/gjXSC4UOflPfEN7S3NyUuuoHkW1eM5pRK3tgXTcwasLeRaw0lNEbIGNfVFQSuM2iyLWv"
    "MxVNFjuaJHsdUoc4nzQ5uYSZkznsqUiSAWVQHCQfMtpPs8/9Ar74X7fMU9/4X7SnNfprn/"
    "UvX14T+s4T5g"
)
