"""wsgi-chain's own tooling: stack lifecycle for the Makefile and the tests.

Which interpreter runs what (tests/test_host_tools.py holds the Makefile to it):

- Standard library only, at load: every tool the Makefile runs with the host's python3 ($(PYTHON)) and every tools
  module it imports: bootstrap, stack, tls, backup, k8s render, hostdeps, clean, verify. They run before any
  virtualenv exists (bootstrap first of all).
- From the project's virtualenv ($(VENV)/bin/python, pinned in tests/requirements.txt): swarm and cluster (PyYAML),
  soak (requests, matplotlib), bench (matplotlib), lint (its linters), k8s validate (PyYAML, kubernetes-validate,
  imported inside the function that validates, so that k8s render stays standard library only).
"""
