"""Content safety: the local word list, WeChat's text check, and the checked release of replies."""
