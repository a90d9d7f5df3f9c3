"""wsgi-chain's own tooling: stack lifecycle for the Makefile and the tests. Standard library only."""
