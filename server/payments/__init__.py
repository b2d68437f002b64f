"""The store: quota packs sold for WeChat Pay, its notices, reconciliation and refunds."""
