"""``python -m controlplane.metering`` runs the collector, like ``sandlada meter run``."""

import sys

from controlplane.metering.cli import meter_app

meter_app(["run", *sys.argv[1:]], prog_name="sandlada meter")
