"""One instrumented OpenAI call through ``import spanledger.auto``, then exit. ``argv[1]``: the server's base URL.

Used to time the exit of a short-lived program (a CLI, a serverless handler) whose collector is unreachable.
"""

import sys
import time

import openai
import spanledger.auto  # noqa: F401

client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
# CLOCK_MONOTONIC is system-wide on Linux: the test measures from here to the process's end, the exit alone.
print(f"app ran {time.monotonic()}", flush=True)
