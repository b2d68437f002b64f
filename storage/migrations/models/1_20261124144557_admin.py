"""Admin console accounts, their sessions, and the audit log of admin actions.

As in the initial migration, aerich's SQL for SQLite and for PostgreSQL are both kept, and
MODELS_STATE is aerich's own.
"""

from tortoise import BaseDBAsyncClient

from storage.migration_sql import sql_for

RUN_IN_TRANSACTION = True

UPGRADE = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS "admins" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "username" VARCHAR(64) NOT NULL UNIQUE,
    "password_hash" VARCHAR(255) NOT NULL,
    "role" VARCHAR(16) NOT NULL /* ADMIN: admin
OPS: ops */,
    "created_at" TIMESTAMP NOT NULL,
    "last_login_at" TIMESTAMP
) /* An operator account of the admin console; never a chat user. */;
CREATE TABLE IF NOT EXISTS "audit_log" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "admin" VARCHAR(64) NOT NULL,
    "action" VARCHAR(32) NOT NULL,
    "target" VARCHAR(128) NOT NULL,
    "detail" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL
) /* One admin action; the admin is kept by name so the log outlives the account. */;
CREATE INDEX IF NOT EXISTS "idx_audit_log_admin_d363b7" ON "audit_log" ("admin", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_log_action_950116" ON "audit_log" ("action", "id");
CREATE TABLE IF NOT EXISTS "admin_sessions" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "created_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "admin_id" INT NOT NULL REFERENCES "admins" ("id") ON DELETE CASCADE
) /* A logged-in admin console session; only the token's hash is kept. */;
""",
    "postgres": """
CREATE TABLE IF NOT EXISTS "admins" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "username" VARCHAR(64) NOT NULL UNIQUE,
    "password_hash" VARCHAR(255) NOT NULL,
    "role" VARCHAR(16) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "last_login_at" TIMESTAMPTZ
);
COMMENT ON COLUMN "admins"."role" IS 'ADMIN: admin
OPS: ops';
COMMENT ON TABLE "admins" IS 'An operator account of the admin console; never a chat user.';
CREATE TABLE IF NOT EXISTS "audit_log" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "admin" VARCHAR(64) NOT NULL,
    "action" VARCHAR(32) NOT NULL,
    "target" VARCHAR(128) NOT NULL,
    "detail" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS "idx_audit_log_admin_d363b7" ON "audit_log" ("admin", "id");
CREATE INDEX IF NOT EXISTS "idx_audit_log_action_950116" ON "audit_log" ("action", "id");
COMMENT ON TABLE "audit_log" IS 'One admin action; the admin is kept by name so the log outlives the account.';
CREATE TABLE IF NOT EXISTS "admin_sessions" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "created_at" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "admin_id" INT NOT NULL REFERENCES "admins" ("id") ON DELETE CASCADE
);
COMMENT ON TABLE "admin_sessions" IS 'A logged-in admin console session; only the token''s hash is kept.';
""",
}

DOWNGRADE = """
DROP TABLE IF EXISTS "admin_sessions";
DROP TABLE IF EXISTS "admins";
DROP TABLE IF EXISTS "audit_log";
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, dict.fromkeys(UPGRADE, DOWNGRADE))


MODELS_STATE = (
    "eJztXWtz4jYU/Ssavmx2Jt1J2DTdYTudIQnJ0iaQBtJ22nRcxRagiZG8lpws0+a/90rG+A"
    "12Aiyw/pIBSVcW5+px7rGk/Fsbc4vY4l3TGlNWa6B/awyPCXyIZ+yjGnacMFklSHxv65JY"
    "FdFJ+F5IF5sSUgfYFgSSLCJMlzqSclV9rckQd4iLJXcRNk3uMYn4AMkRQboaZHImuE0+Ik"
    "YeCZRB5ghL5AnivlNPsLgJj6BsuIzKPEY/e8SQfEjAxoUq//obkimzyBcigq/OgzGgxLZi"
    "6FBLVaDTDTlxdFqbyXNdULXz3jC57Y1ZWNiZyBFns9KUSZU6JEz9AqKql66nIGOebU+xDV"
    "D0WxoW8ZsYsbHIAHu2Al5Z+w0I02qG0en2jV6rbxi1lFMCiwi00ySFHzgUmir0rx+qJnxX"
    "Pzz64ejD++OjD1BEN3OW8sOz/+gQGN9Qw9Pp1551PpbYL6ExDkFVjtGfU9CejrCbjW3UJo"
    "EwND2JcIDn5kI8xl8Mm7ChHMHX46M5eP7WvDn91LzZOz56qx7IYeD547EzzanrLAV5CLGD"
    "hXjirmWMsBiVwTlluBywg4QQ7XDiWDvc9e+/L4A3lMoFXOfFEXdhAsoGusW8sQa7DW3CzC"
    "Qp0APb9WHtT+a1cnDXmmdX7U7Dn3TvWPe614CJWSTn6yIuODwu4IHD41wHqKw4/qZLFEYG"
    "lmkvnEGOpGOS3eXjlgkfWFPTd8GHbez98AOtLrMn00luDvT99lWr129eXavHjYX4bGv8mv"
    "2Wyqnr1EkidS/pplkl6Pd2/xNSX9Gf3U5Lw8uFHLr6iWG5/p811SbsSW4w/mRgKzIfB6kB"
    "ajGv21hIw+ZDyl7g+JTxEnw/bfSmuH5LXB1gkvK1ImaDhwiLUAn32Hx4wrBGxXLCTiGIEI"
    "CTSPeHk6nl+S83xMYazLTbo4y451e1hYP+OejtQWow+BWCvM7zME1njevjZApmeKh/knq2"
    "elIWZnlRRgTTBcGGEfVkgaADwWCGdn0HIUEsMEDTej4iDrOgDhwkfyDsjUCK5iAq0ANxZE"
    "bksYwaq/Bjs8IP7ajSxDhuVYUgC0OQipB9i4SMfHEo1PYCr8ctd9DrW+LlXC4WdbO/PJda"
    "nqImixepLfDnMtapFL9NQJzG95y7hA7ZL2SS0hTm8NgthDePwEKyi59mZCnWr+DXw28m0l"
    "/Lm73T5lmr9pwfM6yUC3sWlS0m3UkmEw5z5/NgVU4FqcUocJcFmjgU0/w0VMmnnBTdT5Bq"
    "DBJcZ0LdiHvSpo9E+KV9iT3Nhpdd+WJi/Fc4CsDBkAkJZhC2qZSKOa+TOedMSfmkeWawgy"
    "ry8hlz2LUL42vmaBi7APD7egGA39dzAVZZcYAldmGqKRX1zSzWqM2XlOVfCO9h/UMRDb7+"
    "IV+EV3lxhC0iMbXTCP/c63ayEQ4tkpSfmhL9h2wqVkYOaz8OPKaHELr3qC0pE+/UY39alQ"
    "fmAK4QirH/AOe9q+YfSRecXnZPkrReVXBSxeDfaAxeQihfJek95eyRuALLHAE4lj+X+JqR"
    "koX1X7VL4I1AUVsgqVTaxEJ4IImLqBRoQF0h0ZgIAT8iS/R9aTVFCK2qW5d1rGCAVSx2vf"
    "qvcmQpEhAY7CDJOjw4KMICDg7yWYDKq5adb3PZiXo9MqOV9HrcsvL6Vnkd1rNyQnDEotKB"
    "F+vAAWF4pQx8O61my8AtqgJHOlVZEThCUn0u98qNI1d+LTsE9kr3jARwZUQLESTzA4Wo04"
    "oJ5FOLjwgzhIWgauhI5BLHnsBfk7uWQCP+BCQfEXCEta/pvt4AIMDGglBgDDCKbIV8qbUX"
    "iSjMREwVKOX6kWBaxRfrjS+2aydweaBrt73WTUMHyXes2eu1gUF0+o2wsyeHxVfaEMyZJC"
    "yDi/bJl5weHjHZZAcsZcdB64/+fLlxxjIvu52LoHhSg4xDDt6XXsbqWazvh9Zr1NpNPnY0"
    "Vyg5Bi5andZNs9/uXDTQtGHgiTt22r26vmz1Ww0U1HzHev3u9XXrrIGE5I5DrDsGk0jr5u"
    "b2uq9SwVvEdT1HqpzzZvtSJQ4wtYm1ISPJpjAqjLEYZhL9fOEkZfgix27YlupVvwUcUEbF"
    "yICIUZR7GZgy3D20l9+3HReGqTR8+lWCDKXs1hfKHmw0L4ouwHoCpAqVsvBm2lYQJyHWry"
    "B8hGCWLYFv2vBF4G7aZLFkeC3P1VFVOWwTVhWwGVND9YLgG5SKo0JFOck4w7KSjjPGVSD5"
    "lEM3YVVNWAs1+aTk9kptPrkrYst6cVGNPmMUZ2v1WV16CTAXF+Y3rDcXBTgxkGPgQhtQ5/"
    "by8mtth//V4xJfEmuoVeyU1B/N3p8n939WBSEinJVcKPm3oNNN1JUwbEjUvTE42N+jq/qI"
    "fC8jh7hoT+Xso5husY/8iPptWu5fas0ZUn+4WyilpEyj/L9TbwOmrx8q0X+9oj/0U4nLBA"
    "lB+YrHZPKYfPGrwEuU1ylg63qN0mtfdG6vG0jAIuY5d+z0U7Pf0FdX3bGb1vlt56wBE8TA"
    "Y9Ydu7jRr1iGLmaQCzWCGdmUFy2VPLzeQyI8Yz/I3DMivkGF7mJ0GZeltoYG5XcP25Vckl"
    "XpPvno767uM6Wk5USJuFGlSaRJUrXzstp5uQGiw8KdlxlTQSXmLMY1PgFulJbTI1L6PzGl"
    "4wRZ+/M0HOEXKnysSx1tRI/Y9giCaEjf8PtAJv71A/BBvEFjghnUiPyLBp6oHKlM6iqFBQ"
    "wytmourdZXXO8FTylDNqfFq7uncmh8vjqjvZyGOv9U8sxg/YeSv85+wJUcP65OBOWPgO2k"
    "+wFGEb4/OyCwAcePNdXKWJUCCpa/JCkWU3g9+p2cBhfMoz3uEEatt/uIu+gfizw2fnyi1k"
    "//oAF8h6/E5s6YMIn0RbOZC9Frq6sumNysdwG+C8us7KHFzi3uK7lmhFHzoex/EIja7Nxl"
    "LstXQvUrzBKTw6x8tUszKdTcY8ZIxnxwwrkNEUY2nqFRAtB7sFoVorOU9ZLPk273MkZuTt"
    "rJ0ya3VyctmCZ0B4ZC1A+Eq52Fu085C/8bAEHIi/8LQMS2+icAmxNb+J4uEVxkb9F75YHu"
    "Hd2eFx9Bsw1VL8cpsYdrV2BaZcDaJC41R7WsC2L9nP25l8OGZRZFrfkwVNHjZkWPaqopeQ"
    "1oxGSTdzxt0k4ENahKIDwtvoPoruYCsLyz9/mKe/7Z+0pzX6S5f1X19fl/5pFdug=="
)
