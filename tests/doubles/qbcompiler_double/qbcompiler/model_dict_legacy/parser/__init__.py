"""Part of the qbcompiler TEST DOUBLE."""
