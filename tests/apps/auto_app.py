"""An app using ``import spanledger.auto``."""

import spanledger
import spanledger.auto
from opentelemetry import trace

with spanledger.workflow("auto-app", tenant="acme"), trace.get_tracer("auto-app").start_as_current_span("work"):
    print("app ran", flush=True)
