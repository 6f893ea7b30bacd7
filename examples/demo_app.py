"""The demo's application: an ordinary RAG-style app plus one import and one ``with`` block per request.

Each ``answer-question`` request reads a policy document (and records how old it was), asks an LLM through
``openai``, double-checks the answer with Bedrock Converse, Claude (``anthropic``) and Gemini
(``google-genai``), scores it on a SageMaker endpoint, and runs a step inside ``spanledger.accelerator(...)``.
Point it at any OpenAI-compatible server with ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``, at any Bedrock/SageMaker
runtime with ``DEMO_AWS_ENDPOINT_URL`` (the AWS region, account and credentials come from the usual ``AWS_*``
variables), at an Anthropic API with ``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_API_KEY`` and at a Gemini API with
``DEMO_GEMINI_BASE_URL`` / ``GEMINI_API_KEY``; spans and metrics go wherever the standard
``OTEL_EXPORTER_OTLP_*`` variables say. Documents are read from ``DEMO_DOCS_DIR``.

It prints one line per request: ``app: tenant=<tenant> trace=<trace id> ...``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anthropic
import boto3
import openai
import spanledger
import spanledger.auto  # the one line: tracing + metrics from the environment, openai/httpx/boto3 instrumented
from google import genai
from opentelemetry import trace
from spanledger import semconv

LLM_MODEL = "gpt-4o-mini"
BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
CLAUDE_MODEL = "claude-haiku-4-5"
GEMINI_MODEL = "gemini-2.5-flash"
SAGEMAKER_ENDPOINT = "demo-answer-scorer"
REQUESTS = (("acme", "refund-policy.md"), ("globex", "shipping-policy.md"))

tracer = trace.get_tracer("demo-app")


def read_document(path: Path) -> str:
    with tracer.start_as_current_span("read document"):
        data = path.read_bytes()
        spanledger.record_data_read(path.as_uri(), last_modified=path.stat().st_mtime, bytes=len(data))
    return data.decode()


def answer(client: openai.OpenAI, question: str, context: str) -> str:
    completion = client.chat.completions.create(
        model=LLM_MODEL,
        messages=[{"role": "system", "content": context}, {"role": "user", "content": question}],
    )
    return completion.choices[0].message.content or ""


def check_with_bedrock(bedrock: Any, reply: str) -> str:
    response = bedrock.converse(
        modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": f"Is this grounded? {reply}"}]}]
    )
    return str(response["output"]["message"]["content"][0]["text"])


def check_with_claude(claude: anthropic.Anthropic, reply: str) -> str:
    message = claude.messages.create(
        model=CLAUDE_MODEL, max_tokens=64, messages=[{"role": "user", "content": f"Is this polite? {reply}"}]
    )
    return "".join(getattr(block, "text", "") for block in message.content)


def check_with_gemini(gemini: genai.Client, reply: str) -> str:
    return gemini.models.generate_content(model=GEMINI_MODEL, contents=f"Is this clear? {reply}").text or ""


def score_on_sagemaker(sagemaker: Any, reply: str) -> dict[str, Any]:
    response = sagemaker.invoke_endpoint(
        EndpointName=SAGEMAKER_ENDPOINT, ContentType="application/json", Body=json.dumps({"text": reply})
    )
    result: dict[str, Any] = json.loads(response["Body"].read())
    return result


def rerank(reply: str) -> tuple[str, str]:
    """A step that would run on a GPU; here it only shows what spanledger records without one."""
    with spanledger.accelerator(name="rerank") as span:
        ranked = " ".join(sorted(reply.split()))
    attributes = getattr(span, "attributes", None) or {}
    return ranked, (
        f"{attributes.get(semconv.SPANLEDGER_ACCELERATOR_MEASUREMENT)} "
        f"({attributes.get(semconv.SPANLEDGER_ACCELERATOR_NOT_MEASURED_REASON, 'measured')})"
    )


def main() -> None:
    docs = Path(os.environ["DEMO_DOCS_DIR"])
    endpoint_url = os.environ["DEMO_AWS_ENDPOINT_URL"]
    client = openai.OpenAI()
    bedrock = boto3.client("bedrock-runtime", endpoint_url=endpoint_url)
    sagemaker = boto3.client("sagemaker-runtime", endpoint_url=endpoint_url)
    claude = anthropic.Anthropic()
    gemini = genai.Client(http_options={"base_url": os.environ["DEMO_GEMINI_BASE_URL"]})
    for tenant, document in REQUESTS:
        with spanledger.workflow("answer-question", tenant=tenant):
            trace_id = f"{trace.get_current_span().get_span_context().trace_id:032x}"
            context = read_document(docs / document)
            reply = answer(client, "Can I get my money back?", context)
            verdict = check_with_bedrock(bedrock, reply)
            check_with_claude(claude, reply)
            check_with_gemini(gemini, reply)
            score = score_on_sagemaker(sagemaker, reply)
            _, accelerator = rerank(reply)
        print(
            f"app: tenant={tenant} trace={trace_id} answer={reply!r} bedrock={verdict!r} "
            f"sagemaker={score!r} accelerator={accelerator}"
        )


if __name__ == "__main__":
    main()
