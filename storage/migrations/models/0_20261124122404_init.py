"""The initial schema, as `aerich init-db` wrote it once against SQLite and once against
PostgreSQL: aerich emits SQL for one dialect only, and wxgpt runs on both.

MODELS_STATE is aerich's own, so that a later `aerich migrate` diffs against this schema.
"""

from tortoise import BaseDBAsyncClient

from storage.migration_sql import sql_for

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
CREATE INDEX IF NOT EXISTS "idx_conversatio_user_id_1f0c4c" ON "conversations" ("user_id", "updated_at");
CREATE TABLE IF NOT EXISTS "messages" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "role" VARCHAR(16) NOT NULL /* USER: user\nASSISTANT: assistant */,
    "content" TEXT NOT NULL,
    "status" VARCHAR(16) NOT NULL /* GENERATING: generating\nCOMPLETE: complete\nSTOPPED: stopped\nINTERRUPTED: interrupted\nFAILED: failed */,
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
CREATE INDEX IF NOT EXISTS "idx_messages_convers_f5b5a9" ON "messages" ("conversation_id", "id");
CREATE INDEX IF NOT EXISTS "idx_messages_reply_t_458d3d" ON "messages" ("reply_to_id");
CREATE TABLE IF NOT EXISTS "quota_ledger" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "delta" INT NOT NULL,
    "reason" VARCHAR(16) NOT NULL /* SIGNUP: signup\nCHAT: chat\nREFUND: refund\nGRANT: grant\nSET: set */,
    "client_msg_id" VARCHAR(64),
    "actor" VARCHAR(64),
    "note" VARCHAR(255),
    "created_at" TIMESTAMP NOT NULL,
    "message_id" INT REFERENCES "messages" ("id") ON DELETE SET NULL,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_quota_ledge_user_id_8b6f89" UNIQUE ("user_id", "client_msg_id", "reason")
) /* Every change of a user's quota; unique per (user, client_msg_id, reason). */;
CREATE INDEX IF NOT EXISTS "idx_quota_ledge_message_2ca7be" ON "quota_ledger" ("message_id");
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
CREATE INDEX IF NOT EXISTS "idx_conversatio_user_id_1f0c4c" ON "conversations" ("user_id", "updated_at");
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
CREATE INDEX IF NOT EXISTS "idx_messages_convers_f5b5a9" ON "messages" ("conversation_id", "id");
CREATE INDEX IF NOT EXISTS "idx_messages_reply_t_458d3d" ON "messages" ("reply_to_id");
COMMENT ON COLUMN "messages"."role" IS 'USER: user\nASSISTANT: assistant';
COMMENT ON COLUMN "messages"."status" IS 'GENERATING: generating\nCOMPLETE: complete\nSTOPPED: stopped\nINTERRUPTED: interrupted\nFAILED: failed';
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
CREATE INDEX IF NOT EXISTS "idx_quota_ledge_message_2ca7be" ON "quota_ledger" ("message_id");
COMMENT ON COLUMN "quota_ledger"."reason" IS 'SIGNUP: signup\nCHAT: chat\nREFUND: refund\nGRANT: grant\nSET: set';
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


async def upgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, dict.fromkeys(UPGRADE, DOWNGRADE))


MODELS_STATE = (
    "eJztXG1z2jgQ/isaf2kyw3VaLk0z5OZmSOqkXAnkwLl22nRcBQvwxMiuJSdlevnvt5Jt/A"
    "44IRQ4f8mAtCuLZyXt7qN1fioT2yAWe3lq0zviMsxNmyoN9FOheELgQ25/DSnYcaJe0cDx"
    "jSUVBjFJ2YNvGHfxgEPnEFuMQJNB2MA1neBhShN5jLgvGIrrHiNucosYCA85cZHJGRqaLu"
    "NoQhjDI/JSjG3YAxjcpKOnDeNR87tHdG6PCB8TFwb78hWaTWqQH4SJr18UMbaUdQzMiaFj"
    "rnwVQs6tPjSJZSRQMw0hKtt1PnVkW4vyMyko5n2jD2zLm9BI2JnysU1n0iblonVEKHHF86"
    "CNu54Aj3qWFYAd4unPPxLxJx7TMcgQe5YwgdD2JxC1Kbre6Wp6X9V0XcmYJ9SIQR00Ac7C"
    "tDBVJn/9SEzht/rrg7cHR78fHhyBiJzmrOXtg//oCBhfUcLT0ZQH2Y859iUk8hGo0pBZXE"
    "/H2M0HdqaQwhYmncY2RHIeuGFDhG60ntcB7wT/0C1CR3wMX1+/ejUHzH+avdP3zd4eSO2L"
    "R9qwAf3t2Qm66n6fQDxCeOCScG1nYH4HPdyckHyok5opvI1A9WX4YRvRhx9odKk1DTbVHP"
    "C11oXa15oXl+JxE8a+WxK/pqaKnrpsnaZa9w5TdpoNgj62tPdIfEWfux1VwmszPnLlEyM5"
    "7bMi5oQ9buvUvtexEdv/YWuIWsLqsROtpNWTmpXVt8rq4M/0Un4qprHYWW2DcVfgr0QEML"
    "zNdVdhwJBE98x2iTmiH8hUgtyCGWE6yPNSQeR1FQyzZeA+hKsnbI2WpYvvZyFTfFHBb4df"
    "TLjv1Zv90+Y7VZEI3+DB7T12Db0A6iCWY1m4TwLNsw89Ys2i13ykL/xRdghsCZ5dt2OgJe"
    "DMdk3qk3QLpgCKETxbPCkFV062EEOyOFGIG21xjtClJAzZjxGmCDNmiq3DkUscawp/B7Zr"
    "MDS27yHIRwQMYdRkuM/tW0IZ6BiQCkwARpZNHVY++jIZxSCVU8EuAJkvinwkqFb5xXrzC9"
    "cuSi9U6k0yx3UC41B3kzMN5aqv9hoySb6mzX6/BRFER2tEiz29LZbKQw6XSUPScU4sCznM"
    "JCE25YTmxKIa+VGwwmMqm2yAsud5bpipftISEWYI5d5F89N+IspsdzvnoXgM+tN29yQFOV"
    "ifeznec7m1H2mvD3xAbOLIWKHkHjhXO2qvqbU65w0UTAwscU1PuxeXbVVTGygc+Zr2te7l"
    "pfqugRi3HYcY1xQOEbXXu7rURCtYi7iu53DRc9ZstUXjEJsWMTZkJ1km7Ap9wka5gX4xcZ"
    "JRfJRhA9+wKZsqifbhwRJoHx4Uoi26kmgPTWqysQ4ZI/P9+bJoZxR3D+3Vr23HhW3KdT/8"
    "KhEMZfTWl8q+2ui4KO6A5QFoClTKwpurW0GchlheQfgIwSlbAt+s4qPA3bTDYsXwGp4rs6"
    "py2Ka0KmBzjobqguB/SBXHiYpylHGOZkUd5+yrkPIph25KqzqwFnLyacrtidx8uipiy1bx"
    "shx9zi7O5+rzlvQKYF6emN+w1bwswKmNnAAX5oA6V+32vJuQ56T5//ZsjtvEGEkWO0P1x7"
    "tr8+j+70IQMsKZ5ELKX4VFN0WDMaYjguwhwmF9jxzqGPlWRg5x0Z7oqaEEb1FDfka9n6X7"
    "VzpyDtUfVQtlmJQgy/+auQ0Irh8q0n+9pD+sU47LJAmhfBXH5MYxxeTXEpcoT2PA1nWN0m"
    "+dd64uG4iBE/Oca3r6vqk1xGnCr2lPPbvqvGvAATH0qHFNz3vyimXkYgq9MCKokU25aKno"
    "4TXSw+Dq7Jx6kGKUZwoVuovRpTYvVRoayu8etvU3b5YAF6QK0ZV9Fe9T8T5BSFqOlEgqVZ"
    "xENkiqKi+ryssNIB0WVl7mHAUVmbMY1+QBuFFcTp9w7v/EDI8TdtXmcTjMF1r6ta6/+t0O"
    "usOWRxBkQ8RFGN2S6THiYyI+sBdoQjCFEZFl3hGG7k0+Fp2mKxgWUMgp1VzZqItLNAuZGH"
    "hKmWAzEF9NUvtr2ZhnCeOL2Rlp5SzUYgXkQz1TSEea5oCjf2FBsG30l3NgFlAkwslMPWC6"
    "9C8VJ4oB0vWA1RtBxTtgO8P9EKNYvD97QSDjftbvmGSoleOVwhCs2CWJKGZpf/SRwCHNJd"
    "mP9myHUNPYryHbRd8Mctf44940/vyGhvAdvhLLdiaEcmTZI5PmOqKnDvcED1TdBTzDXYBv"
    "wjKePdLYOef+un60DOFcPypmnEVfiqYzB7fycwmM4zprLDBXtiqEiiCWV5glDoeZfFWlmS"
    "ZqbjClJOc8OLFtCzKMfDwjpRSgN6D1XIjOWtYbfJ50u+1EcHPSSr9tcnVxosIxIRcwCJl+"
    "IlxVFu5+yLkMw2xhxnVGCH2E3dO6K7D8ZjJOm27onNzCt3SJ5CK/RO+JL3TvaHlecgfNCq"
    "oej1OqhmtXYHrOhLVJXHMwVnJS1qCnNi9pxZHMoqy1GIYqe9ys7FEcNbllxcWpTUxlkyue"
    "NqkSQWyqEggH4juI7vP8A7Cid++LGffid+8rzn0R5/5L2deH/wCXSlYc"
)
