"""The ``molgraph`` command line."""
