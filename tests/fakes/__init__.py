"""Fakes of external services and engines for tests."""
