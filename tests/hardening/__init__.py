"""Tests for issue 8 (hardening). One file per item: test_NN_<slug>.py, NN the item's number."""
