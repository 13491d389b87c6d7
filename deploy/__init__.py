"""Deployment tooling: packaging the app and its resources as one SAM template (not part of the Lambda)."""
