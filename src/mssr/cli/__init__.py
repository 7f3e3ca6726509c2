"""Command-line interface: thin argument parsing over the library's layers."""
