"""Test data shared by several test files."""
