"""An app with no spanledger code: it only uses the OpenTelemetry API. ``--spawn`` runs a child copy."""

import subprocess
import sys

from opentelemetry import trace

role = "child" if "--child" in sys.argv else "parent"
with trace.get_tracer("plain-app").start_as_current_span(f"{role}-work"):
    if "--spawn" in sys.argv:
        subprocess.run([sys.executable, __file__, "--child"], check=True)
print(f"{role} ran", flush=True)
