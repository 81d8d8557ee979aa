"""Part of the qbcompiler TEST DOUBLE (1.3 layout: the old parser lives here)."""

from qbcompiler import GENERATION

if GENERATION < 3:
    raise ImportError("model_dict_legacy exists from qbcompiler 1.3 on")
