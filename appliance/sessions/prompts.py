"""What the screen tells the patient and clinician: prompt keys, their parameters, English text.

The UI translates by `key` and fills in `params`; `english()` is the fallback wording used by the
command line and by records read without a UI. Keys are lower-case with underscores so that
`prompt.<key>` is a valid event name in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCREENING_BLOCKED = "screening_blocked"
PLACE_CUFF = "place_cuff"
LOP_RELAX = "lop_relax"
LOP_REST = "lop_rest"
LOP_SPREAD = "lop_spread"
LOP_NEEDED = "lop_needed"
INFLATING = "inflating"
DO_REPS = "do_reps"
TIMED_BOUT = "timed_bout"
RATE_SET = "rate_set"
REST = "rest"
PAUSED = "paused"
PAUSED_DEFLATED = "paused_deflated"
CUFF_LOST = "cuff_lost"
CONTROLLER_LINK = "controller_link"
RELEASING = "releasing"
REPERFUSION = "reperfusion"
SESSION_DONE = "session_done"
SESSION_ALARM = "session_alarm"

ENGLISH: dict[str, str] = {
    SCREENING_BLOCKED: "Inflation is not allowed yet: {problem}",
    PLACE_CUFF: "Put the {cuff} cuff high on the {side} {limb}, {posture}. Press Done when it is on.",
    LOP_RELAX: "Relax and keep still: measuring limb occlusion pressure ({reading} of 2).",
    LOP_REST: "Rest for {seconds:.0f} s before the next measurement.",
    LOP_SPREAD: "The two LOP readings differ by {spread_mmhg:.0f} mmHg ({first_mmhg:.0f} and"
    " {second_mmhg:.0f}). Accept the mean or measure again.",
    LOP_NEEDED: "LOP could not be measured ({reason}). Enter a Doppler LOP or measure again.",
    INFLATING: "The cuff is inflating to {target_mmhg:.0f} mmHg.",
    DO_REPS: "{exercise}: set {set_number} of {sets}, {reps} reps with the beat.",
    TIMED_BOUT: "{exercise}: bout {set_number} of {sets}, {duration_s:.0f} s.",
    RATE_SET: "How hard was set {set_number} (0-10)? How much discomfort (0-10)?",
    REST: "Rest. Next: {next} in {seconds:.0f} s.",
    PAUSED: "Paused. The cuff stays inflated for at most {hold_s:.0f} s.",
    PAUSED_DEFLATED: "Paused. The cuff was emptied.",
    CUFF_LOST: "Paused: the cuff emptied without the session asking ({reason})."
    " Resume inflates it again; or end the exercise.",
    CONTROLLER_LINK: "Paused: the pressure controller is not answering. It empties the cuff"
    " on its own; the session ends if it does not answer within {limit_s:.0f} s.",
    RELEASING: "The cuff is emptying.",
    REPERFUSION: "Cuff released: rest for {seconds:.0f} s before {next_exercise}.",
    SESSION_DONE: "Session finished: {outcome}.",
    SESSION_ALARM: "Stopped by the controller: {code}. {message}",
}


@dataclass(frozen=True)
class Prompt:
    """One instruction on screen: a translation key and the values to fill in."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def english(self) -> str:
        template = ENGLISH.get(self.key)
        if template is None:
            return self.key
        try:
            return template.format(**self.params)
        except (KeyError, ValueError):
            return self.key

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "params": dict(self.params)}


def cuff_picture(limb: str, side: str) -> str:
    """The picture key showing where the cuff goes (proximal upper arm or upper thigh)."""
    return f"cuff_placement.{limb}.{side}"
