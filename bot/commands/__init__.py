"""`/mirror` commands: parsing, running (through the domain) and their typed results.

Slack and the console both call `parse_command` and `run_command`, then render the
result their own way (`bot/slack/blocks`, `bot/console`).
"""
