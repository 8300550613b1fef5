"""Vulnerability data: what OSV records say, and how package versions order against them."""
