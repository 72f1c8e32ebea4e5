// What every screen has: the STOP button, the alarm banner, the live reading.
import { installAlarms } from "./alarms.js";
import { installGauge } from "./gauge.js";
import { installStop } from "./stop.js";

export function installCommon() {
  installStop();
  installAlarms();
  installGauge();
}
