"""The domain layer: plain functions and small services that know nothing of Slack or HTTP."""
