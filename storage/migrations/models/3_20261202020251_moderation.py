"""Moderation: the blocked message status, moderation cases (blocked text with its verdict, users' reports), avatars

As in the initial migration, aerich's SQL for SQLite and for PostgreSQL are both kept, and
MODELS_STATE is aerich's own.
"""

from tortoise import BaseDBAsyncClient

from storage.migration_sql import sql_for

RUN_IN_TRANSACTION = True

UPGRADE = {
    "sqlite": """
        CREATE TABLE IF NOT EXISTS "avatars" (
    "content_type" VARCHAR(32) NOT NULL,
    "data" BLOB NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "user_id" INT NOT NULL PRIMARY KEY REFERENCES "users" ("id") ON DELETE CASCADE
) /* A user's uploaded avatar image; in the database, so every replica serves it. */;
        CREATE TABLE IF NOT EXISTS "moderation_cases" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(16) NOT NULL /* INPUT: input\nOUTPUT: output\nPROFILE: profile\nREPORT: report */,
    "conversation_id" INT,
    "content" TEXT NOT NULL,
    "checker" VARCHAR(16),
    "verdict" VARCHAR(16) NOT NULL,
    "label" VARCHAR(64) NOT NULL,
    "note" VARCHAR(255) NOT NULL,
    "state" VARCHAR(16) NOT NULL /* OPEN: open\nDISMISSED: dismissed\nBANNED: banned */,
    "resolved_by" VARCHAR(64),
    "resolved_at" TIMESTAMP,
    "created_at" TIMESTAMP NOT NULL,
    "message_id" INT REFERENCES "messages" ("id") ON DELETE SET NULL,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
) /* Something for an operator to review: blocked text with its verdict, or a user's report. */;
CREATE INDEX IF NOT EXISTS "idx_moderation__state_c13692" ON "moderation_cases" ("state", "id");
CREATE INDEX IF NOT EXISTS "idx_moderation__user_id_fc20eb" ON "moderation_cases" ("user_id", "id");
CREATE INDEX IF NOT EXISTS "idx_moderation__created_375e15" ON "moderation_cases" ("created_at");
        ALTER TABLE "users" ADD "avatar_version" INT NOT NULL DEFAULT 0;""",
    "postgres": """
        CREATE TABLE IF NOT EXISTS "avatars" (
    "content_type" VARCHAR(32) NOT NULL,
    "data" BYTEA NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "user_id" INT NOT NULL PRIMARY KEY REFERENCES "users" ("id") ON DELETE CASCADE
);
COMMENT ON TABLE "avatars" IS 'A user''s uploaded avatar image; in the database, so every replica serves it.';
        CREATE TABLE IF NOT EXISTS "moderation_cases" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "kind" VARCHAR(16) NOT NULL,
    "conversation_id" INT,
    "content" TEXT NOT NULL,
    "checker" VARCHAR(16),
    "verdict" VARCHAR(16) NOT NULL,
    "label" VARCHAR(64) NOT NULL,
    "note" VARCHAR(255) NOT NULL,
    "state" VARCHAR(16) NOT NULL,
    "resolved_by" VARCHAR(64),
    "resolved_at" TIMESTAMPTZ,
    "created_at" TIMESTAMPTZ NOT NULL,
    "message_id" INT REFERENCES "messages" ("id") ON DELETE SET NULL,
    "user_id" INT NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_moderation__state_c13692" ON "moderation_cases" ("state", "id");
CREATE INDEX IF NOT EXISTS "idx_moderation__user_id_fc20eb" ON "moderation_cases" ("user_id", "id");
CREATE INDEX IF NOT EXISTS "idx_moderation__created_375e15" ON "moderation_cases" ("created_at");
COMMENT ON COLUMN "moderation_cases"."kind" IS 'INPUT: input\nOUTPUT: output\nPROFILE: profile\nREPORT: report';
COMMENT ON COLUMN "moderation_cases"."state" IS 'OPEN: open\nDISMISSED: dismissed\nBANNED: banned';
COMMENT ON TABLE "moderation_cases" IS 'Something for an operator to review: blocked text with its verdict, or a user''s report.';
        COMMENT ON COLUMN "messages"."status" IS 'GENERATING: generating\nCOMPLETE: complete\nSTOPPED: stopped\nINTERRUPTED: interrupted\nFAILED: failed\nBLOCKED: blocked';
        ALTER TABLE "users" ADD "avatar_version" INT NOT NULL DEFAULT 0;""",
}

DOWNGRADE = {
    "sqlite": """
        ALTER TABLE "users" DROP COLUMN "avatar_version";
        DROP TABLE IF EXISTS "avatars";
        DROP TABLE IF EXISTS "moderation_cases";""",
    "postgres": """
        ALTER TABLE "users" DROP COLUMN "avatar_version";
        COMMENT ON COLUMN "messages"."status" IS 'GENERATING: generating\nCOMPLETE: complete\nSTOPPED: stopped\nINTERRUPTED: interrupted\nFAILED: failed';
        DROP TABLE IF EXISTS "moderation_cases";
        DROP TABLE IF EXISTS "avatars";""",
}


async def upgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, DOWNGRADE)


MODELS_STATE = (
    "eJztXW1z2rgW/isavmw7k+20abfbITs7QxLS5TYBFsjdt+ywii1AEyO7lpyU2dv/fo9kjN"
    "+JTQwxVF/aIOnI9nP08pxz9PJvY26bxOKvWuacskYT/dtgeE7gj3jGEWpgxwmTZYLAt5Yq"
    "iWURlYRvuXCxISB1gi1OIMkk3HCpI6gtq2+0GLId4mJhuwgbhu0xgewJEjOCVDXIsBm3LX"
    "KCGLknUAYZMyyQx4n7Sj7BtA14BGXTKirzGP3skbGwpwRkXKjyr78hmTKTfCE8+OncjSeU"
    "WGYMHWrKClT6WCwcldZh4kIVlO95OzZsy5uzsLCzEDObrUpTJmTqlDD5BURWL1xPQsY8y1"
    "piG6Dov2lYxH/FiIxJJtizJPBS2n+BMK0xHnd7o/GwPRqPGymlBBIRaJdJEj9QKLwqV18/"
    "la/w/fGbdz+++/D2/bsPUES95irlx6/+o0NgfEEFT3fU+KryscB+CYVxCKpUjPo7Be3ZDL"
    "vZ2EZlEgjDqycRDvCsL8Rz/GVsETYVM/j5/t0aPP/bGpz90hq8eP/upXygDR3P74/dZc6x"
    "ypKQhxA7mPMH2zXHM8xnZXBOCVYDdpAQoh0OHDuH+/iHHwrgDaVyAVd5ccRdGICygW4zb6"
    "7A7sA7YWaQFOiB7O6w9gfzRjm4G63zq0636Q+6N6zXHzZhYObJ8bqICt68L6CBN+9zFSCz"
    "4vgbLpEYjbFIa+EccgSdk+wmH5dM6MBcir4K/tjH1g8faPaYtVgOcmugH3Wu2sNR66ovHz"
    "fn/LOl8GuN2jLnWKUuEqkvkmpaVYJ+64x+QfIn+rPXbSt4bS6mrnpiWG70Z0O+E/aEPWb2"
    "wxibkfE4SA1Qi2ndwlyMLXtK2QaKTwlXoPvlS9dF9Xui6gCTlK4lMZvcRViETLjFxt0Dhj"
    "kqlhM2Ck44B5x4uj2cLiUvPg2IhRWYabVHGfHQr2oPO/3XoLUHqUHnlwjax3Yepums+fE8"
    "mYIZnqpPks+WT8rCLM/KiGD6iLExjmqygNGBoDPDe30PJkHMMEDLek6QDaOgMhyEfUfYdx"
    "xJmoMoR3fEERmWRxU1avOjXuaHUlRpYhyX0ibIoyaIJmTfIiEjXxwKtW2g9bjkAWp9T7Sc"
    "y8Wiavan51LTU1Tk8UlqD/RZxTyV4rcJiNP4XtguoVP2iSxSPoU1PHYP4c0jsJDs4ocVWY"
    "q1K/h6+GYi/Lm8NTxrnbcbX/Nthq1yYc+kos2Eu8hkwmHueh4sy0kjtRgF7rHAJw7FFD8N"
    "veRLTopuF0i+DOK2yoS6ke0Ji94T7pf2XexpNlx15Y8T47/CXgAKhkxIMAKzTaZo5rxL5p"
    "wzJOWT5pXAAXqRq2fMYdMujK+R48M4BIDfHhcA+O1xLsAyKw6wwC4MNaWsvpXEDn3zJd3y"
    "G8L75vhDER/88Yd8J7zMiyNsEoGplUb4P8NeNxvhUCJJ+akh0P+QRfnWyGHjp4nHVBdCtx"
    "61BGX8lXzsz9vSwBrAJUIx9h/g/OKq9XtSBWeXvdMkrZcVnGob/Bu1wUs4yrdKeu+BO7iZ"
    "hNfPWU92VZnC3l65JuA7jjzHsrFJTOSLIzqHdztBQEol4ZRk5hbLCoCSyuUhC+QSx6IGRi"
    "AuaSnNdPxWW/kTfMDyRcpZ2hGJagztgya18DhBmPAxKkENknKagRVgYFILGWE5yrC7yOEH"
    "S4kEvLcLQfgeArwG0NPlpL6aYQDH0063NfhjRQFW08xlr/vxNIMEnP4xarcSmHuOuSEJiE"
    "tqElAXEpDhol2FdjcmAfEZJ91UeoyMbPinoNvxelnJXs01RX2OkRm2gMvxSYzqzGbAKzgW"
    "OSH1WP5admVESpblWFHZEySosCQlmggCjEhwNKEuF2hOOIePWMOmSldTxEUYNNfIaKX9gr"
    "uNqEtFlnKrBAIHSJrevH5dxK/y+nW+X0XmaUP+sOfwIsF0zdy+Sa0/v8H/3MrdbmQ9m9+W"
    "DqxvynDrYYFWzHFzoF5yuScuxb3yazkgsLe6CjeAK8NaiCCZbyhElVZsycFS4gRhhjDnVH"
    "YdoVyh0iFq2K7J0cx+AJKPCCjCPFJ0Xy2p5CBjgikwBxh59pqDSmsvYlEYCZsqWHugHgmi"
    "/i94DeEpkCyCORl7TFBLmx67NT32a9tVeaAb18P2oKns5xvWGg47QC66o2bYD5I95pl2X/"
    "nO8LQmRuRLTguPiNRZAZUs72z/Plof2405doPiyYBvHPJw+Nmk7YfSO1zYYNhzR9GIkn3g"
    "Y7vbHrRGne7HJlq+GGjihp31rvqX7VG7iYKab9hw1Ov32+dNxIXtOMS8YTCItAeD6/5Ipo"
    "K2iOt6jpA5F63OpUycYGrJ36eXvbNPMuHWso07Ytakb1lUxpnmfJppFayJUCUFN1J1zXa0"
    "bXsR1oQyymdjMC95ubVYKcHDQ7v6tu240HHF2OdqJehRSm53du/rWjOl6JSshkQqUSkLb6"
    "ashjgJsYpX+AjBKFsC37TgRuDWbbCoGF7Tc5UJVg7bhJQGNmNo0NGEb9CvvFyZVpJExqUO"
    "j9NUv8Yp6g0q2b0Sovo8ivossEn3p6iXsFy8JkNSx20y5qnA31oO3YSUJgCPBsSS/u4nBs"
    "aSS5L2rBUXDZBl9OLsQFlWk64A5uJRsZq15qIAJzpyDFx4B9S9vrx8rt29V/Cfb2ecwZTd"
    "yAq1xUscrY24rcqODShcMPI2tOdEzABpNJEnY0ZOyRQ2csk9JQ8rVyYS5ItAD1TMVHAMGq"
    "7c6HSEpGCwOg/wtt2MzRBbfE6RaJx0VZNoGC6I3we/I0aJjr7tNPp2B5+1aQQikK1z8Acg"
    "6F+PZNTA8cQN612P1E/bE+p3f9C76Fy2m8hx7Qm1yA0btPu9AZTwm3hN4gfPzlNrNv9U72"
    "nVwc98vLYS/DRmBGabjFVca6JhocjheTGqHzWWM3cZhCMiB9Gotw0xfDfJcBHlA7wSOLjD"
    "CKqP4zJblNqSEJQ/OGi3ctr1ipNvuvZk11iDyVL6uOtev92VJ1wTdsPOO8OrznAoF4eYlM"
    "8p52rBSKvbVetFMGN1WS7iEm5b92AO3S7K+fljYoc3RVY/xKwgKx9HS4hqR3+tHf06XPoN"
    "hkuXq87LWcxxIW0sp41lvbtJ726qQWzh0d1NGUOBjtk8jmt8AKxVyOZXzxb4kphTknlAVT"
    "T7aF2w5rMsCLxyVfLRQE1bnQxlzDCbEnlz2SoSoqo6Qb6SkUNc9ELmHKHY0u0j5C8qfpkO"
    "zVRac0YwJgy2pBaTLxc6/52K1wS9RcdidhqLgXaadbZS/jrJoLyeVDOXnuSv/y+ws+xpmw"
    "B2Fd0adj52r/tNxGEO85wbBobuqKkuT5SRrIvr7rmMZE08Zt6wjwO172zqYga5UCOIkbpE"
    "uPQOmd0eU2yXirysBDS6NfNb1xrbrTiutS8nH33ty9G+HO3L0b6cuoCrfTnal5PjyxkSIf"
    "xPTPlxgqyjdT4c7hcqfAymPFwf3WPLIwisIXXH/B1Z+BfgwB/8OzQnmMklsv5VN2oBLGRS"
    "V3pYQCDjaJvKan3C4eLwlDJkc1lc336YQ+PzvTNKy2mo8+/FWAns/lqM5wkLb+UCDH2CYn"
    "4P2E+6nxGxf/rZ19VNTIpqZcxKAQXLn5Ikiyk8H/1GYJAWytmPXsgVStR8qTZZ/GOS++ZP"
    "D9T8+R+1WwN+Est25oQJpK46z5yInlqdvuK4XrEAX4VlZvZQ4uAm961cdMWocaf+LoFxVO"
    "bglplW7wlVIcwSg8OqvD6oJumoCdenxrE8tW0LLIxsPEOh5N0rILUtRFcpO757pde7jJGb"
    "005yF8r11WkbhgnVgKEQ9Q3hNNb+RVFjuXEqczt1/gXJKUHdkPXJNYfO54u47y3MxZgTwj"
    "bQe1JWL7Wuj+Hma7qE5Za9qfWJp4sf6HEV8XEzOFVgc5jS5xkcIlDhsr7NkUqsJDwUmEq5"
    "TZJ8KB/R4F6xx3ENrxDdywE6G9Eyl6sSlxqzRoZ3aZlztPZy1bDMYw6m/C/Tjp56OXpyrY"
    "y1u7Rz7ItaLU6s06Ih2alKILwsfoDobudus7zjM/KDY/nHZ+jw2GPhsWcNlHz9P/8o7Xg="
)
