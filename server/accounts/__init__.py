"""Who a chat user is: login (WeChat or development), tokens, profile."""
