"""Forked workers under ``import spanledger.auto``: one call in the parent before forking, one in a
``multiprocessing.Process`` and one in each task of a ``Pool`` (fork start method). ``argv[1]``: the
OpenAI-compatible server's base URL."""

import multiprocessing
import sys

import openai
import spanledger.auto  # noqa: F401

BASE_URL = sys.argv[1]


def call(model: str) -> str:
    client = openai.OpenAI(base_url=BASE_URL, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    return model


if __name__ == "__main__":
    call("parent-model")  # its metric points are in the parent's meter when it forks
    context = multiprocessing.get_context("fork")
    worker = context.Process(target=call, args=("process-model",))
    worker.start()
    worker.join()
    pool = context.Pool(2)
    print(pool.map(call, ["pool-model-1", "pool-model-2"]), flush=True)
    pool.close()
    pool.join()
    print("app ran", flush=True)
