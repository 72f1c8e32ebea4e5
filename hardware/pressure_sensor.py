"""Cuff pressure from the ADS1115 through the real adafruit driver, in continuous mode.

adafruit-circuitpython-ads1x15 3.0.5 never selects the channel in continuous mode (`_write_config`
keeps whatever MUX the chip holds, AIN0-AIN1 differential at power-on) and a config write leaves the
register pointer on CONFIG while continuous reads do not move it. So the sensor selects the channel
with one single-shot conversion, then switches to continuous, points back at the conversion register
and reads the config register back to verify MUX, mode and rate before trusting any sample.

The chip converts continuously at `data_rate`; its ALERT/RDY pin, set to conversion-ready mode,
pulses once per conversion and a gpiozero input counts the pulses. A sample is handed on only when
a new conversion is counted, so reading faster than the chip converts never repeats a value (the
ADS1115's default 128 SPS polled at a higher rate would), and a loop too slow to keep up shows in
`missed` instead of silently averaging.
"""

from __future__ import annotations

import threading

from adafruit_ads1x15 import ADS1115, AnalogIn
from adafruit_ads1x15.ads1x15 import Mode, Pin
from gpiozero import DigitalInputDevice

from hardware.clock import Clock
from hardware.config import HardwareConfig
from hardware.ports import Sample, SensorError
from hardware.transducer import Calibration

_PINS = (Pin.A0, Pin.A1, Pin.A2, Pin.A3)
_REG_CONFIG = 0x01
_RATE_BITS = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4, 250: 5, 475: 6, 860: 7}


class ADS1115PressureSensor:
    """PressureSensor port backed by an ADS1115 on an injected I2C bus."""

    def __init__(
        self, i2c: object, ready: DigitalInputDevice, config: HardwareConfig, clock: Clock
    ) -> None:
        self._config = config
        self._clock = clock
        self._calibration = config.calibration
        try:
            self._ads = ADS1115(
                i2c,
                gain=config.gain,
                data_rate=config.data_rate,
                mode=Mode.SINGLE,
                address=config.i2c_address,
                # Hi_thresh MSB 1, Lo_thresh MSB 0, queue 1: ALERT/RDY becomes conversion-ready.
                comparator_queue_length=1,
                comparator_low_threshold=0,
                comparator_high_threshold=-1,
            )
            self._channel = AnalogIn(self._ads, _PINS[config.adc_channel])
            _ = self._channel.value  # single-shot: selects the MUX on the chip
            self._ads.mode = Mode.CONTINUOUS  # keeps that MUX, leaves the pointer on CONFIG
            self._verify_config()
            self._ads.get_last_result(False)  # pointer back to CONVERSION for fast reads
        except (OSError, ValueError) as exc:
            raise SensorError(f"ADS1115 not responding at {config.i2c_address:#x}: {exc}") from exc
        self._lock = threading.Lock()
        self._ready_count = 0
        self._taken = 0
        self._missed = 0
        self._ready = ready
        ready.when_activated = self._on_ready
        self._started = False

    def _verify_config(self) -> None:
        """Read the config register back: the wrong MUX would read a plausible, wrong pressure."""
        word = self._ads._read_register(_REG_CONFIG)
        mux = (word >> 12) & 0x07
        if mux != 4 + self._config.adc_channel:
            raise SensorError(
                f"ADS1115 MUX is {mux:#o}, expected AIN{self._config.adc_channel}/GND"
            )
        if word & 0x0100:
            raise SensorError("ADS1115 did not enter continuous mode")
        if (word >> 5) & 0x07 != _RATE_BITS[self._config.data_rate]:
            raise SensorError("ADS1115 data rate does not match the configuration")

    def _on_ready(self) -> None:
        with self._lock:
            self._ready_count += 1

    @property
    def missed(self) -> int:
        return self._missed

    def read(self) -> Sample | None:
        with self._lock:
            ready = self._ready_count
        if ready == self._taken:
            return None
        try:
            code = self._channel.value
        except OSError as exc:
            raise SensorError(f"I2C read failed: {exc}") from exc
        if self._started and ready - self._taken > 1:
            self._missed += ready - self._taken - 1
        self._taken = ready
        self._started = True
        volts = self._channel.convert_to_voltage(code)
        nominal = self._config.transducer.nominal_mmHg(volts)
        mmHg = self._calibration.apply(nominal)
        return Sample(t=self._clock.now(), mmHg=mmHg, volts=volts, code=code, nominal_mmHg=nominal)

    @property
    def calibration(self) -> Calibration:
        return self._calibration

    def set_calibration(self, calibration: Calibration) -> None:
        """Replace zero and span (from `bfr calibrate`); the transfer function stays."""
        self._calibration = calibration

    def close(self) -> None:
        self._ready.when_activated = None
