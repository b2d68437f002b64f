"""Replies being generated carry the replica writing them and a lease it renews, so a reply lost
by a crash is found by its lapsed lease (and refunded) without touching another live replica's
replies.

As in the initial migration, aerich's SQL for SQLite and for PostgreSQL are both kept, and
MODELS_STATE is aerich's own.
"""

from tortoise import BaseDBAsyncClient

from storage.migration_sql import sql_for

RUN_IN_TRANSACTION = True

UPGRADE = {
    "sqlite": """
        ALTER TABLE "messages" ADD "replica_id" VARCHAR(32);
        ALTER TABLE "messages" ADD "lease_until" TIMESTAMP;
        CREATE INDEX "idx_messages_status_8cc9da" ON "messages" ("status", "lease_until");""",
    "postgres": """
        ALTER TABLE "messages" ADD "lease_until" TIMESTAMPTZ;
        ALTER TABLE "messages" ADD "replica_id" VARCHAR(32);
        CREATE INDEX IF NOT EXISTS "idx_messages_status_8cc9da" ON "messages" ("status", "lease_until");""",
}

DOWNGRADE = {
    "sqlite": """
        DROP INDEX IF EXISTS "idx_messages_status_8cc9da";
        ALTER TABLE "messages" DROP COLUMN "replica_id";
        ALTER TABLE "messages" DROP COLUMN "lease_until";""",
    "postgres": """
        DROP INDEX IF EXISTS "idx_messages_status_8cc9da";
        ALTER TABLE "messages" DROP COLUMN "lease_until";
        ALTER TABLE "messages" DROP COLUMN "replica_id";""",
}


async def upgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return sql_for(db, DOWNGRADE)


MODELS_STATE = (
    "eJztXVtz4jYU/isaXjY7k+4kbJrusJ3OkISkdBNIA2k7bTquYgvQxEheS06WafPfeyRjfA"
    "c7ARZYv2RA0pHFd3T5zsXKv7Uxt4gt3jWtMWW1Bvq3xvCYwId4xT6qYccJi1WBxPe2bolV"
    "E12E74V0sSmhdIBtQaDIIsJ0qSMpV93Xmgxxh7hYchdh0+Qek4gPkBwRpLtBJmeC2+QjYu"
    "SRQBtkjrBEniDuO/UEi5vwCMqGy+jMY/SzRwzJhwRkXOjyr7+hmDKLfCEi+Oo8GANKbCuG"
    "DrVUB7rckBNHl7WZPNcN1TjvDZPb3piFjZ2JHHE2a02ZVKVDwtQvIKp76XoKMubZ9hTbAE"
    "V/pGETf4gRGYsMsGcr4JW0P4CwrGYYnW7f6LX6hlFLKSWQiEA7LVL4gUJhqEL/+qEawnf1"
    "w6Mfjj68Pz76AE30MGclPzz7jw6B8QU1PJ1+7VnXY4n9FhrjEFSlGP05Be3pCLvZ2EZlEg"
    "jD0JMIB3huLsRj/MWwCRvKEXw9PpqD52/Nm9Ofmzd7x0dv1QM5LDx/PXamNXVdpSAPIXaw"
    "EE/ctYwRFqMyOKcElwN2UBCiHW4ca4e7/v33BfCGVrmA67o44i5sQNlAt5g31mC3YUyYmS"
    "QFeiC7Pqz9zbxWDu5a8+yq3Wn4m+4d6173GrAxi+R+XUQFh8cFNHB4nKsAVRXH33SJwsjA"
    "Mq2FM6iRdEyyp3xcMqEDayr6LviwjbMffqDVZfZkusnNgb7fvmr1+s2ra/W4sRCfbY1fs9"
    "9SNXVdOkmU7iXVNOsE/d7u/4zUV/Rnt9PS8HIhh65+Ytiu/2dNjQl7khuMPxnYiuzHQWmA"
    "WkzrNhbSsPmQshcoPiW8BN1PB70pqt8SVQeYpHStiNngIcIiVME9Nh+eMJxRsZpwUggiBO"
    "Ak0vPhZCp5/umG2FiDmVZ7lBH3/K62cNE/B7M9KA0Wv0KQ13kepumqcX2cLMEMD/VPUs9W"
    "T8rCLM/KiGC6wNgwoposYHQgWMwwru/AJIgZBmjaz0fEYRfUhoPkD4S9EUjRHEQFeiCOzL"
    "A8ltFjZX5slvmhFVWaGMelKhNkoQlSEbJvkZCRLw6F3l6g9bjkDmp9S7Scy8WiavaP51LH"
    "U1Rk8SG1BfpcxjmV4rcJiNP4nnOX0CH7RCYpn8IcHruF8OYRWCh28dOMLMXmFfx6+M1E+m"
    "d5s3faPGvVnvNthpVyYc+issWkO8lkwmHtfB6s2ikjtRgF7rLAJw7NND8NveRTToruJ0gN"
    "BgmuK6FvxD1p00ci/Na+iz3Nhpfd+WJi/Fe4CkDBUAkFZmC2qZKKOa+TOedsSfmkeSawg1"
    "7k5TPmcGoXxtfM8WHsAsDv6wUAfl/PBVhVxQGW2IWtppTVN5NYo2++pFv+hfAe1j8U8cHX"
    "P+Q74VVdHGGLSEztNMK/9LqdbIRDiSTlp6ZE/yGbipWRw9qPA4/pJYTuPWpLysQ79difVq"
    "WBOYArhGLsP8B576r5R1IFp5fdkyStVx2cVDb4N2qDl3CUr5L0nnL2SFyBZY4DOFY/l/ia"
    "kZaF/b8qS+CNQFFZIKlU2sRCeCCJi6gUaEBdIdGYCAE/Isvp+9JuihBa1bdu61jBAqtY7H"
    "r9v0qRpUhAILCDJOvw4KAICzg4yGcBqq46dr7NYyeq9ciOVlLrcclK61uldTjPyjmCIxKV"
    "H3ixHzggDK90A99Ou9kycIt6gSOTqqwTOEJSfS73ysSRK7+XHQJ7pTkjAVwZ1kIEyXxDIa"
    "q0Yg7yqcRHhBnCQlC1dCRyiWNP4K/JXUugEX8Cko8IKMLa13RfJwAIkLHAFBgDjCLbQ77U"
    "3otYFGbCpgo85fqRIOp/g2FIT4NkEyyI4TFJ7cr0WK/psV1JwuWBrt32WjcNbT/fsWav1w"
    "Zy0ek3wnWQXDFfKVeYM0lYBk3tky85MzwisskKWEoyQuuP/nxP5IyAXnY7F0HzpHsyDnm4"
    "/bxk7ofSa3TDm3zsaBpRcg1ctDqtm2a/3blooOnAQBN37LR7dX3Z6rcaKOj5jvX63evr1l"
    "kDCckdh1h3DDaR1s3N7XVflYK2iOt6jlQ15832pSocYGoTa0NWkk1hVRhjMcy0AfJ9KinB"
    "Fyl2w7KtVx0gHFBGxcgAY1KUixOmBHcP7eXPbceFZSoNn5mVIEMpufVZuQcbzYuiB7DeAK"
    "lCpSy8mbIVxEmIdXTCRwh22RL4pgVfBO6mbRZLhtfyXG1wlcM2IVUBm7E1VLGDb9CLrHwV"
    "1MQlSWRcavc4zfIzoKK+n5LLKyFavSu5yfn5UZ9guehMhmQVpck4pwLvajl0E1IVAVgY/k"
    "p6t18ZBksmIG3ZLC4aDstYxdlhsawpvQSYi8fANmw2FwU4sZBj4MIYUOf28vJrvXnyq8cl"
    "viTWUAeMUlG1aPX+vMjaZ9UQ2Mis5cLoWgsm3UTdvsSGRF3RhINUOt3VR+RrGTnERXuqZh"
    "/F/ID7yPdQvU1H1pbac0ZULUzMS3kmp16zv1OBt2mkrwqirTeIBvNU4jJGd9C+4jGZPCbf"
    "mVwgKPk6j/K6wpK99kXn9rqBBBxinnPHwDzqN/QtcXfspnV+2zlrwAYx8Jh1xy5udMhy6G"
    "IGtdAjiJFNCVxW4Zb1vo/FM1Kv5r6O5QtU6C5Gl3FZKgs7aL972K7kPrrKj5qP/u76UaeU"
    "tJxTIi5U+STSJKlKcq6SnDfA6bAwyTljK6icOYtxjW+AG+XL6REp/Z+Y8uMEVfvzfDjCb1"
    "T4DUr1FjF6xLZHEFhD+jLtBzLxb/qAD+INGhPMoEfk3+nxROVIVVJXeVhAICMremm9vuIm"
    "PXhKGbI5bV5d85ZD4/O9M1rLaajzLwCYCaz//f+vE0xcyZv+1ct3+StgO+l+Rpx39i7OBr"
    "zpr6lWxqkUULD8I0mxmMLn0e/kNPhfDmiPO4RR6+0+4i76xyKPjR+fqPXTP2gA3+Ersbkz"
    "Jkwifadz5kH02u6qu1w3Kxbgq7DMyR5K7NzhvpIbfRg1H8r+s46ozM7dm7R8T6gOYZbYHG"
    "btq6znpKPmHjNGMvaDE85tsDCy8QyFEoDeg9SqEJ2VrJd8nnS7lzFyc9JOvr11e3XSgm1C"
    "T2BoRH1DuMrU3X3KWfg/bghCXvwPNyKyVQ7p5tgWvqZLGBfZKXqvvDthR9PzEjnYQULVy3"
    "FK5HDtCkyrNFibxKXmqJZ1F7Nfsz/3HuawzSKrNR+GynrcLOtRbTUlb9yNiGxyxtMmZSKo"
    "RVUC4WnzHUR3NXft5d1lke9xz7/LovK5L/K5f1Xv6/P/HKB1Zw=="
)
