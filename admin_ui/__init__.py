"""The admin and ops single-page app (built in a later issue)."""
