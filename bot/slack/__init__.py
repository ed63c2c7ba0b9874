"""The Slack adapter: Bolt listeners (thin), Block Kit renderers (pure), ids and delivery."""
