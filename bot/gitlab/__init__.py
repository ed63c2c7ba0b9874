"""GitLab REST client for the mirror endpoints, its models, errors and helpers."""
