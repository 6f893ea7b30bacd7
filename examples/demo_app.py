"""The demo's application: an ordinary OpenAI app plus one import and one ``with`` block.

Point it at any OpenAI-compatible server with ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``; spans and metrics
go wherever the standard ``OTEL_EXPORTER_OTLP_*`` variables say.
"""

import openai
import spanledger
import spanledger.auto  # the one line: tracing + metrics from the environment, openai/httpx/... instrumented


def answer(client: openai.OpenAI, question: str) -> str:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return completion.choices[0].message.content or ""


def summarize_streaming(client: openai.OpenAI, text: str) -> str:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"Summarize: {text}"}], stream=True
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def main() -> None:
    client = openai.OpenAI()
    with spanledger.workflow("answer-question", tenant="acme"):
        reply = answer(client, "What does spanledger record?")
        summary = summarize_streaming(client, reply)
        client.embeddings.create(model="text-embedding-3-small", input=[summary])
    print(f"app: answer={reply!r} summary={summary!r}")


if __name__ == "__main__":
    main()
