"""HTTP endpoints for GitLab."""
