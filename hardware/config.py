"""Hardware settings: pins, I2C address, ADC gain and rate, transducer constants, calibration."""

from __future__ import annotations

from dataclasses import dataclass, field

from hardware.transducer import Calibration, TransducerModel

ADS1115_RATES = (8, 16, 32, 64, 128, 250, 475, 860)
ADS1115_GAINS = (2 / 3, 1, 2, 4, 8, 16)
ADS1115_FULL_SCALE_V = 4.096  # at gain 1
BCM_PINS = range(2, 28)


@dataclass(frozen=True)
class HardwareConfig:
    """Where everything is wired (BCM numbering) and how the ADC is set up.

    Defaults match hardware/README.md: pump PWM on GPIO18, valve on GPIO23, stop button on GPIO17
    (to ground, pull-up), ADS1115 ALERT/RDY on GPIO27, the dead-man's toggle on GPIO22, the
    alarm buzzer on GPIO24, ADS1115 at 0x48 on I2C1, transducer on A0.
    """

    i2c_address: int = 0x48
    adc_channel: int = 0
    gain: float = 1
    data_rate: int = 250
    pump_pin: int = 18
    pump_pwm_hz: int = 1000
    valve_pin: int = 23
    stop_pin: int = 17
    ready_pin: int = 27
    deadman_pin: int = 22
    buzzer_pin: int = 24
    transducer: TransducerModel = field(default_factory=TransducerModel)
    calibration: Calibration = field(default_factory=Calibration)

    def __post_init__(self) -> None:
        if self.data_rate not in ADS1115_RATES:
            raise ValueError(f"data_rate must be one of {ADS1115_RATES}, got {self.data_rate}")
        if self.data_rate < 250:
            raise ValueError(f"data_rate {self.data_rate} is too slow for control (>= 250 SPS)")
        if self.gain not in ADS1115_GAINS:
            raise ValueError(f"gain must be one of {ADS1115_GAINS}, got {self.gain}")
        full_scale_v = ADS1115_FULL_SCALE_V / self.gain
        if full_scale_v < self.transducer.range_high_v():
            raise ValueError(
                f"gain {self.gain:g}: the ADC's full scale ({full_scale_v:.3f} V) is under the "
                f"transducer's highest output ({self.transducer.range_high_v():.2f} V); readings "
                "would clip below the 300 mmHg cap (use gain 1 or 2/3)"
            )
        if not 0x48 <= self.i2c_address <= 0x4B:
            raise ValueError(f"i2c_address must be 0x48..0x4B, got {self.i2c_address:#x}")
        if self.adc_channel not in (0, 1, 2, 3):
            raise ValueError(f"adc_channel must be 0..3, got {self.adc_channel}")
        pins = {
            "pump_pin": self.pump_pin,
            "valve_pin": self.valve_pin,
            "stop_pin": self.stop_pin,
            "ready_pin": self.ready_pin,
            "deadman_pin": self.deadman_pin,
            "buzzer_pin": self.buzzer_pin,
        }
        for name, pin in pins.items():
            if pin not in BCM_PINS or pin in (2, 3):
                raise ValueError(f"{name} must be a free BCM GPIO 4..27, got {pin}")
        if len(set(pins.values())) != len(pins):
            raise ValueError(f"pins must differ: {pins}")
        if not 50 <= self.pump_pwm_hz <= 10000:
            raise ValueError(f"pump_pwm_hz must be 50..10000, got {self.pump_pwm_hz}")
