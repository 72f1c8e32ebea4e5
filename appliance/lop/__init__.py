"""Limb occlusion pressure (LOP) from the arterial pulsations a cuff records."""

from appliance.lop.estimator import estimate_lop
from appliance.lop.result import Envelope, LopEstimate, LopFailure
from appliance.lop.trace import load_trace_csv

__all__ = ["Envelope", "LopEstimate", "LopFailure", "estimate_lop", "load_trace_csv"]
