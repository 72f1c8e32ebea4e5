"""Errors of technician operations: each says what went wrong and what to do next."""

from __future__ import annotations


class TechnicianError(Exception):
    """An operation that could not be done; `advice` is the next step for the technician."""

    def __init__(self, message: str, advice: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.message} - {self.advice}" if self.advice else self.message

    def to_dict(self) -> dict[str, str]:
        """For JSON: the screens show the message and the advice apart."""
        return {"message": self.message, "advice": self.advice}


class DeviceNotReady(TechnicianError):
    """The appliance must not treat patients now (calibration or self-test missing or failed)."""
