"""Logins: the Selenium flow, the login manager the pool calls, session bundles, and the CLI commands."""
