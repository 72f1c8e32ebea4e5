"""Guided therapy sessions: the runner that turns a protocol into prompts and cuff commands."""

from appliance.sessions.events import SessionEvent
from appliance.sessions.phases import Phase, RunnerView
from appliance.sessions.plan import PlanError, SessionPlan
from appliance.sessions.prompts import Prompt
from appliance.sessions.runner import SessionError, SessionRunner
from appliance.sessions.summary import session_summary

__all__ = [
    "Phase",
    "PlanError",
    "Prompt",
    "RunnerView",
    "SessionError",
    "SessionEvent",
    "SessionPlan",
    "SessionRunner",
    "session_summary",
]
