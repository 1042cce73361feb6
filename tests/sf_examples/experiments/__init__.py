"""Sample-Factory-style launcher run descriptions used by tests/sf_examples/test_launcher_run.py."""
