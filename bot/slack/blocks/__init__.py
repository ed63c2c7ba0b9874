"""Block Kit rendering: pure functions from domain results to Slack payloads."""
