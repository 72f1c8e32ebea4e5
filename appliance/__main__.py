"""`python -m appliance ...` is the same as the `bfr` script."""

from appliance.cli import main

raise SystemExit(main())
