"""ADS1115 emulated at the I2C register level, so the real adafruit driver runs unmodified off the Pi.

It implements what the datasheet says the driver can observe: the pointer register, the config
register (OS, MUX, PGA, MODE, DR, comparator fields), the conversion register with 16-bit two's
complement codes clipped at the PGA full scale, the threshold registers, conversion timing in
simulated time, and the ALERT/RDY pin in conversion-ready mode (Hi_thresh MSB = 1, Lo_thresh MSB =
0). Faults can be injected: bus errors, a missing chip, a frozen conversion, an input on a rail.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable
from typing import Protocol

from hardware.clock import Clock

REG_CONVERSION = 0x00
REG_CONFIG = 0x01
REG_LO_THRESH = 0x02
REG_HI_THRESH = 0x03

CONFIG_DEFAULT = 0x8583
DATA_RATES = (8, 16, 32, 64, 128, 250, 475, 860)
PGA_FULL_SCALE_V = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256)
# MUX code -> (positive input, negative input or None for GND)
MUX_INPUTS = {
    0: (0, 1),
    1: (0, 3),
    2: (1, 3),
    3: (2, 3),
    4: (0, None),
    5: (1, None),
    6: (2, None),
    7: (3, None),
}
# One 3-byte register transaction at 400 kHz: used to let single-shot polls progress.
BUS_TRANSACTION_S = 0.0001


class ReadyPin(Protocol):
    """The pin ALERT/RDY is wired to (a gpiozero mock pin in simulation)."""

    def drive_low(self) -> None: ...

    def drive_high(self) -> None: ...


AnalogInput = Callable[[], float]


class ADS1115Emulator:
    """A `busio.I2C`-compatible object with one ADS1115 on it."""

    def __init__(
        self,
        clock: Clock,
        inputs: dict[int, AnalogInput],
        *,
        address: int = 0x48,
        vdd: float = 3.3,
        noise_v: float = 20e-6,
        rate_error: float = 0.0,
        ready_pin: ReadyPin | None = None,
        seed: int = 0,
    ) -> None:
        self._clock = clock
        self._inputs = inputs
        self.address = address
        self.vdd = vdd
        self.noise_v = noise_v
        # The internal oscillator is only +-10 % accurate (datasheet): model its error.
        self.rate_error = rate_error
        self._ready_pin = ready_pin
        self._rng = random.Random(seed)
        self._locked = False
        self._pointer = REG_CONVERSION
        self._config = CONFIG_DEFAULT
        self._lo = 0x8000
        self._hi = 0x7FFF
        self._conversion = 0
        self._next_conversion_t: float | None = None
        self._single_remaining_s = 0.0
        self.conversions = 0
        # fault injection
        self.fail_transactions = 0
        self.error_rate = 0.0
        self.absent = False
        self.stuck = False
        self.rail: str | None = None
        self.rail_every = 0  # every Nth conversion of A0 reads 0 V: a loose connector
        self.reads_pass_every = 0  # only every Nth register read succeeds: a failing bus
        self._register_reads = 0
        self._a0_reads = 0

    # ---- busio.I2C surface -------------------------------------------------------------------
    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def scan(self) -> list[int]:
        return [] if self.absent else [self.address]

    def writeto(
        self, address: int, buffer: bytes, *, start: int = 0, end: int | None = None
    ) -> None:
        self._transaction(address)
        data = bytes(buffer[start:end])
        if not data:
            return  # the driver's probe: an empty write that is only ACKed
        self._pointer = data[0] & 0x03
        if len(data) >= 3:
            self._write_register(self._pointer, (data[1] << 8) | data[2])

    def readfrom_into(
        self, address: int, buffer: bytearray, *, start: int = 0, end: int | None = None
    ) -> None:
        self._transaction(address)
        if self.reads_pass_every:
            self._register_reads += 1
            if self._register_reads % self.reads_pass_every:
                raise OSError(errno.EREMOTEIO, "Remote I/O error (injected)")
        end = len(buffer) if end is None else end
        value = self._read_register(self._pointer)
        raw = bytes([(value >> 8) & 0xFF, value & 0xFF])
        for i in range(start, end):
            buffer[i] = raw[(i - start) % 2]

    def writeto_then_readfrom(
        self,
        address: int,
        buffer_out: bytes,
        buffer_in: bytearray,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        self.writeto(address, buffer_out, start=out_start, end=out_end)
        self.readfrom_into(address, buffer_in, start=in_start, end=in_end)

    def deinit(self) -> None:
        self._locked = False

    # ---- simulation side --------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Complete every conversion due by `now`; called as simulated time advances."""
        if self._next_conversion_t is None:
            return
        while self._next_conversion_t <= now:
            self._complete_conversion()
            if self._continuous:
                self._next_conversion_t += self._period_s
            else:
                self._next_conversion_t = None
                return

    @property
    def data_rate(self) -> int:
        return DATA_RATES[(self._config >> 5) & 0x07]

    @property
    def full_scale_v(self) -> float:
        return PGA_FULL_SCALE_V[(self._config >> 9) & 0x07]

    @property
    def _continuous(self) -> bool:
        return not self._config & 0x0100

    @property
    def _period_s(self) -> float:
        return 1.0 / (self.data_rate * (1.0 + self.rate_error))

    @property
    def conversion_ready_mode(self) -> bool:
        """ALERT/RDY pulses after each conversion only with this threshold pattern."""
        return bool(self._hi & 0x8000) and not self._lo & 0x8000 and (self._config & 0x03) != 0x03

    def input_volts(self) -> float:
        """Differential voltage at the selected MUX inputs, as the chip would see it."""
        pos, neg = MUX_INPUTS[(self._config >> 12) & 0x07]
        v = self._pin_volts(pos) - (self._pin_volts(neg) if neg is not None else 0.0)
        return v + self._rng.gauss(0.0, self.noise_v)

    def _pin_volts(self, channel: int) -> float:
        if channel == 0 and self.rail is not None:
            return 0.0 if self.rail == "low" else self.vdd
        if channel == 0 and self.rail_every:
            self._a0_reads += 1
            if self._a0_reads % self.rail_every == 0:
                return 0.0
        source = self._inputs.get(channel)
        v = source() if source else 0.0
        # ESD diodes clamp an input to the supply rails.
        return min(max(v, -0.3), self.vdd + 0.3)

    def code_for(self, volts: float) -> int:
        """16-bit code for a voltage at the current PGA setting, clipped at full scale."""
        fs = self.full_scale_v
        code = round(volts / fs * 32768)
        return max(-32768, min(32767, code))

    # ---- internals --------------------------------------------------------------------------
    def _transaction(self, address: int) -> None:
        if address != self.address or self.absent:
            raise OSError(errno.EREMOTEIO, f"no ACK from I2C address 0x{address:02x}")
        if self.fail_transactions > 0:
            self.fail_transactions -= 1
            raise OSError(errno.EREMOTEIO, "Remote I/O error (injected)")
        if self.error_rate and self._rng.random() < self.error_rate:
            raise OSError(errno.EREMOTEIO, "Remote I/O error (injected)")
        if self._single_remaining_s > 0:
            self._single_remaining_s -= BUS_TRANSACTION_S
            if self._single_remaining_s <= 0:
                self._complete_conversion()

    def _complete_conversion(self) -> None:
        self._single_remaining_s = 0.0
        if not self.stuck:
            code = self.code_for(self.input_volts())
            self._conversion = code & 0xFFFF
        self.conversions += 1
        if self._ready_pin is not None and self.conversion_ready_mode:
            # Active-low pulse of about 8 us after each conversion (datasheet 9.3.8).
            self._ready_pin.drive_low()
            self._ready_pin.drive_high()
        if not self._continuous:
            self._config |= 0x8000  # OS reads 1: idle, conversion done

    def _read_register(self, reg: int) -> int:
        self.tick(self._clock.now())
        if reg == REG_CONVERSION:
            return self._conversion
        if reg == REG_CONFIG:
            if self._continuous:
                return self._config & 0x7FFF  # always converting
            return self._config
        if reg == REG_LO_THRESH:
            return self._lo
        return self._hi

    def _write_register(self, reg: int, value: int) -> None:
        if reg == REG_CONFIG:
            start_single = bool(value & 0x8000)
            self._config = value & 0x7FFF
            if self._continuous:
                self._next_conversion_t = self._clock.now() + self._period_s
            else:
                self._next_conversion_t = None
                if start_single:
                    # OS reads 0 while converting; progress comes from polling or from time.
                    self._single_remaining_s = self._period_s
                    self._next_conversion_t = self._clock.now() + self._period_s
                else:
                    self._config |= 0x8000
        elif reg == REG_LO_THRESH:
            self._lo = value
        elif reg == REG_HI_THRESH:
            self._hi = value
